"""The web view's links out: an execution's steps in Flower (FLOWRT_FLOWER_URL)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient

import flowrt
from flowrt.client import Client
from flowrt.errors import ConfigurationError
from flowrt.web import create_app
from tests.test_web_api import start_failing


def test_no_flower_link_without_a_flower_url(client: Client, tmp_path: Path):
    execution_id = start_failing(client, tmp_path)
    page = TestClient(create_app(client, users=[])).get(f"/executions/{execution_id}").text
    assert "flower-steps" not in page and "Flower" not in page


def test_the_page_links_its_steps_to_flowers_task_search(
    flowrt_env: Callable[..., dict[str, str]], tmp_path: Path
):
    flowrt_env(FLOWRT_FLOWER_URL="http://flower.example:5555/")
    client = flowrt.default_client()
    execution_id = start_failing(client, tmp_path)
    page = TestClient(create_app(client, users=[])).get(f"/executions/{execution_id}").text
    link = f"http://flower.example:5555/api/tasks?search=args%3A{execution_id}"
    assert f'id="flower-steps" href="{link}"' in page
    assert unquote(link).endswith(f"search=args:{execution_id}")
    assert 'href="http://flower.example:5555/tasks"' in page


@pytest.mark.parametrize("bad", ["localhost:5555", "javascript:alert(1)", "http://a b/"])
def test_a_flower_url_that_is_no_web_address_is_refused(
    flowrt_env: Callable[..., dict[str, str]], bad: str
):
    flowrt_env(FLOWRT_FLOWER_URL=bad)
    with pytest.raises(ConfigurationError) as caught:
        flowrt.default_client()
    assert "FLOWRT_FLOWER_URL" in str(caught.value) and "http://localhost:5555" in str(caught.value)
