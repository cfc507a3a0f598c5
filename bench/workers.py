"""Worker subprocesses for the benchmarks, and bounded waits on conditions."""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The log level workers start at, unless a measurement needs another (bench/run.py
# --loglevel). Each log line costs a worker CPU per task, so the baseline and flowrt must
# run at the same one.
LOGLEVEL = {"level": "WARNING"}


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


class CeleryProcess:
    """A `celery` subprocess run from the repository root, logging to `log_path`."""

    ready_text = ""  # what its log says once it is up

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env, self.log_path = env, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def _spawn(self, arguments: list[str], timeout_s: float) -> None:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "celery", *arguments],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._ready, timeout_s, f"{arguments[2]} to be ready ({self.log_path})")

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.log_path.stem} exited early:\n{self.tail()}")
        return self._up()

    def _up(self) -> bool:
        """Whether the running process is ready to work."""
        return self.ready_text in self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 30) -> str:
        """The end of its log."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL it (nothing of its shutdown runs) and reap it."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM (a worker's warm shutdown); SIGKILL if it does not end within `timeout_s`."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout_s)


class Worker(CeleryProcess):
    """A `celery worker` subprocess of app `app`, at `loglevel` (LOGLEVEL when not given)."""

    def __init__(
        self, app: str, node: str, env: dict[str, str], log_path: Path, loglevel: str = ""
    ) -> None:
        super().__init__(env, log_path)
        self.app, self.node = app, node
        self.loglevel = loglevel or LOGLEVEL["level"]

    def start(
        self, pool: str, concurrency: int, timeout_s: float = 60.0, *, autoscale: str = ""
    ) -> Worker:
        """Start it with `pool` and `-c concurrency`, or `--autoscale=autoscale` when given."""
        # -P takes Celery's aliases only; flowrt's pool (a path) is the app's default.
        pool_option = ["-P", pool] if pool and ":" not in pool else []
        size = [f"--autoscale={autoscale}"] if autoscale else ["-c", str(concurrency)]
        self._spawn(
            [
                "-A", self.app, "worker", *pool_option, *size,
                "-n", f"{self.node}@%h", f"--loglevel={self.loglevel}", "--without-mingle",
            ],
            timeout_s,
        )  # fmt: skip
        return self

    def _up(self) -> bool:
        # Whatever its log level: it answers a ping once it consumes.
        return bool(_control_app().control.ping(destination=[self.node_name], timeout=0.5))

    def cpu_s(self) -> float:
        """CPU seconds it has used so far, user and system, all its threads (/proc/PID/stat)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    @property
    def node_name(self) -> str:
        """Its Celery node name, as flowrt writes it into the executions it holds."""
        return f"{self.node}@{socket.gethostname()}"

    def rss_mb(self) -> float:
        """Its resident set size now, in MB (the thread pool runs in this one process)."""
        return _status_kb(self.pid, "VmRSS") / 1024

    def peak_rss_mb(self) -> float:
        """The highest resident set size it has had, in MB."""
        return _status_kb(self.pid, "VmHWM") / 1024


class Beat(CeleryProcess):
    """A `celery -A tasks beat` subprocess: it sends flowrt's reaper every reap interval."""

    ready_text = "beat: Starting"

    def __init__(self, env: dict[str, str], home: Path) -> None:
        super().__init__(env, home / "beat.log")
        self.home = home

    def start(self, timeout_s: float = 60.0) -> Beat:
        self._spawn(
            ["-A", "tasks", "beat", "-s", str(self.home / "beat-schedule"), "--loglevel=INFO"],
            timeout_s,
        )
        return self


@functools.cache
def _control_app() -> Any:
    """A Celery client on the run's broker, to ping workers with."""
    from celery import Celery

    import config

    app = Celery("bench-control", set_as_current=False)
    app.conf.update(config.celery_config(config.load()))
    return app


def _status_kb(pid: int, field: str) -> int:
    """A `kB` field of /proc/<pid>/status, such as VmRSS."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no {field}")
