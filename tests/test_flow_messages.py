"""Messages and forms: a flow asks people (`system.message`), waits as WAITING holding no worker
slot (`msg.wait()`), and goes on with their response, given by `flowrt respond`.

The embedded default and real Celery workers on PostgreSQL and Redis; bad responses, a
second response, unknown ids, a lost wake-up, a step run again after a crash and a replay on
another worker.
"""

from __future__ import annotations

import json
import textwrap
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import SECRET, Recorder, wait_until, write_flow
from test_cli import flowrt_process
from test_due_indexes import filled, full_scans, plan, reads_every_waiting_row
from test_restore_attempts import DyingStore, WorkerDied

import flowrt
from flowrt.client import Client, Handle
from flowrt.clock import utc_now
from flowrt.errors import (
    InvalidStateError,
    MessageAnsweredError,
    NotFoundError,
    SchemaValidationError,
    UnstorableValueError,
)
from flowrt.forms import check_response
from flowrt.options import Options
from flowrt.runtime import Runtime
from flowrt.status import Status
from flowrt.storage import MessageRecord, SqlStore, open_store
from flowrt.storage.schema import executions

__all__ = ["filled"]  # a fixture of test_due_indexes, used here

FORM = {
    "type": "object",
    "properties": {
        "intro": {"element": "markdown", "description": "Who deploys?", "order": 1},
        "name": {"element": "string", "type": "string", "label": "Name", "order": 2},
        "count": {"element": "number", "type": "integer", "minimum": 1, "order": 3},
        "ok": {"element": "submit", "type": "boolean", "label": "OK", "order": 4},
    },
    "required": ["name"],
}

# Asks with a form as Cloudomation's library scripts do, and keeps what it was answered.
ASKING = f"""
import flow_api

FORM = {FORM!r}

def handler(system, this):
    msg = system.message(subject='Deploy?', message_type='POPUP', body=FORM)
    response = msg.wait().get('response')
    status, submitted = msg.load('status', 'is_submitted')
    this.save(output_value={{'response': response, 'status': status, 'submitted': submitted,
                            'id': msg.id}})
"""

QUICK = "import flow_api\n\ndef handler(system, this):\n    this.save(output_value={'ran': 1})\n"


def _start(client: Client, tmp_path: Path, source: str, name: str = "flow") -> Handle:
    return client.start(write_flow(tmp_path, textwrap.dedent(source), name))


def _waiting_message(handle: Handle) -> MessageRecord:
    """The message `handle` waits for, once it waits for it."""

    def asked() -> MessageRecord | None:
        record = handle.record()
        if record.status is not Status.WAITING or not record.waits_on:
            return None
        [message] = handle.messages()
        assert record.waits_on == f"message:{message.id}"
        return message

    return wait_until(asked, 30, f"execution {handle.id} to wait for its message")  # type: ignore[return-value]


def _respond(env: dict[str, str], message_id: str, response: Any) -> Any:
    """`flowrt respond` as its own process, as an operator runs it."""
    return flowrt_process(env, "respond", message_id, "--response", json.dumps(response))


# --- the embedded default ----------------------------------------------------------------------


def test_a_flow_asks_waits_without_a_worker_slot_and_goes_on_with_the_cli_response(
    flowrt_env, tmp_path
):
    env = flowrt_env(FLOWRT_WORKER_CONCURRENCY="1")
    client = flowrt.default_client()
    asking = _start(client, tmp_path, ASKING)
    message = _waiting_message(asking)
    # Its worker has one slot: another flow runs to its end while this one waits.
    other = _start(client, tmp_path, QUICK, "quick").wait(30)
    assert other.status is Status.ENDED_SUCCESS
    assert asking.status is Status.WAITING

    listed = flowrt_process(env, "messages", "--json")
    assert listed.returncode == 0, listed.stderr
    [shown] = json.loads(listed.stdout)
    assert shown["id"] == message.id and shown["status"] == "PENDING"
    assert shown["subject"] == "Deploy?" and shown["message_type"] == "POPUP"
    text = flowrt_process(env, "messages").stdout
    assert "name (string, required), count (integer), ok (button)" in text
    assert f"flowrt respond {message.id} --response" in text

    # Another process answers: its wake-up cannot reach this process's in-memory broker,
    # so the reaper of this process wakes the execution once its lease has run out.
    answered = _respond(env, message.id, {"name": "Ann", "count": 2, "ok": True})
    assert answered.returncode == 0, answered.stderr
    assert f"responded to message {message.id}" in answered.stdout
    asking.wait(30)
    assert asking.status is Status.ENDED_SUCCESS
    assert asking.outputs == {
        "response": {"name": "Ann", "count": 2, "ok": True},
        "status": "RESPONDED",
        "submitted": True,
        "id": message.id,
    }
    history = json.loads(flowrt_process(env, "messages", "--execution", asking.id, "--json").stdout)
    assert [m["status"] for m in history] == ["RESPONDED"]
    assert json.loads(flowrt_process(env, "messages", "--json").stdout) == []


def test_a_flow_waiting_past_sleep_max_is_unloaded_and_the_response_wakes_it_anywhere(
    flowrt_env, tmp_path
):
    flowrt_env(FLOWRT_SLEEP_MAX_SECONDS="0.3", FLOWRT_LEASE_SECONDS="0.6")
    client = flowrt.default_client()
    asking = _start(client, tmp_path, ASKING)
    message = _waiting_message(asking)
    wait_until(lambda: asking.record().worker is None, 10, "the waiting flow to be unloaded")
    assert asking.status is Status.WAITING
    asking.respond(message.id, {"name": "Ann"})
    assert asking.wait(30).outputs["response"] == {"name": "Ann"}


def test_a_response_that_does_not_fit_the_form_is_refused_and_the_flow_keeps_waiting(
    flowrt_env, tmp_path
):
    env = flowrt_env()
    client = flowrt.default_client()
    asking = _start(client, tmp_path, ASKING)
    message = _waiting_message(asking)

    missing = _respond(env, message.id, {"ok": True})
    assert missing.returncode == 2
    assert "field 'name': it is required but missing" in missing.stderr
    assert 'give e.g. {"name": "text", "count": 1, "ok": true}' in missing.stderr
    wrong = _respond(env, message.id, {"name": "Ann", "count": 0})
    assert (
        wrong.returncode == 2 and "field 'count': 0 is less than the minimum of 1" in wrong.stderr
    )
    not_object = _respond(env, message.id, ["Ann"])
    assert not_object.returncode == 2 and "it must be a JSON object, not list" in not_object.stderr
    not_json = flowrt_process(env, "respond", message.id, "--response", "{name: Ann}")
    assert not_json.returncode == 2 and "not JSON" in not_json.stderr
    for result in (missing, wrong, not_object, not_json):
        assert "Traceback" not in result.stderr
    with pytest.raises(UnstorableValueError, match="NUL"):
        asking.respond(message.id, {"name": "A\x00nn"})
    with pytest.raises(UnstorableValueError, match="keep large content in a file"):
        asking.respond(message.id, {"name": "x" * 1_000_001})

    assert client.store.get_message(message.id).response is None
    assert asking.status is Status.WAITING
    asking.respond(message.id, {"name": "Ann"})
    assert asking.wait(30).outputs["response"] == {"name": "Ann"}


def test_a_second_response_is_refused_and_the_first_one_stays(client, tmp_path):
    asking = _start(client, tmp_path, ASKING)
    message = _waiting_message(asking)
    asking.respond(message.id, {"name": "first"})
    with pytest.raises(MessageAnsweredError, match="a response is final and is not replaced"):
        asking.respond(message.id, {"name": "second"})
    asking.wait(30)
    assert asking.outputs["response"] == {"name": "first"}
    assert client.store.get_message(message.id).response == {"name": "first"}


def test_an_unknown_message_id_is_a_clear_error(flowrt_env, tmp_path):
    env = flowrt_env()
    client = flowrt.default_client()
    missing = str(uuid.uuid4())
    for ref in (missing, "not-an-id"):
        result = _respond(env, ref, {"ok": True})
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert (
            f"no message named '{ref}'; `flowrt messages` lists the pending ones" in result.stderr
        )
    asking = _start(client, tmp_path, ASKING)
    _waiting_message(asking)
    with pytest.raises(NotFoundError, match=f"execution {asking.id} sent no such message"):
        asking.respond(missing, {"name": "Ann"})
    asking.cancel()


def test_cancel_of_a_waiting_execution_ends_it_and_its_message_can_no_longer_be_answered(
    client, tmp_path
):
    asking = _start(client, tmp_path, ASKING)
    message = _waiting_message(asking)
    asking.cancel()
    assert asking.status is Status.ENDED_CANCELLED
    assert client.list_messages() == []  # no longer pending
    with pytest.raises(InvalidStateError, match="it is ENDED_CANCELLED"):
        client.respond(message.id, {"name": "late"})
    assert client.store.get_message(message.id).response is None


def test_a_response_given_while_paused_is_read_once_the_execution_is_resumed(client, tmp_path):
    asking = _start(
        client,
        tmp_path,
        ASKING.replace("msg.wait()", "msg.wait(timeout=3600)"),
    )
    message = _waiting_message(asking)
    asking.pause()
    asking.respond(message.id, {"name": "Ann"})
    assert asking.status is Status.PAUSED
    asking.resume().wait(30)
    assert asking.status is Status.ENDED_SUCCESS
    assert asking.outputs["response"] == {"name": "Ann"}
    record = asking.record()
    assert record.wake_at is None and record.waits_on is None


def test_a_wait_with_a_timeout_is_woken_by_the_response_and_otherwise_raises(client, tmp_path):
    patient = _start(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            msg = system.message(subject='Name?', request='Your name, please')
            msg.wait(timeout=3600)
            this.save(output_value={'name': msg.get('response')['string']})
        """,
        "patient",
    )
    message = _waiting_message(patient)
    assert patient.record().wake_at is not None  # the timeout
    # Woken by the response, not at its timeout an hour from now.
    patient.respond(message.id, {"string": "Ann"})
    assert patient.wait(30).outputs == {"name": "Ann"}

    hasty = _start(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            msg = system.message(subject='Quick?', message='Nobody will read this in time')
            try:
                msg.wait(timeout=0.2)
            except flow_api.exceptions.TimeoutExceededError as error:
                this.save(output_value={'caught': type(error).__name__, 'text': str(error),
                                        'status': msg.get('status')})
        """,
        "hasty",
    ).wait(30)
    assert hasty.status is Status.ENDED_SUCCESS
    assert hasty.outputs["caught"] == "MessageResponseTimeoutError"
    assert "nobody responded to message" in hasty.outputs["text"]
    assert hasty.outputs["status"] == "PENDING"


def test_a_child_waits_for_the_message_its_ended_parent_sent_as_library_flows_do(client, tmp_path):
    child = """
        import flow_api

        def handler(system, this):
            message = system.message(this.get('input_value')['message_id'])
            response = message.wait().get('response')
            this.save(output_value=response)
        """
    client.register_flow("answer", write_flow(tmp_path, textwrap.dedent(child), "answer"))
    parent = _start(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            message = system.message(subject='Details', body={
                'type': 'object',
                'properties': {'flow_name': {'element': 'string', 'type': 'string'},
                               'start': {'element': 'submit', 'label': 'Start'}},
                'required': ['flow_name']})
            this.flow('answer', inputs={'message_id': message.get('id')}, wait=False)
            return this.success('requested details')
        """,
        "ask",
    ).wait(30)
    assert parent.status is Status.ENDED_SUCCESS
    [child_handle] = parent.children()
    [message] = parent.messages()
    wait_until(lambda: child_handle.record().waits_on == f"message:{message.id}", 30)
    assert [m.id for m in client.list_messages()] == [message.id]  # waited for: pending
    client.respond(message.id, {"flow_name": "deploy", "start": True})  # its sender has ended
    assert child_handle.wait(30).outputs == {"flow_name": "deploy", "start": True}


def test_bad_messages_are_refused_at_the_flows_line_and_store_nothing(client, tmp_path):
    handle = _start(
        client,
        tmp_path,
        """
        import flow_api

        def handler(system, this):
            refused = []
            for kwargs in [
                {'subject': 'a\\x00b'},
                {'subject': 'x' * 1001},
                {'subject': ''},
                {'subject': 's', 'message': 'text\\x00'},
                {'subject': 's', 'body': {'properties': {'a': {'type': 'strin'}}}},
                {'subject': 's', 'body': {'type': 'array'}},
                {'subject': 's', 'body': ['not', 'a', 'form']},
                {'subject': 's', 'body': {'bad': float('nan')}},
                {'subject': 's', 'message_type': 'SHOUT'},
                {'subject': 's', 'request': 'a?', 'message': 'b'},
                {'subject': 's', 'colour': 'red'},
            ]:
                try:
                    system.message(**kwargs)
                    refused.append('accepted')
                except flow_api.FlowApiError as error:
                    refused.append(type(error).__name__)
            for bad in (lambda: system.message('no-id'), lambda: system.message(subject=5)):
                try:
                    bad()
                except flow_api.FlowApiError as error:
                    refused.append(type(error).__name__)
            kept = system.message(subject='Grüße 🚀 ' + 'ü' * 900, message_type='warn',
                                  message='Ünïcode ✓\\n' * 1000)
            for bad in (lambda: kept.get('colour'), lambda: kept.load(),
                        lambda: kept.wait(timeout=-1), lambda: kept.wait(timeout=float('nan'))):
                try:
                    bad()
                except flow_api.FlowApiError as error:
                    refused.append(type(error).__name__)
            this.save(output_value={'refused': refused, 'type': kept.get('message_type'),
                                    'subject': kept.get('subject')})
        """,
    ).wait(30)
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    assert handle.outputs["refused"] == [
        "UnstorableValueError",
        "UnstorableValueError",
        "InvalidCallError",
        "UnstorableValueError",
        "SchemaValidationError",
        "SchemaValidationError",
        "SchemaValidationError",
        "UnstorableValueError",
        "InvalidCallError",
        "InvalidCallError",
        "InvalidCallError",
        "InvalidCallError",
        "InvalidCallError",
        "InvalidCallError",
        "InvalidCallError",
        "InvalidCallError",
        "InvalidCallError",
    ]
    assert handle.outputs["type"] == "WARNING"
    assert handle.outputs["subject"] == "Grüße 🚀 " + "ü" * 900
    [kept] = handle.messages()  # nothing else was stored
    assert kept.body == "Ünïcode ✓\n" * 1000


def test_a_response_error_never_echoes_what_was_typed_into_a_password_field():
    form = {
        "type": "object",
        "properties": {"password": {"element": "password", "type": "string", "minLength": 12}},
    }
    message = MessageRecord(str(uuid.uuid4()), str(uuid.uuid4()), "s", "POPUP", form, utc_now())
    with pytest.raises(SchemaValidationError) as refused:
        check_response(message, {"password": "hunter2"})
    assert "field 'password'" in str(refused.value) and "minLength=12" in str(refused.value)
    assert "hunter2" not in str(refused.value) and "hunter2" not in repr(refused.value.args)


# --- lost wake-ups, crashes, replays -----------------------------------------------------------


def test_a_response_whose_wake_up_was_lost_is_found_by_the_reaper(client, tmp_path):
    asking = _start(client, tmp_path, ASKING)
    message = _waiting_message(asking)
    # Stored, and then the process died before it woke anybody: the reaper wakes it.
    client.store.respond_message(message.id, {"name": "Ann"}, utc_now())
    assert asking.wait(30).outputs["response"] == {"name": "Ann"}


def test_a_message_step_run_again_after_a_crash_finds_the_message_it_stored(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'rt.db'}")
    store.__class__ = DyingStore
    recorder = Recorder()
    runtime = Runtime(store, Options(secret=SECRET.encode()), recorder, worker="w1")
    try:
        record = runtime.start("asking", ASKING)
        recorder.deliver(runtime)  # parks at system.message
        ticket, _ = recorder.sent[0]
        store.die_once = True
        with pytest.raises(WorkerDied):
            recorder.deliver(runtime)  # stores the message, dies before its savepoint is
        runtime.step(ticket.execution_id, ticket.version, ticket.head_id)  # run again
        while recorder.sent:
            recorder.deliver(runtime)
        assert store.get_execution(record.id).status is Status.WAITING
        [message] = store.list_messages(record.id)

        [sent] = [sp for sp in store.list_savepoints(record.id) if sp.call == "message"]
        runtime.restore(record.id, sent.id)  # a restore is a new attempt: a new message
        while recorder.sent:
            recorder.deliver(runtime)
        first, second = store.list_messages(record.id)
        assert first.id == message.id and second.id != message.id
        assert store.get_execution(record.id).waits_on == f"message:{second.id}"
    finally:
        runtime.close()
        store.close()


def test_two_responses_at_once_store_exactly_one(store: SqlStore):
    message = store.create_message(
        MessageRecord(str(uuid.uuid4()), str(uuid.uuid4()), "s", "INFO", None, utc_now())
    )
    barrier, outcomes = threading.Barrier(2), []

    def respond(name: str) -> None:
        barrier.wait()
        try:
            store.respond_message(message.id, {"name": name}, utc_now())
            outcomes.append(name)
        except MessageAnsweredError:
            outcomes.append("refused")

    threads = [threading.Thread(target=respond, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes)[1] == "refused" and outcomes.count("refused") == 1
    assert store.get_message(message.id).response == {"name": min(outcomes)}


def test_the_reaper_wakes_only_waits_for_answered_messages_through_the_waiting_index(
    filled: SqlStore,
):
    answered, pending = (
        filled.create_message(
            MessageRecord(str(uuid.uuid4()), str(uuid.uuid4()), "s", "INFO", None, utc_now())
        )
        for _ in range(2)
    )
    waiting = [_waiting_on(filled, f"message:{m.id}") for m in (answered, pending)]
    # Neither answered yet: it reads the waits (one statement on executions) and wakes none.
    found = plan(filled, lambda s: s.wake_answered(utc_now()))
    assert "ix_executions_waiting" in found and not reads_every_waiting_row(found), found
    assert not full_scans(found), found
    filled.respond_message(answered.id, {}, utc_now())
    assert filled.wake_answered(utc_now()) == 1
    woken = {r.id for r in filled.get_executions(waiting) if r.wake_at is not None}
    assert woken == {waiting[0]}
    assert filled.wake_answered(utc_now()) == 0  # woken once


# --- real workers: PostgreSQL, Redis, `celery -A tasks worker` ---------------------------------


@pytest.mark.postgres
@pytest.mark.redis
def test_on_real_workers_a_waiting_flow_holds_no_slot_and_a_cli_response_wakes_it(
    production, tmp_path
):
    client, workers = production
    workers.start(concurrency=1)
    asking = _start(client, tmp_path, ASKING)
    message = _waiting_message(asking)
    other = _start(client, tmp_path, QUICK, "quick").wait(60)
    assert other.status is Status.ENDED_SUCCESS and asking.status is Status.WAITING
    answered = _respond(workers.env, message.id, {"name": "Ann", "ok": True})
    assert answered.returncode == 0, answered.stderr
    asking.wait(60)
    assert asking.status is Status.ENDED_SUCCESS, workers.logs()
    assert asking.outputs["response"] == {"name": "Ann", "ok": True}


@pytest.mark.postgres
@pytest.mark.redis
def test_after_a_worker_restart_replay_answers_message_and_wait_from_the_journal(
    production, tmp_path
):
    client, workers = production
    first = workers.start(concurrency=1)
    handle = _start(
        client,
        tmp_path,
        ASKING.replace(
            "    status, submitted",
            "    this.pause()\n    status, submitted",
        ),
    )
    message = _waiting_message(handle)
    assert _respond(workers.env, message.id, {"name": "Ann"}).returncode == 0
    wait_until(lambda: handle.status is Status.PAUSED, 60, "the flow to pause")
    workers.kill(first)
    workers.start(concurrency=1)  # no live executions: it replays from the journal
    handle.resume().wait(60)
    assert handle.status is Status.ENDED_SUCCESS, workers.logs()
    assert handle.outputs["response"] == {"name": "Ann"} and handle.outputs["id"] == message.id
    assert [m.id for m in handle.messages()] == [message.id]  # no second message
    calls = [sp.call for sp in handle.savepoints()]
    assert calls.count("message") == 1 and calls.count("message.wait") == 1


def _waiting_on(store: SqlStore, waits_on: str) -> str:
    execution = store.create_execution("f", "", {}, execution_id=str(uuid.uuid4()))
    with store.engine.begin() as conn:
        conn.execute(
            executions.update()
            .where(executions.c.id == execution.id)
            .values(status="WAITING", waits_on=waits_on)
        )
    return execution.id
