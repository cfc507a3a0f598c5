"""Signed dill blobs: how answers are stored, and refused when anyone else wrote them."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import dill

from flowrt.errors import TamperedSavepointError

_VERSION = b"\x01"
_MAC_BYTES = 16


class Signer:
    """Serialises values with dill and signs them; verifies the signature before unpickling."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def dumps(self, value: Any) -> bytes:
        """Serialise and sign `value`; raises what dill raises for values it cannot pickle."""
        payload = dill.dumps(value, protocol=5)
        return _VERSION + self._mac(payload) + payload

    def loads(self, blob: bytes, what: str) -> Any:
        """Verify and unpickle `blob`; `what` names it in the error if the signature fails."""
        blob = bytes(blob)
        mac, payload = blob[1 : 1 + _MAC_BYTES], blob[1 + _MAC_BYTES :]
        if blob[:1] != _VERSION or not hmac.compare_digest(mac, self._mac(payload)):
            raise TamperedSavepointError(what)
        return dill.loads(payload)

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:_MAC_BYTES]
