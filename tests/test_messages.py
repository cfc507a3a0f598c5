"""Step messages on the broker: JSON, ids only, named and described for Flower."""

from __future__ import annotations

import base64
import json

import redis
from conftest import base_env

import config
from flowrt.dispatch import StepTicket
from tasks.steps import CeleryDispatcher, create_app


def test_a_step_message_is_json_with_ids_only_and_reads_well_in_flower(redis_url, tmp_path):
    settings = config.load(base_env(tmp_path, FLOWRT_BROKER_URL=redis_url, FLOWRT_QUEUE="q-msg"))
    app = create_app(settings)
    head = "0190a3c4-0000-7000-8000-0000000000aa"
    ticket = StepTicket("0190a3c4-0000-7000-8000-000000000001", 7, "billing", 3, "connect", head)
    CeleryDispatcher(app, "w1@host").enqueue_step(ticket)
    CeleryDispatcher(app, "w1@host").enqueue_step(ticket, worker="w1@host")

    broker = redis.Redis.from_url(redis_url)
    shared, sticky = broker.lrange("q-msg", 0, -1), broker.lrange("w1@host.dq2", 0, -1)
    assert len(shared) == 1 and len(sticky) == 1  # sticky steps go to the worker's own queue
    message = json.loads(shared[0])
    headers = message["headers"]
    assert message["content-type"] == "application/json"
    assert headers["task"] == "flowrt.step"
    # The name is bounded (flow and call) for Flower's metrics; the number is in kwargsrepr.
    assert headers["shadow"] == "flowrt.step billing connect"
    assert "'seq': 3" in headers["kwargsrepr"]
    assert headers["argsrepr"] == "(execution='0190a3c4-0000-7000-8000-000000000001', version=7)"
    assert (
        "'flow': 'billing'" in headers["kwargsrepr"]
        and "'call': 'connect'" in headers["kwargsrepr"]
    )
    body = json.loads(base64.b64decode(message["body"]))
    assert body[0] == ["0190a3c4-0000-7000-8000-000000000001", 7, head] and body[1] == {}
    broker.close()
