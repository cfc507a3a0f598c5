"""A flow that keeps a small table, fetches it, names a savepoint and retries from it."""

import flow_api


def handler(system: flow_api.System, this: flow_api.Execution, inputs):
    rows = int(inputs.get("rows", 3))
    this.connect("demo-db", execute="CREATE TABLE IF NOT EXISTS items (n INTEGER, label TEXT)")
    this.connect("demo-db", execute="DELETE FROM items")
    for n in range(rows):
        this.connect(
            "demo-db",
            execute="INSERT INTO items VALUES (:n, :label)",
            params={"n": n, "label": f"item {n}"},
        )
    data = this.connect("demo-db", fetch="SELECT * FROM items ORDER BY n").get("output_value")[
        "result"
    ]
    this.log("fetched", len(data), "rows")

    # A named savepoint: restoring it brings `data` back without fetching again.
    point = this.save_dump("with-fetched-data")
    if point.restored == 0:
        this.log("first pass: pretend the upload failed, go back to", point.name)
        this.load_dump("with-fetched-data", by="name")
    this.log("second pass after", point.restored, "restore(s): uploading", len(data), "rows")
    this.sleep(0.2)
    this.save(output_value={"uploaded": [row["label"] for row in data], "restored": point.restored})
    return this.success("all done")
