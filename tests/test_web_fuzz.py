"""A schema-driven fuzz of the web view's JSON API (schemathesis, from its OpenAPI document):
whatever it is sent, it answers a documented status and never a 5xx."""

from __future__ import annotations

import base64
import itertools
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import flowrt
from flowrt.client import Client
from flowrt.web import create_app
from tests.conftest import write_flow
from tests.test_web_api import FLOW, USERS, start_failing

AUTH = {"authorization": "Basic " + base64.b64encode(":".join(USERS[0]).encode()).decode()}
SLEEPER = "def handler(system, this):\n    this.sleep(3600)\n"
EXAMPLES = 25  # per operation, valid and invalid: the whole fuzz stays well under a minute
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _pick(choices: list[str], generated: object) -> object:
    """Half the time a real id in place of the generated one (chosen by the generated value,
    so that the examples stay reproducible): most random ids only ever reach a 404."""
    index = zlib.crc32(repr(generated).encode())
    return choices[index % len(choices)] if index % 2 else generated


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def embedded(request: pytest.FixtureRequest, flowrt_env: Callable[..., dict[str, str]]) -> Client:
    """The embedded client (in-process worker) on SQLite or on PostgreSQL."""
    if request.param == "postgresql":
        flowrt_env(FLOWRT_DATABASE_URL=request.getfixturevalue("pg_clean"))
    return flowrt.default_client()


def test_the_api_answers_every_request_without_a_server_error(embedded: Client, tmp_path: Path):
    client = embedded
    failed = [start_failing(client, tmp_path, n) for n in (1, 2)]
    client.set_setting("go", True)
    done = client.start(write_flow(tmp_path, FLOW, "shipping"), {"orders": 5}).wait(60)
    sleeper = client.start(write_flow(tmp_path, SLEEPER, "sleeper"))
    executions = [*failed, done.id, sleeper.id]
    refs = [sp.id for sp in client.get(failed[0]).savepoints()] + ["before-check"]
    app = create_app(client, users=USERS)
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app, headers=AUTH)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 11
    seen: Counter[tuple[str, int]] = Counter()
    unsatisfiable: list[str] = []

    for operation, mode in itertools.product(operations, GenerationMode):

        @given(case=operation.as_strategy(mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def answers(case: Any) -> None:
            if "execution_id" in (case.path_parameters or {}):
                case.path_parameters["execution_id"] = _pick(
                    executions, case.path_parameters["execution_id"]
                )
            if isinstance(case.body, dict) and "ref" in case.body:
                case.body["ref"] = _pick(refs, case.body["ref"])
            response = case.call_and_validate(headers=AUTH, checks=CHECKS)
            seen[(case.method.upper(), response.status_code)] += 1

        try:
            answers()
        except Unsatisfiable:
            # Nothing is invalid for it (no parameters, any JSON body): only valid examples.
            assert mode is GenerationMode.NEGATIVE
            unsatisfiable.append(f"{operation.method} {operation.path}")
    assert len(unsatisfiable) < len(operations) / 2, unsatisfiable
    # The fuzz reached past the refusals: real executions were shown and changed.
    statuses = {status for _, status in seen}
    assert {200, 400, 404} <= statuses, seen
    assert seen[("POST", 200)] and seen[("GET", 200)], seen
