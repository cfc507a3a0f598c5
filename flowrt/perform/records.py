"""Calls on settings and files, records stored outside any execution."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flowrt.errors import InvalidCallError, NotFoundError
from flowrt.perform.base import Result, StepContext, done, existence_calls, json_value, performer
from flowrt.storage.base import NamedRecord
from flowrt.values import check_count, check_name, check_text

_PRIMARY = {"setting": "value", "file": "content"}
_FIELDS = {
    "setting": ("value", "name", "updated_at"),
    "file": ("content", "text", "content_size_bytes", "name", "updated_at"),
}
_HINT = {
    "setting": "create it with `flowrt setting set NAME VALUE` or setting.save(value=...)",
    "file": "create it with file.save(content=...)",
}


def _record_calls(kind: str) -> None:
    primary, fields = _PRIMARY[kind], _FIELDS[kind]

    def read(
        context: StepContext, name: str, asked: str | tuple[str, ...] | None, **options: Any
    ) -> Result:
        method = context.live.pending.name if context.live.pending else f"{kind}.get"
        names = (asked or primary,) if not isinstance(asked, (tuple, list)) else tuple(asked)
        unknown = [field for field in names if field not in fields]
        if unknown:
            raise InvalidCallError(
                f"{method}({', '.join(map(repr, names))}): a {kind} has the fields "
                f"{', '.join(map(repr, fields))}"
            )
        if set(options) - {"convert_binary"} or (kind != "file" and options):
            raise InvalidCallError(f"{method}() takes no {', '.join(options)}=")
        record = context.store.get_named(kind, name)
        if record is None:
            raise NotFoundError(kind, name, _HINT[kind])
        raw = options.get("convert_binary", True) is False
        values = tuple(_field(method, record, field, raw) for field in names)
        return done(values[0] if len(values) == 1 else values)

    performer(f"{kind}.get")(read)
    performer(f"{kind}.load")(read)

    @performer(f"{kind}.save", reaches_out=True)
    def _save_record(context: StepContext, name: str, **given: Any) -> Result:
        if kind == "file":
            given = _file_content(given)
        if not given:  # `save()`: create it if there is none, with no value
            if context.store.get_named(kind, name) is None:
                context.store.put_named(kind, name, None if kind == "setting" else "")
            return done()
        if set(given) != {primary}:
            raise InvalidCallError(f"{kind}.save() takes {primary}= only, not {sorted(given)}")
        value = given[primary]
        if not (kind == "file" and isinstance(value, (bytes, bytearray))):
            value = json_value(f"{kind}.save", primary, value)
        context.store.put_named(kind, name, value)
        return done()

    existence_calls(kind, kind)

    @performer(f"{kind}.list")
    def _list(context: StepContext) -> Result:
        return done([record.name for record in context.store.list_named(kind)])


def _field(method: str, record: NamedRecord, field: str, raw: bool) -> Any:
    if field == "name":
        return record.name
    if field == "updated_at":
        return record.updated_at
    value = record.value
    if field == "value":
        return value
    content = value.encode() if isinstance(value, str) else bytes(value or b"")
    if field == "content_size_bytes":
        return len(content)
    if field == "content":
        return base64.b64encode(content).decode("ascii") if raw else value
    # field == "text"
    if isinstance(value, str):
        return value
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidCallError(
            f"{method}('text'): file {record.name!r} holds bytes that are not UTF-8 text "
            f"(byte {error.start}); read get('content') for its bytes"
        ) from None


def _file_content(given: dict[str, Any]) -> dict[str, Any]:
    """`text=` or `content=` (base64 text when `convert_binary=False`) as the content to store."""
    given = dict(given)
    convert = given.pop("convert_binary", True)
    if "text" in given:
        if "content" in given:
            raise InvalidCallError("file.save() takes content= or text=, not both")
        text = given.pop("text")
        if not isinstance(text, str):
            raise InvalidCallError(f"file.save(text=...): text is a str, not {type(text).__name__}")
        given["content"] = check_text("file.save", "text", text)
    if convert is False and "content" in given:
        given["content"] = _from_base64(given["content"])
    return given


def _from_base64(content: Any) -> bytes:
    if not isinstance(content, (str, bytes, bytearray)):
        raise InvalidCallError(
            "file.save(content=..., convert_binary=False): content is base64 text, "
            f"not {type(content).__name__}"
        )
    try:
        return base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidCallError(
            "file.save(content=..., convert_binary=False): content is not valid base64; "
            "pass the content itself with convert_binary=True (the default)"
        ) from None


@performer("setting.list_append", reaches_out=True)
def _list_append(
    context: StepContext, name: str, value: Any, max_list_length: int | None = None
) -> Result:
    call = "setting.list_append"
    check_name(call, "the setting name", name)
    if max_list_length is not None:
        check_count(call, "max_list_length", max_list_length)
    value = json_value(call, "value", value)
    held = context.store.append_named("setting", name, value, max_list_length)
    if held is not None:
        raise InvalidCallError(
            f"{call}(): setting {name!r} holds a {held}, not a list; save a list first "
            "(setting.save(value=[...])) or append to another setting"
        )
    return done()


_record_calls("setting")
_record_calls("file")
