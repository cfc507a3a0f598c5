"""A real OpenSSH server for the SSH, SCP and GIT connector tests, on a free loopback port.

It runs `/usr/sbin/sshd` (Debian's openssh-server, which .ci/run installs) with a config of
its own in a temporary directory: a host key and a client key generated with ssh-keygen, and
password logins for a dedicated test user. A missing sshd fails the test, never skips it.
"""

from __future__ import annotations

import getpass
import os
import secrets
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import reachable, wait_until

SSHD = Path("/usr/sbin/sshd")
PASSWORD_USER = "flowrt-ssh-test"  # made by the test (useradd) when it is missing


def keygen(path: Path) -> str:
    """Make an Ed25519 key pair at `path` (no passphrase); returns the private key's text."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "flowrt-test", "-f", str(path)],
        check=True,
    )
    return path.read_text()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LocalSshd:
    """A running sshd: where it listens, who may log in and with what, its host key."""

    root: Path
    port: int
    user: str
    client_key: str  # the private key authorized for every user of this sshd
    host_key: str  # its public host key, as `ssh-keyscan` prints it (without the host)
    process: subprocess.Popen[bytes]

    @property
    def log(self) -> str:
        return (self.root / "sshd.log").read_text(errors="replace")

    def config(self, **extra: object) -> dict[str, object]:
        """The connector configuration that logs in with the client key."""
        return {
            "hostname": "127.0.0.1",
            "port": self.port,
            "username": self.user,
            "key": self.client_key,
            "hostkey": self.host_key,
            **extra,
        }

    def stop(self) -> None:
        # sshd runs in a session of its own: the group holds it and its connections' children.
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def start_sshd(root: Path) -> LocalSshd:
    """Start sshd on a free loopback port with its config, keys and log in `root`."""
    if not SSHD.exists():
        pytest.fail(f"{SSHD} is missing: install openssh-server (.ci/run installs it)")
    root.mkdir(parents=True, exist_ok=True)
    keygen(root / "host_ed25519")
    client_key = keygen(root / "client")
    (root / "authorized_keys").write_text((root / "client.pub").read_text())
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # its privilege separation dir
    port = _free_port()
    (root / "sshd_config").write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {root / 'host_ed25519'}",
                f"PidFile {root / 'sshd.pid'}",
                f"AuthorizedKeysFile {root / 'authorized_keys'}",
                "StrictModes no",  # the temporary directory is not root's own
                "UsePAM no",
                "PubkeyAuthentication yes",
                "PasswordAuthentication yes",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "Subsystem sftp internal-sftp",
                "LogLevel VERBOSE",
                "",
            ]
        )
    )
    log = open(root / "sshd.log", "wb")  # noqa: SIM115 - the process writes it until stopped
    process = subprocess.Popen(
        [str(SSHD), "-D", "-e", "-f", str(root / "sshd_config")],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    server = LocalSshd(
        root,
        port,
        getpass.getuser(),
        client_key,
        " ".join((root / "host_ed25519.pub").read_text().split()[:2]),
        process,
    )
    try:
        wait_until(lambda: process.poll() is not None or reachable(port), 30, "sshd to listen")
        if process.poll() is not None:
            pytest.fail(f"sshd did not start:\n{server.log}")
    except BaseException:
        server.stop()
        raise
    return server


def running_sshd(root: Path) -> Iterator[LocalSshd]:
    """For a fixture: an sshd with its files in `root`, stopped (with every connection it
    serves) when the fixture ends."""
    server = start_sshd(root)
    try:
        yield server
    finally:
        server.stop()


def make_password_user() -> tuple[str, str]:
    """A system user (made when missing) with a fresh random password: (name, password).

    sshd checks passwords of real users, so password logins need one; making it needs root.
    """
    if os.geteuid() != 0:
        pytest.fail("the password login tests need root, to make the user " + PASSWORD_USER)
    exists = subprocess.run(["id", PASSWORD_USER], capture_output=True).returncode == 0
    if not exists:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/bin/sh", PASSWORD_USER],
            check=True,
        )
    password = "pw-" + secrets.token_hex(12)
    subprocess.run(["chpasswd"], input=f"{PASSWORD_USER}:{password}\n".encode(), check=True)
    return PASSWORD_USER, password
