"""Worker subprocesses for the benchmarks, and bounded waits on conditions."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def wait_until(
    condition: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.02
) -> Any:
    """Poll `condition` until it is truthy; raise `TimeoutError` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


class Worker:
    """A `celery worker` subprocess of app `app`, run from the repository root."""

    def __init__(self, app: str, node: str, env: dict[str, str], log_path: Path) -> None:
        self.app, self.node, self.env, self.log_path = app, node, env, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, pool: str, concurrency: int, timeout_s: float = 60.0) -> Worker:
        command = [
            sys.executable, "-m", "celery", "-A", self.app, "worker",
            "-P", pool, "-c", str(concurrency), "-n", f"{self.node}@%h",
            "--loglevel=INFO", "--without-mingle",
        ]  # fmt: skip
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        wait_until(self._ready, timeout_s, f"worker {self.app} to be ready ({self.log_path})")
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"worker {self.app} exited early:\n{self.tail()}")
        return " ready." in self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 30) -> str:
        """The end of the worker's log."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, timeout_s: float = 20.0) -> None:
        """Warm shutdown (SIGTERM); SIGKILL if it does not end within `timeout_s`."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout_s)
