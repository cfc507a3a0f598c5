"""The SSH connector: run a script on a host with paramiko, by key or password, host key checked."""

from __future__ import annotations

import codecs
import io
import math
import select
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import paramiko

from flowrt.connectors.base import Connector
from flowrt.connectors.hostkeys import known_name, parse_host_keys
from flowrt.errors import ConnectorError, InvalidCallError, RemoteCommandError

DEFAULT_PORT = 22
CONNECT_TIMEOUT_S = 60.0  # Cloudomation's default for connect_timeout, in seconds
SCRIPT_TIMEOUT_S = 60.0  # Cloudomation's default for script_timeout, in seconds
_CHUNK_BYTES = 32768
_POLL_S = 0.05  # how long one wait for output lasts before the deadline is looked at again
_KEY_TYPES = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)


class SshConnector(Connector):
    """`connect(name, script=...)` runs `script` by the login shell of `username` on `hostname`
    and returns `{'retcode', 'report', 'stdout', 'stderr'}`; a retcode other than 0 raises
    `RemoteCommandError` unless the call passes `raise_for_retcode=False`.

    Authenticates with `key` (a private key's text) or `password`; the server must show the
    host key configured as `hostkey` (its public key, as `ssh-keyscan` prints it), or
    `hostkey=False` skips that check.
    """

    type_name = "ssh"
    required = ("hostname", "username")
    optional = ("port", "password", "key", "hostkey", "connect_timeout")
    call_params = ("script", "script_timeout", "raise_for_retcode", "encoding")

    @classmethod
    def check(cls, config: dict[str, Any]) -> str | None:
        """A host name, a port, a key or password, and a host key to check (or False)."""
        for field in ("hostname", "username"):
            value = config[field]
            if not isinstance(value, str) or not value.strip() or value != value.strip():
                return f"its {field} {value!r} must be a text without surrounding spaces"
        port = config.get("port", DEFAULT_PORT)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            return f"its port {port!r} must be a whole number from 1 to 65535"
        if not config.get("key") and not config.get("password"):
            return "it needs a key (the text of a private key) or a password to log in with"
        for field in ("key", "password"):
            if config.get(field) is not None and not isinstance(config[field], str):
                return f"its {field} must be a text, not {type(config[field]).__name__}"
        timeout = config.get("connect_timeout", CONNECT_TIMEOUT_S)
        if not positive_seconds(timeout):
            return f"its connect_timeout {timeout!r} must be a positive number of seconds"
        try:
            if config.get("key"):
                private_key(config["key"])
            host_keys(config)
        except ValueError as problem:
            return str(problem)
        return None

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        self.hostname, self.username = config["hostname"], config["username"]
        self.port = int(config.get("port", DEFAULT_PORT))
        self.connect_timeout_s = float(config.get("connect_timeout", CONNECT_TIMEOUT_S))
        self._pkey = private_key(config["key"]) if config.get("key") else None
        self._host_keys = host_keys(config)
        self.where = f"{self.username}@{self.hostname}:{self.port}"

    def call(self, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        self.check_params(params)
        script = params.get("script")
        if not isinstance(script, str) or not script.strip():
            raise InvalidCallError(
                f"connect({self.name!r}) needs script='...': the commands to run on {self.hostname}"
            )
        timeout_s = params.get("script_timeout", SCRIPT_TIMEOUT_S)
        if not positive_seconds(timeout_s):
            raise InvalidCallError(
                f"connect({self.name!r}): script_timeout {timeout_s!r} must be a positive "
                "number of seconds"
            )
        encoding = _encoding(self.name, params.get("encoding", "utf-8"))
        with self.session() as client:
            try:
                retcode, stdout, stderr, report = self._run(client, script, float(timeout_s))
            except (OSError, EOFError, paramiko.SSHException) as error:  # the link broke
                raise ConnectorError(
                    self.masked(
                        f"connector {self.name!r}: running the script on {self.where} failed: "
                        f"{type(error).__name__}: {error}"
                    )
                ) from None
        out, err, both = (
            self.masked(b.decode(encoding, "replace")) for b in (stdout, stderr, report)
        )
        if retcode != 0 and params.get("raise_for_retcode", True):
            raise RemoteCommandError(self.name, self.where, retcode, out, err)
        return {"retcode": retcode, "report": both, "stdout": out, "stderr": err}

    @contextmanager
    def session(self) -> Iterator[paramiko.SSHClient]:
        """An SSH connection to the host, logged in and its host key checked; closed after."""
        client = paramiko.SSHClient()
        if self._host_keys is None:
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        else:
            known = known_name(self.hostname, self.port)
            for key in self._host_keys:
                client.get_host_keys().add(known, key.get_name(), key)
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            try:
                client.connect(
                    self.hostname,
                    port=self.port,
                    username=self.username,
                    password=self.config.get("password") or None,
                    pkey=self._pkey,
                    timeout=self.connect_timeout_s,
                    banner_timeout=self.connect_timeout_s,
                    auth_timeout=self.connect_timeout_s,
                    allow_agent=False,  # the worker's own keys are not the connector's
                    look_for_keys=False,
                )
            except Exception as error:
                raise ConnectorError(self.masked(self._login_problem(error))) from None
            yield client
        finally:
            client.close()

    def _login_problem(self, error: Exception) -> str:
        head = f"connector {self.name!r}: cannot log in to {self.where}"
        if isinstance(error, paramiko.BadHostKeyException):
            offered = f"{error.key.get_name()} {error.key.fingerprint}"
            if error.key.get_name() not in {key.get_name() for key in self._host_keys or ()}:
                return (
                    f"{head}: it shows the host key {offered} and the hostkey configured "
                    "holds no key of that type; add it (`ssh-keyscan -p PORT HOST` prints "
                    "them) or set hostkey=False"
                )
            return (
                f"{head}: its host key {offered} is not the hostkey configured; if the host "
                "was reinstalled, configure its new key (`ssh-keyscan -p PORT HOST`), else "
                "someone may be in between"
            )
        if isinstance(error, paramiko.AuthenticationException):
            return f"{head}: authentication failed ({error}); check username, key and password"
        if isinstance(error, OSError):  # refused, unreachable, timed out
            return f"{head}: {type(error).__name__}: {error}; is the host up and the port right?"
        return f"{head}: {type(error).__name__}: {error}"

    def _run(
        self, client: paramiko.SSHClient, script: str, timeout_s: float
    ) -> tuple[int, bytes, bytes, bytes]:
        transport = client.get_transport()
        assert transport is not None
        channel = transport.open_session(timeout=self.connect_timeout_s)
        try:
            channel.exec_command(script)
            channel.shutdown_write()  # the script reads no input: it gets an end of file
            stdout, stderr, report = bytearray(), bytearray(), bytearray()
            deadline = time.monotonic() + timeout_s
            while True:
                got = False
                if channel.recv_ready():
                    data = channel.recv(_CHUNK_BYTES)
                    stdout += data
                    report += data
                    got = True
                if channel.recv_stderr_ready():
                    data = channel.recv_stderr(_CHUNK_BYTES)
                    stderr += data
                    report += data
                    got = True
                if got:
                    continue
                if channel.exit_status_ready() and channel.eof_received:
                    break
                if time.monotonic() > deadline:
                    raise ConnectorError(
                        f"connector {self.name!r}: the script on {self.where} did not end "
                        f"within script_timeout={timeout_s:g} s; raise it for longer scripts"
                    )
                select.select([channel], [], [], _POLL_S)
            return channel.recv_exit_status(), bytes(stdout), bytes(stderr), bytes(report)
        finally:
            channel.close()


def private_key(text: str) -> paramiko.PKey:
    """The private key in `text` (OpenSSH or PEM: Ed25519, ECDSA, RSA); ValueError if none."""
    encrypted = False
    for key_type in _KEY_TYPES:
        try:
            return key_type.from_private_key(io.StringIO(text))
        except paramiko.PasswordRequiredException:
            encrypted = True
        except (paramiko.SSHException, ValueError, IndexError, TypeError):
            continue
    if encrypted:
        raise ValueError("its key is protected by a passphrase; give the key without one")
    raise ValueError(
        "its key is not a private key (the text of an OpenSSH or PEM Ed25519, ECDSA or RSA "
        "key file, such as ~/.ssh/id_ed25519)"
    )


def host_keys(config: dict[str, Any]) -> list[paramiko.PKey] | None:
    """The host keys configured for the connector's host and port; None for hostkey=False.
    ValueError says what is wrong."""
    keys = parse_host_keys(config.get("hostkey"))
    if keys is None:
        return None
    name = known_name(config["hostname"], config.get("port", DEFAULT_PORT))
    mine = [host_key.key for host_key in keys if host_key.is_for(name)]
    if not mine:
        raise ValueError(
            f"its hostkey names other hosts only, none for {name}; give the key of "
            f"{config['hostname']} (`ssh-keyscan -p PORT HOST` prints it)"
        )
    return mine


def positive_seconds(value: object) -> bool:
    """True for a number of seconds a timeout can be: finite and above 0."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _encoding(name: str, encoding: object) -> str:
    try:
        if isinstance(encoding, str):
            return codecs.lookup(encoding).name
    except LookupError:
        pass
    raise InvalidCallError(f"connect({name!r}): encoding {encoding!r} is not a text encoding")
