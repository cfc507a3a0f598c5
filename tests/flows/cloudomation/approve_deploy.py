# Asks for an approval with a form, then counts deployments in a setting under its lock, so
# that two executions never count at once: messages, forms and setting locks.
import flow_api


def handler(system: flow_api.System, this: flow_api.Execution):
    version = this.get("input_value")["version"]
    response = (
        system.message(
            subject=f"Deploy version {version}?",
            message_type="POPUP",
            body={
                "type": "object",
                "properties": {
                    "note": {
                        "element": "markdown",
                        "description": "Check the change log first.",
                        "order": 1,
                    },
                    "approver": {
                        "element": "string",
                        "type": "string",
                        "label": "Your name",
                        "order": 2,
                    },
                    "approve": {
                        "element": "submit",
                        "type": "boolean",
                        "label": "Deploy",
                        "order": 3,
                    },
                },
                "required": ["approver"],
            },
        )
        .wait()
        .get("response")
    )
    if not response.get("approve"):
        return this.end("cancelled", f"{response['approver']} did not approve")

    counter = system.setting("deployments")
    counter.acquire(timeout=60)
    try:
        count = counter.get("value") or 0  # acquire() made it if there was none
        system.setting(name="deployments", value=count + 1)
    finally:
        counter.release()
    this.log(approved_by=response["approver"], deployment=count + 1)
    this.set_output("deployment", count + 1)
    return this.success(f"version {version} deployed by {response['approver']}")
