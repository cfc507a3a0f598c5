"""The SMTP connector against a real local SMTP server (aiosmtpd on a loopback port)."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from conftest import line_of
from test_connections import replays, run, shown_of

import flowrt
from flowrt.client import Client
from flowrt.status import Status

FLOWRT = Path(sys.executable).parent / "flowrt"  # the console script of this virtualenv
PASSWORD = "mail-Pa55-9d8c7b6a"
USERS = {"robot": PASSWORD}


@dataclass
class Received:
    """One mail as the server received it: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    def part(self, kind: str) -> str:
        body = self.message.get_body(preferencelist=(kind,))
        assert body is not None, f"no {kind} part in {self.message}"
        return str(body.get_content())  # type: ignore[attr-defined]


class MailServer:
    """A real SMTP server on a free loopback port that keeps what it receives.

    With `users`, it offers AUTH (without TLS: it is loopback only) and checks logins.
    """

    def __init__(self, users: dict[str, str] | None = None) -> None:
        self.received: list[Received] = []
        self.logins: list[tuple[str, bool]] = []
        self._users = users
        self._lock = threading.Lock()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        options: dict[str, Any] = {}
        if users is not None:
            options = {"authenticator": self._authenticate, "auth_require_tls": False}
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, **options)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 OK"

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = data.login.decode(), data.password.decode()
        ok = self._users is not None and self._users.get(login) == password
        with self._lock:
            self.logins.append((login, ok))
        return AuthResult(success=ok, handled=False)  # aiosmtpd then answers 535 itself


@pytest.fixture
def mail() -> Iterator[MailServer]:
    server = MailServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def guarded_mail() -> Iterator[MailServer]:
    server = MailServer(USERS)
    server.start()
    yield server
    server.stop()


INLINE_FLOW = """\
import flow_api

def handler(system, this, inputs):
    sent = this.task('SMTP', {
        'smtp_host': '127.0.0.1',
        'smtp_port': inputs['port'],
        'use_tls': False,
        'from': 'flowrt@example.org',
        'to': ['ann@example.org', 'bob@example.org'],
        'cc': 'carl@example.org',
        'bcc': ['dora@example.org'],
        'subject': 'Report ready ✓',
        'text': 'The report is ready.',
        'html': '<p>The report is <b>ready</b>.</p>',
    }, name='notify')
    this.save(output_value={'out': sent.get('output_value'), 'name': sent.get('name')})
    return this.success('sent')
"""


def test_an_inline_smtp_task_delivers_one_mail_with_its_headers_text_and_html(
    client: Client, mail: MailServer, tmp_path: Path
) -> None:
    handle = run(tmp_path, INLINE_FLOW, {"port": mail.port})

    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    [got] = mail.received
    assert got.mail_from == "flowrt@example.org"
    assert got.rcpt_tos == [
        "ann@example.org",
        "bob@example.org",
        "carl@example.org",
        "dora@example.org",
    ]
    message = got.message
    assert message["From"] == "flowrt@example.org"
    assert message["To"] == "ann@example.org, bob@example.org"
    assert message["Cc"] == "carl@example.org"
    assert message["Bcc"] is None  # blind copies are in the envelope only
    assert message["Subject"] == "Report ready ✓"
    assert got.part("plain").strip() == "The report is ready."
    assert got.part("html").strip() == "<p>The report is <b>ready</b>.</p>"
    [connect] = [s for s in handle.savepoints() if s.call == "connect"]
    # The Message-ID comes from the idempotency key: a re-sent mail carries the same one.
    assert message["Message-ID"] == f"<{handle.id}.{connect.id}@flowrt>"
    assert record.outputs == {
        "out": {
            "message_id": message["Message-ID"],
            "recipients": got.rcpt_tos,
            "refused": {},
        },
        "name": "notify",
    }


STORED_FLOW = """\
import flow_api

def handler(system, this):
    this.connect('mail', to='ops@example.org', subject='hello', text='body text')
    return this.success('sent')
"""


def test_a_stored_smtp_connector_logs_in_with_its_password_and_sends(
    client: Client, guarded_mail: MailServer, tmp_path: Path
) -> None:
    client.set_connector(
        "mail",
        "SMTP",
        smtp_host="127.0.0.1",
        smtp_port=guarded_mail.port,
        use_tls=False,
        login="robot",
        password=PASSWORD,
        **{"from": "robot@example.org"},
    )

    handle = run(tmp_path, STORED_FLOW)

    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    assert guarded_mail.logins == [("robot", True)]
    [got] = guarded_mail.received
    assert got.mail_from == "robot@example.org"
    assert got.rcpt_tos == ["ops@example.org"]
    assert got.part("plain").strip() == "body text"


REFUSED_FLOW = """\
import flow_api

def handler(system, this):
    password = system.setting('mail-password').get('value')
    mailer = {'smtp_host': '127.0.0.1', 'smtp_port': system.setting('port').get('value'),
              'use_tls': False, 'login': 'robot', 'password': password,
              'from': 'robot@example.org', 'to': 'ops@example.org', 'text': 'hi'}
    try:
        this.connect(connector_type='SMTP', input_value=mailer)
    except flow_api.ConnectorError as error:
        this.log('caught', str(error))
    this.connect(connector_type='smtp', **mailer)
    return this.success('unreachable')
"""


def test_a_refused_login_fails_catchably_and_never_shows_the_password(
    client: Client,
    guarded_mail: MailServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "wrong-" + PASSWORD
    client.set_setting("mail-password", wrong)
    client.set_setting("port", guarded_mail.port)

    with caplog.at_level(logging.DEBUG):
        handle = run(tmp_path, REFUSED_FLOW)

    record = handle.record()
    assert record.status is Status.ENDED_ERROR
    assert record.error_line == line_of(REFUSED_FLOW, "this.connect(connector_type='smtp'")
    assert "refused the login of 'robot'" in (record.message or "")
    assert "535" in (record.message or "")
    assert guarded_mail.logins and not any(ok for _, ok in guarded_mail.logins)
    assert guarded_mail.received == []
    [caught] = handle.logs()
    assert "refused the login of 'robot'" in caught.message
    shown = shown_of(handle) + caplog.text
    assert "refused the login" in shown
    assert wrong not in shown and PASSWORD not in shown


BAD_MAIL_FLOW = """\
import flow_api

def handler(system, this, inputs):
    base = {'smtp_host': '127.0.0.1', 'smtp_port': inputs['port'], 'use_tls': False,
            'from': 'a@example.org'}
    problems = []
    for extra in ({'to': 'x@example.org', 'subject': 'a\\nBcc: evil@example.org'},
                  {'to': 'x@example.org\\r\\nRCPT TO:<evil@example.org>'},
                  {'subject': 'no recipient'},
                  {'to': 'x@example.org', 'attachments': ['f.txt']},
                  {'to': 'x@example.org', 'smtp_port': 'twenty-five'},
                  {'to': 42}):
        try:
            this.task('SMTP', {**base, **extra})
        except flow_api.InvalidCallError as error:
            problems.append(str(error))
    try:
        this.task('SMTP', {**base, 'to': 'x@example.org', 'use_tls': True})
    except flow_api.ConnectorError as error:
        problems.append(str(error))
    this.save(output_value={'problems': problems})
    return this.success('checked')
"""


def test_bad_mail_parameters_are_catchable_errors_and_send_nothing(
    client: Client, mail: MailServer, tmp_path: Path
) -> None:
    handle = run(tmp_path, BAD_MAIL_FLOW, {"port": mail.port})

    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    problems = record.outputs["problems"]
    assert len(problems) == 7, problems
    assert "linefeed" in problems[0] or "line break" in problems[0]
    assert "line break" in problems[1]
    assert "needs to=" in problems[2]
    assert "'attachments'" in problems[3] and "smtp_host" in problems[3]
    assert "smtp_port 'twenty-five'" in problems[4]
    assert "to= must be an address" in problems[5]
    assert "does not offer STARTTLS" in problems[6] and "use_tls=False" in problems[6]
    assert mail.received == []


def flowrt_cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run the `flowrt` command with this test's settings."""
    return subprocess.run(
        [str(FLOWRT), *arguments], env=dict(os.environ), capture_output=True, text=True, timeout=120
    )


def test_the_cli_stores_an_smtp_connector_and_lists_it_without_its_password(
    client: Client, tmp_path: Path
) -> None:
    params = ["smtp_host=mail.example.org", "smtp_port=587", "login=robot", f"password={PASSWORD}"]
    options = [arg for param in params for arg in ("--set", param)]

    done = flowrt_cli("connector", "set", "mail", "--type", "SMTP", *options)

    assert done.returncode == 0, done.stderr
    [record] = client.list_named("connector")
    assert record.value == {
        "type": "smtp",
        "smtp_host": "mail.example.org",
        "smtp_port": 587,
        "login": "robot",
        "password": PASSWORD,
    }
    listed = flowrt_cli("connector", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert PASSWORD not in listed.stdout + listed.stderr
    [shown] = json.loads(listed.stdout)
    assert shown["value"]["password"] == "***" and shown["value"]["login"] == "robot"
    refused = flowrt_cli("connector", "set", "bad", "--type", "smtp", "--set", "smtp_port=25")
    assert refused.returncode == 2 and "needs smtp_host" in refused.stderr


REPLAYED_FLOW = """\
import flow_api

def handler(system, this, inputs):
    sent = this.task('SMTP', smtp_host='127.0.0.1', smtp_port=inputs['port'], use_tls=False,
                     to='ops@example.org', subject='once', text='only once',
                     **{'from': 'robot@example.org'})
    this.sleep(1.5)  # longer than FLOWRT_SLEEP_MAX_SECONDS: unloaded, then replayed on waking
    this.save(output_value={'id': sent.get('output_value')['message_id']})
    return this.success('sent once')
"""


def test_a_replayed_step_does_not_send_the_mail_again(
    flowrt_env: Any, mail: MailServer, tmp_path: Path
) -> None:
    flowrt_env(FLOWRT_SLEEP_MAX_SECONDS="0.3")
    client = flowrt.default_client()  # built with that setting

    handle = run(tmp_path, REPLAYED_FLOW, {"port": mail.port})

    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    [got] = mail.received
    assert handle.outputs == {"id": got.message["Message-ID"]}
    assert replays(client) >= 1  # the woken execution answered its task from the journal
