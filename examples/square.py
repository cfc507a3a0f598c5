"""A child flow: squares its input after a short wait."""

import flow_api


def handler(system: flow_api.System, this: flow_api.Execution, inputs):
    this.sleep(0.1)
    this.save(output_value={"square": inputs["x"] ** 2})
