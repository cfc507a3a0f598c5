# A child flow: reports on one region, given as keyword inputs by its parent.
import flow_api


def handler(system: flow_api.System, this: flow_api.Execution):
    inputs = this.get("input_value")
    region, size = inputs["region"], inputs.get("size", 1)
    if region == "nowhere":
        return this.error("there is no region called nowhere")
    this.log(region=region, size=size)
    this.save(name=f"report {region}")
    this.set_output("report", {"region": region, "servers": size * 2})
    return this.success("reported")
