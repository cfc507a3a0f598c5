"""The web view in a real headless browser (Debian's chromium driven by Playwright): restore a
failed execution at its named savepoint and watch it end ENDED_SUCCESS."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowrt.client import Client
from tests.conftest import ROOT, line_of, wait_until
from tests.test_web_api import FLOW, start_failing
from tests.test_web_fix import FIXED

CHROMIUM = Path("/usr/bin/chromium")
AUTH = ("ops", "s3cret-web")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(client: Client) -> Iterator[str]:
    """`flowrt web` as its own process on the test's database, behind basic auth; its URL."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FLOWRT_WEB_AUTH": ":".join(AUTH)}
    code = "from flowrt.cli import main; main()"
    process = subprocess.Popen([sys.executable, "-c", code, "web", "--port", str(port)], env=env)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(base + "/api/openapi.json").status_code == 401
        except httpx.TransportError:
            return False

    try:
        wait_until(up, 60, "flowrt web listens")
        yield base
    finally:
        process.terminate()
        process.wait(30)


@contextlib.contextmanager
def browser_page(server: str) -> Iterator[tuple[Any, list[str], list[str]]]:
    """A page of headless chromium logged in to `server`, the URLs it fetched elsewhere, and
    the questions it asked (each confirmed)."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is needed: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            context = browser.new_context(
                http_credentials={"username": AUTH[0], "password": AUTH[1]}
            )
            page = context.new_page()
            outside: list[str] = []
            page.on(
                "request",
                lambda r: None if r.url.startswith(server) else outside.append(r.url),
            )
            questions: list[str] = []

            def accept(dialog: Any) -> None:
                questions.append(dialog.message)
                dialog.accept()

            page.on("dialog", accept)
            yield page, outside, questions
        finally:
            browser.close()


def test_restore_a_failed_execution_from_the_page(client: Client, server: str, tmp_path: Path):
    from playwright.sync_api import expect

    execution_id = start_failing(client, tmp_path)
    client.set_setting("go", True)  # what the operator fixed before restoring
    with browser_page(server) as (page, outside, questions):
        page.goto(server + "/")
        row = page.locator("#executions tr", has_text=execution_id)
        expect(row).to_contain_text("ENDED_ERROR")
        row.get_by_role("link", name=execution_id).click()
        expect(page.locator("#status")).to_have_text("ENDED_ERROR")
        expect(page.locator("#error")).to_contain_text("not ready to ship 30")

        page.locator("#timeline tr.sp", has_text="before-check").click()
        line = line_of(FLOW, "save_dump")
        expect(page.locator("#source span.hl")).to_have_attribute("id", f"L{line}")
        expect(page.locator("#source span.hl")).to_contain_text("this.save_dump('before-check')")
        expect(page.locator("#sp-title")).to_contain_text(f"line {line}")
        expect(page.locator("#variables")).to_contain_text("orders")
        expect(page.locator("#variables")).to_contain_text("30")
        page.screenshot(path=str(tmp_path / "selected.png"), full_page=True)

        page.locator("#restore").click()
        expect(page.locator("#status")).to_have_text("ENDED_SUCCESS", timeout=60_000)
        assert questions and "before-check" in questions[0]
        expect(page.locator("#outputs")).to_contain_text('"total": 30')
        expect(page.locator("#timeline")).to_contain_text("restored 1×")
        page.screenshot(path=str(tmp_path / "restored.png"), full_page=True)

        page.locator("button[data-action=pause]").click()  # refused: it has ended
        expect(page.locator("#notice")).to_contain_text("pause refused")
        assert outside == []  # nothing fetched from anywhere but the server
    assert client.get(execution_id).status.value == "ENDED_SUCCESS"


def test_fix_the_script_from_the_page_and_see_each_savepoints_source(
    client: Client, server: str, tmp_path: Path
):
    from playwright.sync_api import expect

    execution_id = start_failing(client, tmp_path)
    raise_line = line_of(FLOW, "raise RuntimeError")
    with browser_page(server) as (page, outside, questions):
        page.goto(f"{server}/executions/{execution_id}")
        page.locator("#fix-script").fill(FIXED)
        page.locator("#fix-check").click()  # up to the head: the setting check is gone
        expect(page.locator("#fix-result")).to_contain_text("incompatible")
        expect(page.locator("#fix-result")).to_contain_text("before-check")
        expect(page.locator("#fix-restore")).to_be_disabled()

        page.locator("#timeline tr.sp", has_text="before-check").click()
        page.locator("#fix-check").click()
        expect(page.locator("#fix-result")).to_contain_text("compatible up to savepoint #")
        page.locator("#fix-restore").click()
        expect(page.locator("#status")).to_have_text("ENDED_SUCCESS", timeout=60_000)
        assert any("the pasted script" in q and "before-check" in q for q in questions)
        page.screenshot(path=str(tmp_path / "fixed.png"), full_page=True)

        # The failed branch ran under the old script: its source, with the raise, is shown.
        page.locator("#timeline tr.sp.off").last.click()
        expect(page.locator("#source-of")).to_contain_text("ran under")
        expect(page.locator(f"#L{raise_line}")).to_contain_text("raise RuntimeError")
        page.locator("#timeline tr.sp:not(.off)").last.click()
        expect(page.locator("#source-of")).to_contain_text("the one it runs now")
        expect(page.locator("#source")).not_to_contain_text("raise RuntimeError")
        assert outside == []
    handle = client.get(execution_id)
    assert handle.status.value == "ENDED_SUCCESS" and handle.record().source == FIXED
