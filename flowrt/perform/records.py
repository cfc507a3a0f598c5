"""Calls on settings and files, records stored outside any execution."""

from __future__ import annotations

from typing import Any

from flowrt.errors import InvalidCallError, NotFoundError
from flowrt.perform.base import Result, StepContext, done, json_value, performer

_PRIMARY = {"setting": "value", "file": "content"}
_HINT = {
    "setting": "create it with `flowrt setting set NAME VALUE` or setting.save(value=...)",
    "file": "create it with file.save(content=...)",
}


def _record_calls(kind: str) -> None:
    primary = _PRIMARY[kind]

    @performer(f"{kind}.get")
    def _get_record(context: StepContext, name: str, field: str | None) -> Result:
        field = field or primary
        if field not in (primary, "name", "updated_at"):
            raise InvalidCallError(f"a {kind} has the fields {primary!r}, 'name', 'updated_at'")
        record = context.store.get_named(kind, name)
        if record is None:
            raise NotFoundError(kind, name, _HINT[kind])
        return done({primary: record.value, "name": name, "updated_at": record.updated_at}[field])

    @performer(f"{kind}.save", reaches_out=True)
    def _save_record(context: StepContext, name: str, **fields: Any) -> Result:
        if set(fields) != {primary}:
            raise InvalidCallError(f"{kind}.save() takes {primary}= only, not {sorted(fields)}")
        value = fields[primary]
        if not (kind == "file" and isinstance(value, (bytes, bytearray))):
            value = json_value(f"{kind}.save", primary, value)
        context.store.put_named(kind, name, value)
        return done()

    @performer(f"{kind}.exists")
    def _exists(context: StepContext, name: str) -> Result:
        return done(context.store.get_named(kind, name) is not None)

    @performer(f"{kind}.delete", reaches_out=True)
    def _delete(context: StepContext, name: str) -> Result:
        context.store.delete_named(kind, name)
        return done()


_record_calls("setting")
_record_calls("file")
