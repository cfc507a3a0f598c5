"""File contents a connector moves: flowrt's file records (`cloudomation:NAME`) and worker paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flowrt.errors import ConnectorError, InvalidCallError, NotFoundError
from flowrt.storage.base import Store
from flowrt.values import check_name

KIND = "file"
RECORD_PREFIX = "cloudomation:"  # Cloudomation's spelling of "a file record of the platform"
LOCAL_PREFIX = "local:"  # a path on the worker that performs the call


def as_content(data: bytes) -> str | bytes:
    """`data` as text when it is UTF-8 a database can store as JSON (no NUL), else bytes."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data
    return data if "\x00" in text else text


def to_bytes(call: str, what: str, value: Any) -> bytes:
    """`value` (text or bytes) as the bytes to send; text is sent as UTF-8."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise InvalidCallError(f"{call}: {what} must be text or bytes, not {type(value).__name__}")


class FileRecords:
    """The file records of flowrt (`system.file(name)`), as a connector reads and writes them."""

    def __init__(self, store: Store | None, connector: str) -> None:
        if store is None:
            raise ConnectorError(
                f"connector {connector!r}: flowrt files (cloudomation:NAME, files_path) are "
                "not available to connectors built outside a worker; use content= or a "
                "remote path instead"
            )
        self._store, self._connector = store, connector

    def read(self, name: str) -> bytes:
        """The content of the file record `name`; raises `NotFoundError` naming it."""
        check_name("connect", "the file name", name)
        record = self._store.get_named(KIND, name)
        if record is None:
            raise NotFoundError(KIND, name, "create it with system.file(name).save(content=...)")
        if isinstance(record.value, (str, bytes)):
            return to_bytes("connect", f"the file {name!r}", record.value)
        return json.dumps(record.value).encode("utf-8")  # a file saved with a JSON value

    def write(self, name: str, data: bytes) -> None:
        """Create or replace the file record `name` with `data` (text when it is UTF-8)."""
        self._store.put_named(KIND, check_name("connect", "the file name", name), as_content(data))


def read_local(call: str, path: str) -> bytes:
    """The bytes of the worker's file `path`; a missing or unreadable file raises clearly."""
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise ConnectorError(f"{call}: cannot read the local file {path!r}: {error}") from None


def write_local(call: str, path: str, data: bytes) -> None:
    """Write `data` to the worker's file `path`."""
    try:
        Path(path).write_bytes(data)
    except OSError as error:
        raise ConnectorError(f"{call}: cannot write the local file {path!r}: {error}") from None
