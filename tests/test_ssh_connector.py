"""The SSH connector seen from flows, against a real sshd the test starts on loopback."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import line_of, wait_until
from handler_flows import flow, run, source
from local_sshd import LocalSshd, keygen, make_password_user, running_sshd

import flowrt
from flowrt.cli import cli
from flowrt.client import Client
from flowrt.connectors.scp import ScpConnector
from flowrt.connectors.ssh import SshConnector
from flowrt.errors import ConnectorError
from flowrt.status import Status


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[LocalSshd]:
    yield from running_sshd(tmp_path / "sshd")


@pytest.fixture(scope="module")
def password_user() -> tuple[str, str]:
    return make_password_user()


def cli_ok(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


# --- SSH ---------------------------------------------------------------------------------------


def test_ssh_runs_a_script_with_a_key_set_by_the_cli_and_returns_retcode_report_and_streams(
    client: Client, sshd: LocalSshd, tmp_path: Path
) -> None:
    key_file = tmp_path / "client_key"
    key_file.write_text(sshd.client_key)
    cli_ok(
        "connector", "set", "box", "--type", "ssh",
        "--set", "hostname=127.0.0.1", "--set", f"port={sshd.port}",
        "--set", f"username={sshd.user}", "--set", f"hostkey={sshd.host_key}",
        "--set-file", f"key={key_file}",
    )  # fmt: skip

    handle = run(
        tmp_path,
        """
        out = this.connect('box', script='echo one; echo warn >&2; echo $((6 * 7))')
        this.save(output_value=out.get('output_value'))
        """,
    )

    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.outputs["retcode"] == 0
    assert record.outputs["stdout"] == "one\n42\n"
    assert record.outputs["stderr"] == "warn\n"
    assert sorted(record.outputs["report"].splitlines()) == ["42", "one", "warn"]
    # The private key is shown masked, the public host key as it is.
    [listed] = json.loads(cli_ok("connector", "list", "--json"))
    assert listed["value"]["key"] == "***" and listed["value"]["hostkey"] == sshd.host_key
    assert "PRIVATE KEY" not in cli_ok("connector", "list")


def test_a_script_exiting_non_zero_fails_at_its_line_with_retcode_and_stderr(
    client: Client, sshd: LocalSshd, tmp_path: Path
) -> None:
    client.set_connector("box", "ssh", **sshd.config())
    body = """
        this.connect('box', script='echo half done; echo disk full >&2; exit 3')
        return this.success('unreachable')
    """

    handle = run(tmp_path, body)

    record = handle.record()
    assert record.status is Status.ENDED_ERROR
    assert record.error_line == line_of(source(body), "this.connect(")
    assert "RemoteCommandError" in (record.message or "")
    for text in (record.message or "", record.error or ""):
        assert "the script on " in text and "exited with 3: disk full" in text
        assert "raise_for_retcode=False" in text


def test_a_flow_catches_remote_command_error_or_asks_for_the_output_regardless(
    client: Client, sshd: LocalSshd, tmp_path: Path
) -> None:
    client.set_connector("box", "ssh", **sshd.config())

    handle = run(
        tmp_path,
        """
        try:
            this.connect('box', script='echo partial; exit 5')
        except flow_api.exceptions.RemoteCommandError as error:
            caught = {'retcode': error.retcode, 'stdout': error.stdout, 'stderr': error.stderr}
        regardless = this.connect('box', script='echo x; exit 7', raise_for_retcode=False)
        this.save(output_value={'caught': caught, 'regardless': regardless.get('output_value')})
        """,
    )

    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.outputs["caught"] == {"retcode": 5, "stdout": "partial\n", "stderr": ""}
    assert record.outputs["regardless"]["retcode"] == 7
    assert record.outputs["regardless"]["stdout"] == "x\n"


def test_ssh_logs_in_with_a_password_and_masks_it_in_what_the_script_prints(
    client: Client, sshd: LocalSshd, password_user: tuple[str, str], tmp_path: Path
) -> None:
    user, password = password_user
    client.set_connector(
        "box", "ssh", **sshd.config(username=user, password=password, key=None)
    )  # fmt: skip

    handle = run(
        tmp_path,
        """
        out = this.connect('box', script='whoami; echo "my password is $PASSWORD"')
        this.save(output_value=out.get('output_value'))
        """.replace("$PASSWORD", password),
    )

    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.outputs["stdout"] == f"{user}\nmy password is ***\n"
    [listed] = client.list_named("connector")
    assert listed.value["password"] == password  # stored as given; shown masked:
    assert json.loads(cli_ok("connector", "list", "--json"))[0]["value"]["password"] == "***"


def test_a_wrong_password_fails_the_call_without_showing_it(
    client: Client, sshd: LocalSshd, password_user: tuple[str, str], tmp_path: Path
) -> None:
    user, _ = password_user
    wrong = "wrong-" + "x" * 20
    client.set_connector("box", "ssh", **sshd.config(username=user, password=wrong, key=None))

    handle = run(tmp_path, "this.connect('box', script='true')")

    record = handle.record()
    assert record.status is Status.ENDED_ERROR
    assert "authentication failed" in (record.message or "")
    assert "check username, key and password" in (record.message or "")
    for text in (record.message or "", record.error or "", json.dumps(record.outputs)):
        assert wrong not in text


@pytest.mark.parametrize("offered", ["another ed25519 key", "a key of another type"])
def test_a_host_key_other_than_the_configured_one_refuses_the_login_and_runs_nothing(
    client: Client, sshd: LocalSshd, tmp_path: Path, offered: str
) -> None:
    other = tmp_path / "other"
    if offered == "another ed25519 key":
        keygen(other)
        expected = "is not the hostkey configured"
    else:
        subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-N", "", "-f", str(other)], check=True)
        expected = "the hostkey configured holds no key of that type"
    hostkey = " ".join(Path(f"{other}.pub").read_text().split()[:2])
    client.set_connector("box", "ssh", **sshd.config(hostkey=hostkey))
    marker = tmp_path / "ran"

    handle = run(tmp_path, f"this.connect('box', script='touch {marker}')")

    assert handle.status is Status.ENDED_ERROR
    assert expected in (handle.record().message or "")
    assert "ssh-keyscan" in (handle.record().message or "")
    assert not marker.exists()


def keyscan(sshd: LocalSshd, *options: str) -> str:
    """What `ssh-keyscan` prints for the sshd: known_hosts lines."""
    done = subprocess.run(
        ["ssh-keyscan", *options, "-p", str(sshd.port), "127.0.0.1"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@pytest.mark.parametrize("form", ["ssh-keyscan", "ssh-keyscan -H", "known_hosts", "False"])
def test_hostkey_takes_ssh_keyscan_output_or_known_hosts_lines_or_false_to_skip_the_check(
    client: Client, sshd: LocalSshd, tmp_path: Path, form: str
) -> None:
    keygen(tmp_path / "other")
    other = Path(f"{tmp_path / 'other'}.pub").read_text()
    hostkey: str | bool = {
        "ssh-keyscan": keyscan(sshd),
        "ssh-keyscan -H": keyscan(sshd, "-H"),  # hosts hashed
        "known_hosts": f"# ours\n\nother.example {other}\n"
        f"[127.0.0.1]:{sshd.port} {sshd.host_key} a comment\n",
        "False": False,
    }[form]
    client.set_connector("box", "ssh", **sshd.config(hostkey=hostkey))

    handle = run(
        tmp_path,
        "this.save(output_value=this.connect('box', script='echo in').get('output_value'))",
    )

    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    assert handle.outputs["stdout"] == "in\n"


def test_a_known_hosts_line_for_another_host_is_not_taken_for_this_one(
    client: Client, sshd: LocalSshd, tmp_path: Path
) -> None:
    for_other = f"other.example {sshd.host_key}\n[127.0.0.1]:{sshd.port + 1} {sshd.host_key}"
    with pytest.raises(ConnectorError) as caught:
        client.set_connector("box", "ssh", **sshd.config(hostkey=for_other))
    assert f"its hostkey names other hosts only, none for [127.0.0.1]:{sshd.port}" in str(
        caught.value
    )

    revoked = f"@revoked * {sshd.host_key}\n{sshd.host_key}"
    with pytest.raises(ConnectorError) as caught:
        client.set_connector("box", "ssh", **sshd.config(hostkey=revoked))
    assert "its hostkey line 1 has the marker @revoked, which is not supported" in str(caught.value)


def test_an_unreachable_host_fails_the_call_saying_so(
    client: Client, sshd: LocalSshd, tmp_path: Path
) -> None:
    client.set_connector("down", "ssh", **sshd.config(connect_timeout=5))
    sshd.stop()  # nothing listens on its port any more

    handle = run(tmp_path, "this.connect('down', script='true')")

    assert handle.status is Status.ENDED_ERROR
    assert "cannot log in to" in (handle.record().message or "")
    assert "is the host up and the port right?" in (handle.record().message or "")


def test_a_script_running_past_script_timeout_fails_naming_it(
    client: Client, sshd: LocalSshd, tmp_path: Path
) -> None:
    client.set_connector("box", "ssh", **sshd.config())

    handle = run(tmp_path, "this.connect('box', script='sleep 30', script_timeout=1)")

    assert handle.status is Status.ENDED_ERROR
    assert "did not end within script_timeout=1 s" in (handle.record().message or "")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("", "needs script='...'"),
        ("script='true', connect_tries=3", "takes no parameter 'connect_tries'"),
        ("script='true', script_timeout=-1", "script_timeout -1 must be a positive number"),
        ("script='true', encoding='no-such-codec'", "encoding 'no-such-codec' is not a text"),
    ],
)
def test_a_bad_ssh_call_fails_at_its_line_naming_the_parameter(
    client: Client, sshd: LocalSshd, tmp_path: Path, params: str, expected: str
) -> None:
    client.set_connector("box", "ssh", **sshd.config())

    handle = run(tmp_path, f"this.connect('box', {params})")

    assert handle.status is Status.ENDED_ERROR
    assert "InvalidCallError" in (handle.record().message or "")
    assert expected in (handle.record().message or "")


REPLAYED = """
    out = this.connect('box', script='echo ran >> {counter}; wc -l < {counter}')
    this.pause()
    this.save(output_value={{'first': out.get('output_value')['stdout'].strip()}})
"""


def test_a_replayed_ssh_call_is_answered_from_the_journal_and_does_not_run_again(
    client: Client, sshd: LocalSshd, tmp_path: Path
) -> None:
    client.set_connector("box", "ssh", **sshd.config())
    counter = tmp_path / "counter"
    handle = flowrt.start(flow(tmp_path, REPLAYED.format(counter=counter)))
    wait_until(lambda: handle.status is Status.PAUSED, 60, "the flow to pause")
    assert handle.record().worker is None  # unloaded: going on replays its calls

    handle.resume().wait(60)

    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    assert handle.outputs == {"first": "1"}
    assert counter.read_text() == "ran\n"  # the remote side saw one run


def test_an_ssh_call_is_not_run_again_when_another_worker_process_replays_it(
    production: tuple[Client, Any], sshd: LocalSshd, tmp_path: Path
) -> None:
    client, workers = production
    client.set_connector("box", "ssh", **sshd.config())
    counter = tmp_path / "counter"
    workers.start()
    handle = client.start(flow(tmp_path, REPLAYED.format(counter=counter)))
    wait_until(lambda: handle.status is Status.PAUSED, 60, "the flow to pause")

    workers.stop_all()  # the worker that ran the call is gone; a new process replays it
    workers.start()
    handle.resume().wait(60)

    assert handle.status is Status.ENDED_SUCCESS, (handle.record().error, workers.logs())
    assert handle.outputs == {"first": "1"}
    assert counter.read_text() == "ran\n"


# --- configuration -----------------------------------------------------------------------------


def _ssh_config(sshd: LocalSshd | None = None, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "hostname": "127.0.0.1",
        "username": "someone",
        "key": sshd.client_key if sshd else None,
        "hostkey": sshd.host_key if sshd else None,
    }
    return {k: v for k, v in {**base, **changes}.items() if v is not None}


@pytest.mark.parametrize("type_name", ["ssh", "scp"])
@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"hostkey": None}, "it needs a hostkey: the server's public key"),
        ({"hostkey": "not a key"}, "its hostkey line 1 is not a public key"),
        ({"key": None}, "it needs a key (the text of a private key) or a password"),
        ({"key": "-----BEGIN NONSENSE-----"}, "its key is not a private key"),
        ({"port": 0}, "its port 0 must be a whole number from 1 to 65535"),
        ({"port": "22"}, "its port '22' must be a whole number"),
        ({"hostname": " host"}, "its hostname ' host' must be a text without"),
        ({"connect_timeout": -1}, "its connect_timeout -1 must be a positive"),
        ({"password": 1234}, "its password must be a text, not int"),
    ],
)
def test_a_bad_ssh_or_scp_configuration_is_refused_naming_what_to_fix(
    client: Client, sshd: LocalSshd, type_name: str, changes: dict[str, Any], expected: str
) -> None:
    config = _ssh_config(sshd, **changes)

    with pytest.raises(ConnectorError) as caught:
        client.set_connector("box", type_name, **config)

    assert expected in str(caught.value)
    assert "connector 'box' is misconfigured" in str(caught.value)
    assert client.list_named("connector") == []


def test_a_passphrase_protected_key_is_refused_and_never_shown(
    client: Client, tmp_path: Path
) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret-phrase", "-f", str(tmp_path / "k")],
        check=True,
    )
    key = (tmp_path / "k").read_text()

    with pytest.raises(ConnectorError) as caught:
        client.set_connector("box", "ssh", **_ssh_config(key=key, hostkey=False))

    assert "its key is protected by a passphrase" in str(caught.value)
    assert key.splitlines()[1] not in str(caught.value)


def test_ssh_and_scp_split_inline_parameters_into_configuration_and_call() -> None:
    params = {"hostname": "h", "username": "u", "key": "k", "hostkey": False, "script": "ls"}
    assert SshConnector.split_inline(params) == (
        {"hostname": "h", "username": "u", "key": "k", "hostkey": False},
        {"script": "ls"},
    )
    config, call = ScpConnector.split_inline({"hostname": "h", "src": "a", "dst": "b"})
    assert config == {"hostname": "h"} and call == {"src": "a", "dst": "b"}
