"""A parent flow: starts one child per number, waits for them all, and adds their results.

Run it from the repository root (child paths are read by the workers, relative to where
they run): `flowrt run examples/fanout.py --input n=4`.
"""

import flow_api


def handler(system: flow_api.System, this: flow_api.Execution, inputs):
    n = int(inputs.get("n", 3))
    children = [
        this.flow("examples/square.py", inputs={"x": x}, wait=False) for x in range(1, n + 1)
    ]
    # The parent holds no worker thread while it waits; a failed child would raise
    # flow_api.DependencyFailedError here.
    this.wait_for(*children, return_when=system.return_when.ALL_SUCCEEDED)
    squares = [child.get("output_value")["square"] for child in children]
    this.save(output_value={"squares": squares, "sum": sum(squares)})
    return this.success(f"{n} children done")
