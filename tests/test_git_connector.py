"""The GIT connector seen from flows: local bare repositories, over https-like HTTP with a
password (`git http-backend` behind a local server) and over ssh (a real sshd on loopback)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_until, write_flow
from git_http import GitHttpServer
from handler_flows import run, source
from local_sshd import LocalSshd, keygen, running_sshd

import flowrt
from flowrt.client import Client
from flowrt.connectors.git import GitConnector
from flowrt.connectors.masking import mask_config
from flowrt.errors import ConnectorError
from flowrt.status import Status

PASSWORD = "s3cret-Pa55word-for-git"


def git(*args: str, cwd: Path | None = None) -> str:
    """Run git as the test's own hand on a repository (not through flowrt)."""
    identity = ["-c", "user.name=Tess Ter", "-c", "user.email=tess@example.org"]
    done = subprocess.run(
        ["git", *identity, *args], cwd=cwd, capture_output=True, text=True, check=True
    )
    return done.stdout


@pytest.fixture
def bare(tmp_path: Path) -> Path:
    """A bare repository on branch develop: README.md and conf/app.yaml, a tag v1, and a
    branch feature with one more file."""
    remote = tmp_path / "served" / "repo.git"
    remote.parent.mkdir()
    git("init", "-q", "--bare", "-b", "develop", str(remote))
    work = tmp_path / "seed"
    git("clone", "-q", str(remote), str(work))
    git("checkout", "-q", "-b", "develop", cwd=work)
    (work / "README.md").write_text("# demo\n")
    (work / "conf").mkdir()
    (work / "conf" / "app.yaml").write_text("name: demo\n")
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "first commit\n\nwith a body", cwd=work)
    git("tag", "v1", cwd=work)
    git("checkout", "-q", "-b", "feature", cwd=work)
    (work / "extra.txt").write_text("only on feature\n")
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "feature work", cwd=work)
    git("push", "-q", "origin", "develop", "feature", "v1", cwd=work)
    return remote


# --- local repositories ------------------------------------------------------------------------


def test_get_returns_the_files_and_metadata_of_a_branch_a_tag_and_origin_branch(
    client: Client, bare: Path, tmp_path: Path
) -> None:
    client.set_connector("repo", "git", repository_url=str(bare))

    handle = run(
        tmp_path,
        """
        develop = this.connect('repo', command='get').get('output_value')
        tagged = this.connect('repo', command='get', ref='v1').get('output_value')
        feature = this.connect('repo', command='get', ref='origin/feature').get('output_value')
        meta = this.connect('repo', command='metadata', ref='feature').get('output_value')
        log = this.connect('repo', command='log', ref='feature').get('output_value')
        this.save(output_value={'develop': develop, 'tag_sha': tagged['commit_sha'],
                                'feature_files': [f['name'] for f in feature['files']],
                                'meta': meta, 'log': [c['commit_message'] for c in log['commits']]})
        """,
    )

    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    develop = record.outputs["develop"]
    assert develop["files"] == [
        {"name": "README.md", "content": "# demo\n"},
        {"name": "conf/app.yaml", "content": "name: demo\n"},
    ]
    assert develop["commit_sha"] == git("rev-parse", "develop", cwd=bare).strip()
    assert develop["short_sha"] == develop["commit_sha"][: len(develop["short_sha"])]
    assert develop["author_name"] == "Tess Ter" and develop["author_email"] == "tess@example.org"
    assert develop["commit_message"] == "first commit\n\nwith a body"
    assert isinstance(develop["commit_date_unix"], int) and "T" in develop["commit_date_iso"]
    assert record.outputs["tag_sha"] == develop["commit_sha"]
    assert record.outputs["feature_files"] == ["README.md", "conf/app.yaml", "extra.txt"]
    assert record.outputs["meta"]["commit_message"] == "feature work"
    assert "files" not in record.outputs["meta"]
    assert record.outputs["log"] == ["feature work", "first commit\n\nwith a body"]


def test_get_with_files_path_stores_the_files_as_flowrt_files(
    client: Client, bare: Path, tmp_path: Path
) -> None:
    client.set_connector("repo", "git", repository_url=str(bare))

    handle = run(
        tmp_path,
        """
        out = this.connect('repo', command='get', files_path='checkout').get('output_value')
        this.connect('repo', command='get', repository_path='old-name/', ref='feature')
        this.save(output_value={'files': out['files'],
                                'yaml': system.file('checkout/conf/app.yaml').get('content'),
                                'extra': system.file('old-name/extra.txt').get('content')})
        """,
    )

    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.outputs["files"] == [
        {"name": "README.md", "file": "checkout/README.md"},
        {"name": "conf/app.yaml", "file": "checkout/conf/app.yaml"},
    ]
    assert record.outputs["yaml"] == "name: demo\n"
    assert record.outputs["extra"] == "only on feature\n"


COMMIT = """
    out = this.connect('repo', command='commit', ref='develop', message='update by flow',
                       files={'conf/app.yaml': 'name: changed\\n', 'README.md': None,
                              'data/blob.bin': b'\\x00\\xff'},
                       author_name='Flo Robot', author_email='flo@example.org')
    this.pause()  # takes effect before the next call
    back = this.connect('repo', command='get', ref='develop')
    this.save(output_value={'commit': out.get('output_value'),
                            'back': [f['name'] for f in back.get('output_value')['files']]})
"""


def test_commit_pushes_files_with_its_author_and_a_replay_does_not_commit_again(
    client: Client, bare: Path, tmp_path: Path
) -> None:
    client.set_connector("repo", "git", repository_url=str(bare))
    handle = flowrt.start(write_flow(tmp_path, source(COMMIT)))
    wait_until(lambda: handle.status is Status.PAUSED, 60, "the flow to pause after committing")
    # Someone else changes the file meanwhile: a commit run again would put the flow's back.
    other = tmp_path / "other"
    git("clone", "-q", "-b", "develop", str(bare), str(other))
    (other / "conf" / "app.yaml").write_text("name: by someone else\n")
    git("commit", "-q", "-am", "someone else", cwd=other)
    git("push", "-q", "origin", "develop", cwd=other)

    handle.resume().wait(60)

    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    commit = record.outputs["commit"]
    assert commit["committed"] is True and commit["branch"] == "develop"
    assert commit["author_name"] == "Flo Robot" and commit["commit_message"] == "update by flow"
    log = git("log", "--format=%s|%an <%ae>", "develop", cwd=bare).splitlines()
    assert log == [
        "someone else|Tess Ter <tess@example.org>",
        "update by flow|Flo Robot <flo@example.org>",
        "first commit|Tess Ter <tess@example.org>",
    ]
    assert git("show", "develop~1:conf/app.yaml", cwd=bare) == "name: changed\n"
    blob = subprocess.run(["git", "show", "develop:data/blob.bin"], cwd=bare, capture_output=True)
    assert blob.stdout == b"\x00\xff"
    assert record.outputs["back"] == ["conf/app.yaml", "data/blob.bin"]


def test_a_commit_that_changes_nothing_makes_no_commit_and_a_new_branch_starts_at_the_default(
    client: Client, bare: Path, tmp_path: Path
) -> None:
    client.set_connector("repo", "git", repository_url=str(bare))

    handle = run(
        tmp_path,
        """
        same = this.connect('repo', command='commit', message='no-op',
                            files={'README.md': '# demo\\n'}).get('output_value')
        new = this.connect('repo', command='commit', ref='topic', message='on a new branch',
                           files={'new.txt': 'new'}).get('output_value')
        this.save(output_value={'same': same['committed'], 'new': new['committed']})
        """,
    )

    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    assert handle.outputs == {"same": False, "new": True}
    assert git("log", "--format=%s", "topic", cwd=bare).splitlines() == [
        "on a new branch",
        "first commit",
    ]
    files = git("ls-tree", "-r", "--name-only", "topic", cwd=bare).split()
    assert files == ["README.md", "conf/app.yaml", "new.txt"]  # nothing of develop was lost


def test_commit_into_an_empty_repository_creates_its_branch(client: Client, tmp_path: Path) -> None:
    empty = tmp_path / "empty.git"
    git("init", "-q", "--bare", str(empty))
    client.set_connector("repo", "git", repository_url=str(empty))

    handle = run(
        tmp_path,
        "this.connect('repo', command='commit', ref='main', message='m', files={'a': 'b'})",
    )

    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    assert git("show", "main:a", cwd=empty) == "b"


def test_a_bad_ref_or_repository_fails_the_call_naming_it(
    client: Client, bare: Path, tmp_path: Path
) -> None:
    client.set_connector("repo", "git", repository_url=str(bare))
    client.set_connector("gone", "git", repository_url=str(tmp_path / "nowhere.git"))

    handle = run(
        tmp_path,
        """
        caught = []
        for name, ref in (('repo', 'no-such-branch'), ('gone', 'develop')):
            try:
                this.connect(name, command='get', ref=ref)
            except flowrt.errors.ConnectorError as error:
                caught.append(str(error))
        this.save(output_value={'caught': caught})
        """,
    )

    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    bad_ref, bad_repo = record.outputs["caught"]
    assert bad_ref == f"connector 'repo': {bare} has no branch, tag or commit 'no-such-branch'"
    assert bad_repo.startswith(f"connector 'gone': git clone of {tmp_path / 'nowhere.git'} failed")
    assert "does not exist" in bad_repo


def test_a_push_the_repository_refuses_fails_with_what_it_said(
    client: Client, bare: Path, tmp_path: Path
) -> None:
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'policy: develop is frozen' >&2\nexit 1\n")
    hook.chmod(0o755)
    before = git("rev-parse", "develop", cwd=bare)
    client.set_connector("repo", "git", repository_url=str(bare))

    handle = run(tmp_path, "this.connect('repo', command='commit', message='m', files={'a': 'b'})")

    assert handle.status is Status.ENDED_ERROR
    message = handle.record().message or ""
    assert f"git push of {bare} failed" in message and "policy: develop is frozen" in message
    assert git("rev-parse", "develop", cwd=bare) == before


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("", "needs command= one of 'get', 'metadata', 'log', 'commit', not None"),
        ("command='clone'", "not 'clone'"),
        ("command='get', message='x'", "command='get') takes no 'message'"),
        ("command='get', ref='--upload-pack=touch /tmp/x'", "ref must be a branch, tag"),
        ("command='log', max_count=0", "max_count must be a whole number above 0"),
        ("command='get', files_path='a', repository_path='b'", "files_path or its older name"),
        ("command='get', files_path='/'", "files_path must name a folder of flowrt files"),
        ("command='commit', files={}, message='m'", "needs files={'path/in/repo'"),
        ("command='commit', files={'a': 'b'}", "needs message='...'"),
        ("command='commit', files={'../up': 'b'}, message='m'", "'../up' is not a path inside"),
        ("command='commit', files={'.git/config': 'x'}, message='m'", "is not a path inside"),
        ("command='commit', files={'/etc/x': 'b'}, message='m'", "'/etc/x' is not a path inside"),
        ("command='commit', files={'a': 3}, message='m'", "must be text or bytes, not int"),
        ("command='commit', files={'conf': 'x'}, message='m'", "cannot write 'conf': Is a dir"),
        ("command='commit', ref='bad..name', files={'a': 'b'}, message='m'", "not a branch name"),
    ],
)
def test_a_bad_git_call_fails_at_its_line_naming_what_to_fix(
    client: Client, bare: Path, tmp_path: Path, params: str, expected: str
) -> None:
    client.set_connector("repo", "git", repository_url=str(bare))
    before = git("rev-parse", "develop", cwd=bare)

    handle = run(tmp_path, f"this.connect('repo', {params})")

    assert handle.status is Status.ENDED_ERROR
    assert "InvalidCallError" in (handle.record().message or "")
    assert expected in (handle.record().message or ""), handle.record().message
    assert git("rev-parse", "develop", cwd=bare) == before


def test_a_commit_through_a_symbolic_link_in_the_repository_is_refused(
    client: Client, bare: Path, tmp_path: Path
) -> None:
    seed = tmp_path / "seed"
    os.symlink("/tmp", seed / "link")
    git("add", "link", cwd=seed)
    git("commit", "-q", "-m", "a link", cwd=seed)
    git("push", "-q", "origin", "feature", cwd=seed)
    client.set_connector("repo", "git", repository_url=str(bare))

    handle = run(
        tmp_path,
        "this.connect('repo', command='commit', ref='feature', message='m', "
        "files={'link/planted': 'x'})",
    )

    assert handle.status is Status.ENDED_ERROR
    assert "'link/planted' leads through a symbolic link" in (handle.record().message or "")
    assert not Path("/tmp/planted").exists()


# --- over HTTP with a password -----------------------------------------------------------------


@pytest.fixture
def http_git(bare: Path) -> Iterator[GitHttpServer]:
    server = GitHttpServer(bare.parent, "robot", PASSWORD)
    server.start()
    yield server
    server.stop()


def test_https_style_credentials_log_in_and_are_never_shown(
    client: Client, http_git: GitHttpServer, bare: Path, tmp_path: Path
) -> None:
    url = f"{http_git.base_url}/repo.git"
    client.set_connector("plain", "git", repository_url=url, username="robot", password=PASSWORD)
    inline = url.replace("://", f"://robot:{PASSWORD}@")
    client.set_connector("inurl", "git", repository_url=inline)
    client.set_connector("wrong", "git", repository_url=url, username="robot", password="nope-x1")

    handle = run(
        tmp_path,
        """
        got = this.connect('plain', command='get').get('output_value')
        pushed = this.connect('inurl', command='commit', message='over http',
                              files={'http.txt': 'pushed'}).get('output_value')
        try:
            this.connect('wrong', command='get')
            refused = None
        except flowrt.errors.ConnectorError as error:
            refused = str(error)
        this.save(output_value={'files': len(got['files']), 'pushed': pushed['committed'],
                                'refused': refused})
        """,
    )

    record = handle.record()
    assert record.status is Status.ENDED_SUCCESS, record.error
    assert record.outputs["files"] == 2 and record.outputs["pushed"] is True
    assert git("show", "develop:http.txt", cwd=bare) == "pushed"
    refused = record.outputs["refused"]
    assert "git clone of" in refused and "failed" in refused and "nope-x1" not in refused
    shown = json.dumps([r.value for r in client.list_named("connector")])
    masked = json.dumps([mask_config(r.value) for r in client.list_named("connector")])
    assert PASSWORD in shown and PASSWORD not in masked  # stored as given, shown masked
    for text in (json.dumps(record.outputs), record.error or "", record.message or ""):
        assert PASSWORD not in text


# --- over ssh ----------------------------------------------------------------------------------


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[LocalSshd]:
    yield from running_sshd(tmp_path / "sshd")


def test_an_ssh_repository_url_logs_in_with_ssh_key_and_checks_ssh_hostkey(
    client: Client, sshd: LocalSshd, bare: Path, tmp_path: Path
) -> None:
    url = f"ssh://{sshd.user}@127.0.0.1:{sshd.port}{bare}"
    client.set_connector(
        "repo", "git", repository_url=url, ssh_key=sshd.client_key, ssh_hostkey=sshd.host_key
    )

    handle = run(
        tmp_path,
        """
        got = this.connect('repo', command='get', ref='feature').get('output_value')
        pushed = this.connect('repo', command='commit', ref='feature', message='over ssh',
                              files={'ssh.txt': 'via ssh'}).get('output_value')
        this.save(output_value={'files': len(got['files']), 'pushed': pushed['committed']})
        """,
    )

    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    assert handle.outputs == {"files": 3, "pushed": True}
    assert git("show", "feature:ssh.txt", cwd=bare) == "via ssh"


def test_an_ssh_repository_showing_another_host_key_is_refused(
    client: Client, sshd: LocalSshd, bare: Path, tmp_path: Path
) -> None:
    keygen(tmp_path / "other")
    other = Path(f"{tmp_path / 'other'}.pub").read_text()
    url = f"ssh://{sshd.user}@127.0.0.1:{sshd.port}{bare}"
    client.set_connector(
        "repo", "git", repository_url=url, ssh_key=sshd.client_key, ssh_hostkey=other
    )

    handle = run(tmp_path, "this.connect('repo', command='get')")

    assert handle.status is Status.ENDED_ERROR
    assert "Host key verification failed" in (handle.record().message or "")
    assert "Accepted publickey" not in sshd.log  # it never logged in


# --- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"repository_url": "ftp://host/repo"}, "is not a git URL"),
        ({"repository_url": "--upload-pack=evil"}, "is not a git URL"),
        ({"repository_url": "https://h/r.git", "username": "u"}, "username and password go"),
        (
            {"repository_url": "https://u:pass-1234@h/r.git", "password": "other-1234"},
            "in repository_url or as",
        ),
        (
            {"repository_url": "https://h/r.git", "ssh_key": "key-1234"},
            "ssh_key and ssh_hostkey are for",
        ),
        ({"repository_url": "git@h:r.git", "ssh_hostkey": False}, "needs ssh_key"),
        ({"repository_url": "host:/srv/r.git", "ssh_hostkey": False}, "needs ssh_key"),
        ({"repository_url": "relative/r.git"}, "is not a git URL"),
        ({"repository_url": "git@h:r.git", "password": "pass-1234"}, "logs in with ssh_key, not"),
        ({"repository_url": "/r.git", "timeout_s": 0}, "its timeout_s 0 must be a positive"),
    ],
)
def test_a_bad_git_configuration_is_refused_naming_what_to_fix(
    client: Client, config: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConnectorError) as caught:
        client.set_connector("repo", "git", **config)

    assert expected in str(caught.value)
    assert "connector 'repo' is misconfigured" in str(caught.value)
    assert client.list_named("connector") == []


def test_an_ssh_repository_needs_its_host_key_or_an_explicit_false(
    client: Client, sshd: LocalSshd
) -> None:
    with pytest.raises(ConnectorError) as caught:
        client.set_connector("repo", "git", repository_url="git@h:r.git", ssh_key=sshd.client_key)

    assert "it needs a ssh_hostkey" in str(caught.value)
    assert "ssh_hostkey=False to skip the check" in str(caught.value)
    assert sshd.client_key.splitlines()[1] not in str(caught.value)


def test_git_splits_inline_parameters_into_configuration_and_call() -> None:
    config, call = GitConnector.split_inline(
        {"repository_url": "https://h/r.git", "command": "get", "ref": "main", "username": "u"}
    )
    assert config == {"repository_url": "https://h/r.git", "username": "u"}
    assert call == {"command": "get", "ref": "main"}
