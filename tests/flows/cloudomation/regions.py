# Creates child executions without running them, runs them in the background, waits for all
# to end however they end, and gathers their reports: the library's fan-out style.
import flow_api


def handler(system: flow_api.System, this: flow_api.Execution):
    regions = this.get("input_value").get("regions", [])
    children = []
    for number, region in enumerate(regions, 1):
        child = this.flow(
            "region_report",
            name=f"region {number}",
            run=False,
            region=region,
            input_value={"size": number},
        )
        children.append(child)
    for child in children:
        child.run_async()
    this.wait_for(*children, return_when=system.return_when.ALL_ENDED)

    reports, failed = [], []
    for child in children:
        status, outputs, name = child.load("status", "output_value", "name")
        if status == "ENDED_SUCCESS":
            reports.append(outputs["report"])
        else:
            failed.append(name)
    this.set_output("reports", reports)
    this.set_output("failed", failed)
    return this.success(f"{len(reports)} reports, {len(failed)} failed")
