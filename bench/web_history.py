"""How long the web view takes to open an execution with a long history (10,000 savepoints).

Run from the repository root: `.venv/bin/python bench/web_history.py [CALLS]`. It runs a flow
of CALLS log calls (default 10,000) on the embedded default in a new FLOWRT_HOME, then times
the execution's page, its first savepoint window, its record, its logs and the list, once
each, as the web view's ASGI app answers them in-process.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

FLOW = """\
import flow_api

def handler(system, this):
    for i in range({calls}):
        this.log(f"line {{i}}")
    return this.success('done')
"""


def main() -> None:
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    home = Path(tempfile.mkdtemp(prefix="flowrt-web-bench-"))
    os.environ["FLOWRT_HOME"] = str(home)
    os.environ.setdefault("PYTHONHASHSEED", "0")
    from fastapi.testclient import TestClient

    import flowrt
    from flowrt.web.app import create_app

    path = home / "history.py"
    path.write_text(FLOW.format(calls=calls))
    began = time.perf_counter()
    handle = flowrt.start(str(path)).wait(3600)
    print(f"ran {calls} calls in {time.perf_counter() - began:.1f} s: {handle.status.value}")
    web = TestClient(create_app(flowrt.default_client()))
    for url in (
        f"/executions/{handle.id}",
        f"/api/executions/{handle.id}/savepoints?limit=200",
        f"/api/executions/{handle.id}",
        f"/api/executions/{handle.id}/logs",
        "/",
    ):
        began = time.perf_counter()
        answer = web.get(url)
        took_ms = (time.perf_counter() - began) * 1000
        shown = url.replace(handle.id, "ID")
        print(f"{shown:<40} {answer.status_code} {took_ms:7.0f} ms {len(answer.content):>8} bytes")
    flowrt.shutdown()


if __name__ == "__main__":
    main()
