"""The SCP connector seen from flows, against a real sshd the test starts on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import wait_until
from handler_flows import flow, run
from local_sshd import LocalSshd, running_sshd

import flowrt
from flowrt.client import Client
from flowrt.status import Status


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[LocalSshd]:
    yield from running_sshd(tmp_path / "sshd")


def test_scp_uploads_content_and_flowrt_files_and_downloads_them_back(
    client: Client, sshd: LocalSshd, tmp_path: Path
) -> None:
    client.set_connector("files", "scp", **sshd.config())
    remote = tmp_path / "remote"
    remote.mkdir()
    local = tmp_path / "local.bin"
    local.write_bytes(b"\x00\xfflocal")

    handle = run(
        tmp_path,
        """
        d = this.get('input_value')['dir']
        this.connect('files', content='hello text', dst=f'{d}/a.txt')
        this.connect('files', content=b'\\x00\\x01bytes', dst=f'{d}/b.bin')
        system.file('report.txt').save(content='from a flowrt file')
        this.connect('files', src='cloudomation:report.txt', dst=f'{d}/c.txt')
        this.connect('files', src='local:' + this.get('input_value')['local'], dst=f'{d}/d.bin')
        got_text = this.connect('files', src=f'{d}/a.txt').get('output_value')
        got_bytes = this.connect('files', src=f'{d}/b.bin').get('output_value')
        this.connect('files', src=f'{d}/c.txt', dst='cloudomation:copy.txt')
        this.save(output_value={
            'text': got_text['content'], 'size': got_text['size'],
            'bytes_are_bytes': got_bytes['content'] == b'\\x00\\x01bytes',
            'copy': system.file('copy.txt').get('content'),
        })
        """,
        {"dir": str(remote), "local": str(local)},
    )

    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.outputs == {
        "text": "hello text",
        "size": 10,
        "bytes_are_bytes": True,
        "copy": "from a flowrt file",
    }
    assert (remote / "a.txt").read_text() == "hello text"
    assert (remote / "b.bin").read_bytes() == b"\x00\x01bytes"
    assert (remote / "c.txt").read_text() == "from a flowrt file"
    assert (remote / "d.bin").read_bytes() == b"\x00\xfflocal"


def test_scp_of_a_missing_remote_file_or_flowrt_file_fails_naming_it(
    client: Client, sshd: LocalSshd, tmp_path: Path
) -> None:
    client.set_connector("files", "scp", **sshd.config())

    handle = run(
        tmp_path,
        """
        caught = []
        for kwargs in ({'src': '/no/such/file'}, {'src': 'cloudomation:nothing', 'dst': 'x'}):
            try:
                this.connect('files', **kwargs)
            except flowrt.errors.FlowApiError as error:
                caught.append(f'{type(error).__name__}: {error}')
        this.save(output_value={'caught': caught})
        """,
    )

    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    missing, no_record = record.outputs["caught"]
    assert missing.startswith("ConnectorError") and "download of" in missing
    assert "/no/such/file" in missing and "No such file" in missing
    assert no_record.startswith("NotFoundError") and "no file named 'nothing'" in no_record


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("", "give src='REMOTE/PATH' to download"),
        ("content='x'", "an upload takes dst='REMOTE/PATH'"),
        ("content='x', src='cloudomation:a', dst='b'", "an upload takes dst="),
        ("src='a', dst='b'", "give src='REMOTE/PATH' to download"),
        ("src='cloudomation:a', dst='local:b'", "an upload takes dst='REMOTE/PATH'"),
        ("content=3.5, dst='b'", "content must be text or bytes"),
        ("src='a', copy_timeout=0", "copy_timeout must be a positive number"),
    ],
)
def test_a_bad_scp_call_fails_naming_what_to_give(
    client: Client, sshd: LocalSshd, tmp_path: Path, params: str, expected: str
) -> None:
    client.set_connector("files", "scp", **sshd.config())

    handle = run(tmp_path, f"this.connect('files', {params})")

    assert handle.status is Status.ENDED_ERROR
    assert expected in (handle.record().message or ""), handle.record().message


def test_a_replayed_upload_is_not_sent_again(
    client: Client, sshd: LocalSshd, tmp_path: Path
) -> None:
    client.set_connector("files", "scp", **sshd.config())
    target = tmp_path / "uploaded.txt"
    handle = flowrt.start(
        flow(
            tmp_path,
            f"""
            this.connect('files', content='from the flow', dst='{target}')
            this.pause()  # takes effect before the next call
            this.log('resumed')
            """,
        )
    )
    wait_until(lambda: handle.status is Status.PAUSED, 60, "the flow to pause")
    target.write_text("changed since")  # a second upload would overwrite this

    handle.resume().wait(60)

    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    assert target.read_text() == "changed since"
