"""SSH host keys as a connector is given them: `ssh-keyscan` output or known_hosts lines."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass

import paramiko


@dataclass(frozen=True)
class HostKey:
    """One public host key, and the known_hosts host patterns it is for (None: any host)."""

    hosts: str | None
    key: paramiko.PKey

    def line(self) -> str:
        """The known_hosts line of this key (`*` when it names no host)."""
        return f"{self.hosts or '*'} {self.key.get_name()} {self.key.get_base64()}"

    def is_for(self, name: str) -> bool:
        """True when this key is for the host known as `name` ('host' or '[host]:port')."""
        if self.hosts is None:
            return True
        found = False
        for pattern in self.hosts.split(","):
            negated = pattern.startswith("!")
            if _matches(pattern.removeprefix("!"), name):
                if negated:
                    return False
                found = True
        return found


def parse_host_keys(hostkey: object, field: str = "hostkey") -> list[HostKey] | None:
    """The keys in `hostkey`: lines of `TYPE BASE64` or known_hosts lines (`HOSTS TYPE BASE64
    [COMMENT]`, hashed hosts too); None for False (no check). ValueError says what is wrong."""
    if hostkey is False:
        return None
    if not isinstance(hostkey, str) or not hostkey.strip():
        raise ValueError(
            f"it needs a {field}: the server's public key as `ssh-keyscan -p PORT HOST` "
            f"prints it (say 'ssh-ed25519 AAAA...'), or {field}=False to skip the check (unsafe)"
        )
    keys = []
    for number, line in enumerate(hostkey.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if fields[0].startswith("@"):
            raise ValueError(
                f"its {field} line {number} has the marker {fields[0]}, which is not "
                "supported; give the host's own public keys"
            )
        hosts = None if _is_key_type(fields[0]) else fields.pop(0)
        try:
            key = paramiko.PKey.from_type_string(fields[0], base64.b64decode(fields[1]))
        except (IndexError, binascii.Error, paramiko.SSHException, ValueError, TypeError):
            raise ValueError(
                f"its {field} line {number} is not a public key 'TYPE BASE64' (as "
                "`ssh-keyscan` prints it)"
            ) from None
        keys.append(HostKey(hosts, key))
    if not keys:
        raise ValueError(f"its {field} holds no public key; give one as `ssh-keyscan` prints it")
    return keys


def known_name(hostname: str, port: int) -> str:
    """How known_hosts names `hostname` on `port`."""
    return hostname if port == 22 else f"[{hostname}]:{port}"


def _is_key_type(word: str) -> bool:
    return word.startswith(("ssh-", "ecdsa-", "sk-"))


def _matches(pattern: str, name: str) -> bool:
    if pattern.startswith("|1|"):  # a hashed host: |1|base64(salt)|base64(hmac-sha1(name))
        try:
            salt, digest = (base64.b64decode(part) for part in pattern[3:].split("|"))
        except (ValueError, binascii.Error):
            return False
        return hmac.compare_digest(hmac.new(salt, name.encode(), hashlib.sha1).digest(), digest)
    # OpenSSH's patterns: `*` and `?` are wildcards, everything else (also `[`) is itself.
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, name, re.IGNORECASE) is not None
