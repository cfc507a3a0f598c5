"""Signed rows and their blobs: how stored state is signed, and refused when anyone else wrote it.

A signature is 20 bytes: the 4-byte id of the key that made it (the first 4 bytes of the
key's SHA-256) and the first 16 bytes of an HMAC-SHA256 over the row's place and contents.
Several keys may be configured: the first signs, every one verifies (key rotation).
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
from collections.abc import Iterable, Sequence
from typing import Any

import dill

from flowrt.errors import TamperedSavepointError

# First byte of a blob: how its payload was serialised. Plain pickle is some 20x faster than
# dill for plain data; dill takes what pickle refuses (lambdas, closures, ...). 0x01 and 0x02
# were the blobs of schema 0003 and before, which carried their own place-less MAC.
_PICKLE, _DILL = b"\x03", b"\x04"
_KEY_ID_BYTES, _MAC_BYTES = 4, 16
SIGNATURE_BYTES = _KEY_ID_BYTES + _MAC_BYTES

# What a signed field may be; each is fed to the MAC with its type and length, so that no two
# different sequences of fields read as the same bytes.
Field = bytes | str | int | None


def key_id(key: bytes) -> bytes:
    """The id a signature made with `key` carries: the first 4 bytes of the key's SHA-256."""
    return hashlib.sha256(key).digest()[:_KEY_ID_BYTES]


class Signer:
    """Signs rows (HMAC-SHA256 with the first key) and checks them against every key."""

    def __init__(self, keys: bytes | Sequence[bytes]) -> None:
        keys = [keys] if isinstance(keys, bytes) else list(keys)
        if not keys:
            raise ValueError("a Signer needs at least one key")
        self._signing = keys[0]
        self._keys = {key_id(key): key for key in reversed(keys)}  # the first wins a clash

    def sign(self, domain: str, fields: Iterable[Field]) -> bytes:
        """The signature of `fields` in the place `domain` names (a table and column set)."""
        return key_id(self._signing) + _mac(self._signing, domain, fields)

    def check(
        self, signature: bytes | None, domain: str, fields: Iterable[Field], what: str
    ) -> None:
        """Raise `TamperedSavepointError` naming `what` unless `signature` signs `fields`."""
        if signature is None:
            raise TamperedSavepointError(
                what,
                "it has no signature: it was written before flowrt signed rows by their place "
                "(schema 0004) or altered; run `flowrt db resign` with the FLOWRT_SECRET that "
                "wrote it",
            )
        signature = bytes(signature)
        key = self._keys.get(signature[:_KEY_ID_BYTES])
        if key is None or len(signature) != SIGNATURE_BYTES:
            raise TamperedSavepointError(
                what,
                f"it was signed with key id {signature[:_KEY_ID_BYTES].hex() or '-'}, which "
                "FLOWRT_SECRET does not list: it was altered in the database or written with "
                "another FLOWRT_SECRET",
            )
        if not hmac.compare_digest(signature[_KEY_ID_BYTES:], _mac(key, domain, fields)):
            raise TamperedSavepointError(what)

    @staticmethod
    def dumps(value: Any) -> bytes:
        """Serialise `value`; raises what dill raises for values it cannot pickle.

        The blob carries no signature of its own: the signature of the row that holds it
        covers it, and binds it to that row's place.
        """
        try:
            return _PICKLE + pickle.dumps(value, protocol=5)
        except Exception:
            return _DILL + dill.dumps(value, protocol=5)

    @staticmethod
    def loads(blob: bytes, what: str) -> Any:
        """Unpickle `blob`, which must come from a row whose signature was checked."""
        kind, payload = bytes(blob[:1]), blob[1:]
        if kind == _PICKLE:
            return pickle.loads(payload)
        if kind == _DILL:
            return dill.loads(payload)
        raise TamperedSavepointError(what, "its blob is not one flowrt writes")


def _mac(key: bytes, domain: str, fields: Iterable[Field]) -> bytes:
    mac = hmac.new(key, b"flowrt/" + domain.encode(), hashlib.sha256)
    for field in fields:
        if field is None:
            mac.update(b"\x00")
            continue
        if isinstance(field, bool | int):
            tag, data = b"\x01", str(int(field)).encode()
        elif isinstance(field, str):
            tag, data = b"\x02", field.encode("utf-8", "surrogatepass")
        else:
            tag, data = b"\x03", field
        mac.update(tag + len(data).to_bytes(8, "big"))
        mac.update(data)
    return mac.digest()[:_MAC_BYTES]
