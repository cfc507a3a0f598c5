"""Signed blobs: how answers are stored, and refused when anyone else wrote them."""

from __future__ import annotations

import hashlib
import hmac
import pickle
from typing import Any

import dill

from flowrt.errors import TamperedSavepointError

# First byte of a blob: how its payload was serialised. Plain pickle is some 20x faster than
# dill for plain data; dill takes what pickle refuses (lambdas, closures, ...).
_PICKLE, _DILL = b"\x01", b"\x02"
_MAC_BYTES = 16


class Signer:
    """Serialises values and signs them (HMAC-SHA256); verifies before it unpickles anything."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def dumps(self, value: Any) -> bytes:
        """Serialise and sign `value`; raises what dill raises for values it cannot pickle."""
        try:
            kind, payload = _PICKLE, pickle.dumps(value, protocol=5)
        except Exception:
            kind, payload = _DILL, dill.dumps(value, protocol=5)
        return kind + self._mac(kind, payload) + payload

    def loads(self, blob: bytes, what: str) -> Any:
        """Verify and unpickle `blob`; `what` names it in the error if the signature fails."""
        blob = bytes(blob)
        kind, mac, payload = blob[:1], blob[1 : 1 + _MAC_BYTES], blob[1 + _MAC_BYTES :]
        if kind not in (_PICKLE, _DILL) or not hmac.compare_digest(mac, self._mac(kind, payload)):
            raise TamperedSavepointError(what)
        return pickle.loads(payload) if kind == _PICKLE else dill.loads(payload)

    def _mac(self, kind: bytes, payload: bytes) -> bytes:
        return hmac.new(self._secret, kind + payload, hashlib.sha256).digest()[:_MAC_BYTES]
