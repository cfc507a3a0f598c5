"""The GIT connector: get, read, commit and push a repository with the `git` command."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from flowrt.connectors.base import Connector
from flowrt.connectors.files import FileRecords, as_content, to_bytes
from flowrt.connectors.hostkeys import parse_host_keys
from flowrt.connectors.masking import mask_url
from flowrt.connectors.ssh import positive_seconds, private_key
from flowrt.errors import ConnectorError, InvalidCallError
from flowrt.values import check_name

DEFAULT_REF = "develop"  # Cloudomation's default ref
TIMEOUT_S = 300.0  # seconds one git command may take (a clone of a large repository)
MAX_LOG = 20  # commits `log` returns unless the call asks for another number
AUTHOR = ("flowrt", "flowrt@localhost")  # who commits when the call names nobody
_SCHEMES = ("https", "http", "ssh", "git", "file")
_FIELDS = ("commit_sha", "short_sha", "author_name", "author_email")
_FORMAT = "%H%x1f%h%x1f%an%x1f%ae%x1f%cI%x1f%ct%x1f%B"
_TAKES = {
    "get": ("ref", "files_path", "repository_path"),
    "metadata": ("ref",),
    "log": ("ref", "max_count"),
    "commit": ("ref", "files", "message", "author_name", "author_email"),
}
_ASKPASS = """#!/bin/sh
case "$1" in
Username*) printf '%s\\n' "$FLOWRT_GIT_USERNAME" ;;
*) printf '%s\\n' "$FLOWRT_GIT_PASSWORD" ;;
esac
"""


@dataclass(frozen=True)
class _Remote:
    """Where the repository is, as git is given it (no credentials), and how to log in."""

    url: str
    username: str | None
    password: str | None
    over_ssh: bool


class GitConnector(Connector):
    """`connect(name, command=...)` on the repository at `repository_url`:

    - `get`: the files at `ref` (a branch, tag or commit; default 'develop'), as `files`
      [{'name', 'content'}], or stored as flowrt files under `files_path`; plus metadata.
    - `metadata`: commit_sha, short_sha, author_name, author_email, commit_date_iso,
      commit_date_unix and commit_message of `ref`.
    - `log`: `commits`, the metadata of up to `max_count` commits from `ref` back.
    - `commit`: write `files` ({path: text, bytes or None to delete}) on branch `ref`,
      commit them with `message` as `author_name` <`author_email`> and push.

    Every call works in a fresh clone that is gone afterwards. https logins take `username`
    and `password` (or a token as password), ssh ones `ssh_key` and `ssh_hostkey`.
    """

    type_name = "git"
    required = ("repository_url",)
    optional = ("username", "password", "ssh_key", "ssh_hostkey", "timeout_s")
    call_params = ("command", *sorted({p for takes in _TAKES.values() for p in takes}))

    @classmethod
    def check(cls, config: dict[str, Any]) -> str | None:
        """A git URL; credentials fitting it; a positive timeout."""
        try:
            remote = _remote(config)
        except ValueError as problem:
            return str(problem)
        if remote.over_ssh:
            if config.get("username") or config.get("password"):
                return "an ssh repository_url logs in with ssh_key, not username/password"
            if not config.get("ssh_key"):
                return "an ssh repository_url needs ssh_key: the text of a private key"
            try:
                private_key(_text(config, "ssh_key"))
                parse_host_keys(config.get("ssh_hostkey"), "ssh_hostkey")
            except ValueError as problem:
                return str(problem).replace("its key", "its ssh_key")
        elif config.get("ssh_key") or config.get("ssh_hostkey") is not None:
            return "ssh_key and ssh_hostkey are for ssh URLs (ssh://... or user@host:path)"
        elif bool(remote.username) != bool(remote.password):
            return (
                "username and password go together (for a token, give it as password and "
                "any username the host takes, e.g. 'x-access-token')"
            )
        timeout_s = config.get("timeout_s", TIMEOUT_S)
        if not positive_seconds(timeout_s):
            return f"its timeout_s {timeout_s!r} must be a positive number of seconds"
        return None

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        self._remote = _remote(config)
        self.timeout_s = float(config.get("timeout_s", TIMEOUT_S))
        self.shown_url = self.masked(mask_url(config["repository_url"]))

    def call(self, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        self.check_params(params)
        command = params.get("command")
        if command not in _TAKES:
            raise InvalidCallError(
                f"connect({self.name!r}) needs command= one of {', '.join(map(repr, _TAKES))}, "
                f"not {command!r}"
            )
        unknown = sorted(set(params) - {"command", *_TAKES[command]})
        if unknown:
            raise InvalidCallError(
                f"connect({self.name!r}, command={command!r}) takes no "
                f"{', '.join(map(repr, unknown))}; it takes {', '.join(_TAKES[command])}"
            )
        ref = _check_ref(self.name, params.get("ref", DEFAULT_REF))
        with self._clone(checkout=command == "commit") as repo:
            if command == "commit":
                return self._commit(repo, ref, params)
            sha = self._resolve(repo, ref)
            if command == "metadata":
                return self._log(repo, sha, 1)[0]
            if command == "log":
                count = params.get("max_count", MAX_LOG)
                if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                    raise InvalidCallError(
                        f"connect({self.name!r}): max_count must be a whole number above 0"
                    )
                return {"commits": self._log(repo, sha, count)}
            return {**self._log(repo, sha, 1)[0], "files": self._files(repo, sha, params)}

    # --- the commands ---------------------------------------------------------------------

    def _files(self, repo: _Repo, sha: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        if "files_path" in params and "repository_path" in params:
            raise InvalidCallError(
                f"connect({self.name!r}): give files_path or its older name repository_path, "
                "not both"
            )
        target = params.get("files_path", params.get("repository_path"))
        if target is not None and (not isinstance(target, str) or not target.strip("/")):
            raise InvalidCallError(
                f"connect({self.name!r}): files_path must name a folder of flowrt files"
            )
        listing = repo.git("ls-tree", "-r", "-z", "--full-tree", sha).decode("utf-8", "replace")
        blobs = []
        for entry in filter(None, listing.split("\0")):
            info, _, path = entry.partition("\t")
            mode, kind, oid = info.split()
            if kind == "blob" and mode in ("100644", "100755"):  # no links, no submodules
                blobs.append((path, oid))
        contents = repo.blobs([oid for _, oid in blobs])
        if target is None:
            return [{"name": path, "content": as_content(contents[oid])} for path, oid in blobs]
        records = FileRecords(self.store, self.name)
        stored = [{"name": path, "file": f"{target.strip('/')}/{path}"} for path, _ in blobs]
        for record in stored:  # every name checked before the first file is written
            check_name(f"connect({self.name!r})", "the file name", record["file"])
        for record, (_, oid) in zip(stored, blobs, strict=True):
            records.write(record["file"], contents[oid])
        return stored

    def _log(self, repo: _Repo, sha: str, count: int) -> list[dict[str, Any]]:
        out = repo.git("log", "-z", f"--format={_FORMAT}", f"--max-count={count}", sha)
        commits = []
        for record in filter(None, out.decode("utf-8", "replace").split("\0")):
            values = record.split("\x1f", 6)
            commits.append(
                {
                    **dict(zip(_FIELDS, values[:4], strict=True)),
                    "commit_date_iso": values[4],
                    "commit_date_unix": int(values[5]),
                    "commit_message": values[6].rstrip("\n"),
                }
            )
        return commits

    def _commit(self, repo: _Repo, branch: str, params: dict[str, Any]) -> dict[str, Any]:
        files, message = params.get("files"), params.get("message")
        call = f"connect({self.name!r}, command='commit')"
        if not isinstance(files, dict) or not files:
            raise InvalidCallError(f"{call} needs files={{'path/in/repo': 'content', ...}}")
        if not isinstance(message, str) or not message.strip() or "\0" in message:
            raise InvalidCallError(f"{call} needs message='...': the commit message")
        author = [params.get("author_name", AUTHOR[0]), params.get("author_email", AUTHOR[1])]
        if not all(isinstance(a, str) and a.strip() and "\0" not in a for a in author):
            raise InvalidCallError(f"{call}: author_name and author_email must be texts")
        if not repo.succeeds("check-ref-format", "--branch", branch):
            raise InvalidCallError(f"{call}: ref {branch!r} is not a branch name git takes")
        if repo.resolve(f"origin/{branch}") is not None:
            repo.git("checkout", "-q", "-B", branch, f"origin/{branch}")
        elif repo.resolve("HEAD") is not None:  # a new branch starts at the default one
            repo.git("checkout", "-q", "-b", branch)
        else:  # an empty repository
            repo.git("checkout", "-q", "--orphan", branch)
        paths = [repo.write(call, path, content) for path, content in files.items()]
        repo.git("add", "-A", "--", *paths)
        if repo.succeeds("diff", "--cached", "--quiet"):  # nothing staged
            if repo.resolve("HEAD") is None:
                raise InvalidCallError(f"{call}: files change nothing in an empty repository")
            return {**self._log(repo, "HEAD", 1)[0], "committed": False, "branch": branch}
        name, email = author
        repo.git("commit", "-q", "--no-verify", "-m", message, env=_identity(name, email))
        repo.git("push", "-q", "origin", f"HEAD:refs/heads/{branch}", what="push")
        return {**self._log(repo, "HEAD", 1)[0], "committed": True, "branch": branch}

    # --- a clone to work in ---------------------------------------------------------------

    @contextmanager
    def _clone(self, checkout: bool) -> Iterator[_Repo]:
        git = shutil.which("git")
        if git is None:
            raise ConnectorError(
                f"connector {self.name!r}: the git command is not installed on this worker"
            )
        with tempfile.TemporaryDirectory(prefix="flowrt-git-") as work:
            home = Path(work) / "home"
            home.mkdir()
            repo = _Repo(self, git, Path(work) / "repo", self._environment(git, home))
            skip = [] if checkout else ["--no-checkout"]  # get reads blobs, needs no work tree
            repo.git("clone", "-q", *skip, "--", self._remote.url, str(repo.path), cwd=work)
            yield repo

    def _environment(self, git: str, home: Path) -> dict[str, str]:
        # Nothing of the worker's own git or ssh set-up (config, credentials, keys) takes part.
        env = {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home),
            "PATH": os.pathsep.join([str(Path(git).parent), os.defpath]),
            "GIT_TERMINAL_PROMPT": "0",
            "LC_ALL": "C",
        }
        remote = self._remote
        if remote.username and remote.password:
            askpass = home / "askpass"
            askpass.write_text(_ASKPASS)
            askpass.chmod(0o700)
            env |= {
                "GIT_ASKPASS": str(askpass),
                "FLOWRT_GIT_USERNAME": remote.username,
                "FLOWRT_GIT_PASSWORD": remote.password,
            }
        if remote.over_ssh:
            env["GIT_SSH_COMMAND"] = self._ssh_command(home)
        return env

    def _ssh_command(self, home: Path) -> str:
        ssh = shutil.which("ssh") or "ssh"
        key = home / "key"
        key.touch(0o600)
        key.write_text(_text(self.config, "ssh_key").strip() + "\n")
        options = ["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"]
        options += ["-o", f"IdentityFile={key}"]
        keys = parse_host_keys(self.config.get("ssh_hostkey"), "ssh_hostkey")
        if keys is None:
            options += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
        else:
            known = home / "known_hosts"
            known.write_text("".join(f"{host_key.line()}\n" for host_key in keys))
            options += ["-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known}"]
        return shlex.join([ssh, *options])

    def _resolve(self, repo: _Repo, ref: str) -> str:
        for candidate in (ref, f"origin/{ref}"):
            sha = repo.resolve(candidate)
            if sha is not None:
                return sha
        raise ConnectorError(
            f"connector {self.name!r}: {self.shown_url} has no branch, tag or commit {ref!r}"
        )


class _Repo:
    """A clone in a temporary directory, and the git commands run in it."""

    def __init__(self, connector: GitConnector, git: str, path: Path, env: dict[str, str]):
        self.connector, self.path, self._git, self._env = connector, path, git, env

    def git(
        self,
        *args: str,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        what: str | None = None,
        stdin: bytes | None = None,
    ) -> bytes:
        """The output of `git ARGS`; raises `ConnectorError` with what git said if it fails."""
        out = self._run(args, check=True, cwd=cwd, env=env, what=what, stdin=stdin)
        assert out is not None
        return out

    def succeeds(self, *args: str) -> bool:
        """True when `git ARGS` exits with 0."""
        return self._run(args, check=False) is not None

    def _run(
        self,
        args: tuple[str, ...],
        *,
        check: bool,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        what: str | None = None,
        stdin: bytes | None = None,
    ) -> bytes | None:
        """Run `git ARGS`; its output, or None when it failed and `check` is False."""
        connector = self.connector
        settings = ["-c", "credential.helper=", "-c", "protocol.ext.allow=never"]
        proc = subprocess.Popen(
            [self._git, *settings, *args],
            cwd=cwd or self.path,
            env={**self._env, **(env or {})},
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # no terminal to ask for a password on; killed as a group
        )
        try:
            out, err = proc.communicate(stdin, timeout=connector.timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise ConnectorError(
                f"connector {connector.name!r}: git {args[0]} of {connector.shown_url} did "
                f"not end within timeout_s={connector.timeout_s:g}"
            ) from None
        if proc.returncode == 0:
            return out
        if not check:
            return None
        said = err.decode("utf-8", "replace").strip()[-800:]
        hint = ""
        if what == "push" and ("fetch first" in said or "non-fast-forward" in said):
            hint = "; someone pushed to the branch meanwhile: run the commit again"
        elif "Authentication failed" in said or "could not read Username" in said:
            hint = "; check username and password (a token goes in password)"
        raise ConnectorError(
            connector.masked(
                f"connector {connector.name!r}: git {args[0]} of {connector.shown_url} failed: "
                f"{said}{hint}"
            )
        )

    def resolve(self, ref: str) -> str | None:
        """The commit `ref` names here, or None."""
        out = self._run(("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"), check=False)
        return None if out is None else out.decode().strip()

    def blobs(self, oids: list[str]) -> dict[str, bytes]:
        """The contents of the blobs `oids`, read in one `git cat-file --batch`."""
        if not oids:
            return {}
        out = self.git("cat-file", "--batch", stdin="".join(f"{o}\n" for o in oids).encode())
        contents, at = {}, 0
        for oid in oids:
            header_end = out.index(b"\n", at)
            size = int(out[at:header_end].split()[2])
            contents[oid] = out[header_end + 1 : header_end + 1 + size]
            at = header_end + 1 + size + 1
        return contents

    def write(self, call: str, path: object, content: object) -> str:
        """Write (or delete, for None) the file `path` of the work tree; returns the path."""
        parts = PurePosixPath(path).parts if isinstance(path, str) else ()
        if not parts or parts[0] in ("/", ".git") or ".." in parts or "\0" in str(path):
            raise InvalidCallError(
                f"{call}: {path!r} is not a path inside the repository (relative, without "
                "'..', not in .git)"
            )
        target = self.path.joinpath(*parts)
        inside = os.path.realpath(target).startswith(os.path.realpath(self.path) + os.sep)
        if not inside or target.is_symlink():
            raise InvalidCallError(f"{call}: {path!r} leads through a symbolic link")
        data = None if content is None else to_bytes(call, f"files[{path!r}]", content)
        try:
            if data is None:
                target.unlink(missing_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        except OSError as error:  # say, the path names a folder of the repository
            raise InvalidCallError(f"{call}: cannot write {path!r}: {error.strerror}") from None
        return "/".join(parts)


def _remote(config: dict[str, Any]) -> _Remote:
    url = config["repository_url"]
    if not isinstance(url, str) or url != url.strip() or url.startswith("-") or "\0" in url:
        raise ValueError(f"its repository_url {url!r} is not a git URL")
    username, password = config.get("username"), config.get("password")
    for field, value in (("username", username), ("password", password)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"its {field} must be a text, not {type(value).__name__}")
    if "://" not in url and ":" in url.split("/", 1)[0]:  # [user@]host:path, as git reads it
        return _Remote(url, None, None, True)
    if url.startswith("/"):
        return _Remote(url, username, password, False)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or parts.scheme not in _SCHEMES or not (parts.hostname or parts.path):
        raise ValueError(
            f"its repository_url {mask_url(url)!r} is not a git URL (https://host/repo.git, "
            "ssh://user@host/repo.git, user@host:repo.git or /path/to/repo.git)"
        )
    if parts.scheme in ("ssh", "git", "file"):
        return _Remote(url, None, None, parts.scheme == "ssh")
    if parts.username or parts.password:
        if username or password:
            raise ValueError("give the credentials in repository_url or as username/password")
        username, password = unquote(parts.username or ""), unquote(parts.password or "")
        netloc = parts.hostname or ""
        netloc = f"[{netloc}]" if ":" in netloc else netloc
        netloc += f":{port}" if port else ""
        url = parts._replace(netloc=netloc).geturl()  # git is given no credentials to print
    return _Remote(url, username or None, password or None, False)


def _check_ref(name: str, ref: object) -> str:
    if not isinstance(ref, str) or not ref or ref.startswith("-") or any(c in ref for c in "\0\n"):
        raise InvalidCallError(
            f"connect({name!r}): ref must be a branch, tag or commit (text), not {ref!r}"
        )
    return ref


def _text(config: dict[str, Any], field: str) -> str:
    value = config.get(field)
    if not isinstance(value, str):
        raise ValueError(f"its {field} must be a text, not {type(value).__name__}")
    return value


def _identity(name: str, email: str) -> dict[str, str]:
    return {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }
