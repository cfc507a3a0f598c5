"""Message forms: the body a flow gives `system.message`, and checking a response against it.

A form is Cloudomation's: a JSON schema of an object whose properties carry, besides their
JSON-schema keywords, how to show them (`element`: string, number, toggle, password,
markdown, submit, ...; `label`, `order`, `description`, `example`). flowrt validates a
response with the JSON-schema keywords and ignores the others; `markdown` elements are text
to show, `submit` elements are buttons, true in the response when pressed.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for

from flowrt.connectors.masking import MASK
from flowrt.errors import InvalidCallError, SchemaValidationError, UnstorableValueError
from flowrt.storage.base import MessageRecord
from flowrt.values import check_json, check_text

# Cloudomation's message types; WARN is what its older documentation calls WARNING.
MESSAGE_TYPES = ("INFO", "SUCCESS", "WARNING", "ERROR", "POPUP")
_ALIASES = {"WARN": "WARNING"}
MAX_SUBJECT_CHARS = 1000  # a subject is a line to show, not a document
MAX_FORM_CHARS = 1_000_000  # a body or a response, as JSON text: larger belongs in a file
_SCHEMA_FIX = (
    "give body= a JSON schema of an object, e.g. {'type': 'object', 'properties': "
    "{'name': {'element': 'string', 'type': 'string', 'label': 'Name'}}, 'required': ['name']}"
)
_SHOWN_ONLY = ("markdown",)  # elements that show text and are not part of the response


def message_type(call: str, value: object) -> str:
    """The message type `value` names (case does not matter); `InvalidCallError` if none."""
    name = value.upper() if isinstance(value, str) else value
    name = _ALIASES.get(name, name) if isinstance(name, str) else name
    if name not in MESSAGE_TYPES:
        raise InvalidCallError(
            f"{call}(message_type={value!r}): use one of {', '.join(MESSAGE_TYPES)}"
        )
    return str(name)


def subject_text(call: str, subject: object) -> str:
    """`subject` if it can be a message's subject: a non-empty str a database stores."""
    if not isinstance(subject, str) or not subject.strip():
        raise InvalidCallError(f"{call}() needs subject=, a non-empty str (the message's title)")
    if len(subject) > MAX_SUBJECT_CHARS:
        raise UnstorableValueError(
            call,
            "the subject",
            f"it is {len(subject)} characters long, the limit is {MAX_SUBJECT_CHARS}; "
            "put the text in body= or message=",
        )
    return check_text(call, "the subject", subject)


def form_body(call: str, body: Any = None, request: Any = None, message: Any = None) -> Any:
    """The body to store for `system.message(body= | request= | message=)`, checked.

    `body`: a form (a JSON schema) or a text; `request`: a question answered with one text,
    in the response's `string` key; `message`: a text to show. At most one of them.
    """
    offered = {"body": body, "request": request, "message": message}
    given = [name for name, value in offered.items() if value is not None]
    if len(given) > 1:
        raise InvalidCallError(f"{call}(): give one of body=, request= or message=, not {given}")
    if not given:
        return None
    what, value = given[0], offered[given[0]]
    if what == "request":
        prompt = _text(call, "request", value)
        return {
            "type": "object",
            "properties": {
                "string": {"element": "string", "type": "string", "label": prompt, "order": 1}
            },
            "required": ["string"],
        }
    if isinstance(value, str) or what == "message":
        return _text(call, what, value)
    if not isinstance(value, dict):
        problem = f"a form is a dict (a JSON schema), not {type(value).__name__}"
        raise SchemaValidationError(call, "body", problem, _SCHEMA_FIX)
    return check_form(call, value)


def check_form(call: str, schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` as JSON brings it back, if it is a JSON schema of an object; else
    `SchemaValidationError` saying where it is wrong."""
    schema = check_json(call, "body", schema)
    _check_size(call, "body", schema)
    if schema.get("type", "object") != "object":
        raise SchemaValidationError(
            call, "body", f"a form describes an object, not type {schema['type']!r}", _SCHEMA_FIX
        )
    try:
        validator_for(schema, default=jsonschema.Draft202012Validator).check_schema(schema)
    except jsonschema.SchemaError as error:
        where = "body" + "".join(f"[{part!r}]" for part in error.absolute_path)
        raise SchemaValidationError(call, where, _short(error.message), _SCHEMA_FIX) from None
    return schema


def check_response(message: MessageRecord, response: object) -> dict[str, Any]:
    """`response` as it will be stored, if it is a JSON object that fits the message's form.

    Raises `SchemaValidationError` naming the field, what is wrong and the fields wanted.
    """
    subject = f"response to message {message.id}"
    if not isinstance(response, dict):
        raise SchemaValidationError(
            subject,
            "the response",
            f"it must be a JSON object, not {type(response).__name__}",
            f"give {example(message.body)}",
        )
    plain: dict[str, Any] = check_json("respond", "the response", response)
    _check_size("respond", "the response", plain)
    schema = message.body
    if not isinstance(schema, dict):
        return plain  # a text to show: any object acknowledges it
    try:
        validator = validator_for(schema, default=jsonschema.Draft202012Validator)(schema)
        error = best_match(validator.iter_errors(plain))
    except Exception as failed:  # an unresolvable $ref, say: the form cannot be checked
        raise SchemaValidationError(
            subject, "the form", f"it cannot be checked: {_short(str(failed))}", "fix the flow"
        ) from None
    if error is None:
        return plain
    fix = f"the form asks for {describe(schema)}; give e.g. {example(schema)}"
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [f for f in error.validator_value if f not in error.instance]
        path = [*error.absolute_path, missing[0] if missing else "?"]
        raise SchemaValidationError(subject, _field(path), "it is required but missing", fix)
    path = list(error.absolute_path)
    problem = _short(error.message)
    if _is_secret(schema, path):  # never echo what was typed into a password field
        problem = f"it does not satisfy {error.validator}={error.validator_value!r}"
    raise SchemaValidationError(subject, _field(path), problem, fix)


def fields(schema: Any) -> list[tuple[str, dict[str, Any]]]:
    """The form's properties a response may hold (not the text it shows), in their order."""
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return []
    found = [
        (name, spec)
        for name, spec in schema["properties"].items()
        if isinstance(spec, dict) and spec.get("element") not in _SHOWN_ONLY
    ]
    return sorted(found, key=lambda item: _order(item[1]))


def describe(schema: Any) -> str:
    """The fields of a form for people: `name (string, required), ok (button)`."""
    if not isinstance(schema, dict):
        return "any JSON object (the message shows a text)"
    required = schema["required"] if isinstance(schema.get("required"), list) else []
    parts = []
    for name, spec in fields(schema):
        kind = "button" if spec.get("element") == "submit" else str(spec.get("type", "any"))
        parts.append(f"{name} ({kind}{', required' if name in required else ''})")
    return ", ".join(parts) or "any JSON object"


def example(schema: Any) -> str:
    """A response that shows the form's shape, as the JSON to give `flowrt respond`."""
    values = {"string": "text", "number": 1, "integer": 1, "boolean": True, "array": []}
    sample: dict[str, Any] = {}
    pressed = False  # one button is pressed, the first
    for name, spec in fields(schema):
        if spec.get("element") == "submit":
            if not pressed:
                sample[name], pressed = True, True
        else:
            sample[name] = spec.get("default", values.get(str(spec.get("type")), "text"))
    return json.dumps(sample)


def _text(call: str, what: str, text: object) -> str:
    if not isinstance(text, str):
        raise InvalidCallError(f"{call}({what}=...) takes a str, not {type(text).__name__}")
    _check_size(call, what, text)
    return check_text(call, what, text)


def _check_size(call: str, what: str, value: Any) -> None:
    size = len(value) if isinstance(value, str) else len(json.dumps(value))
    if size > MAX_FORM_CHARS:
        raise UnstorableValueError(
            call,
            what,
            f"it is {size} characters long as JSON, the limit is {MAX_FORM_CHARS}; "
            "keep large content in a file (system.file) and show its name",
        )


def _field(path: list[Any]) -> str:
    if not path:
        return "the response"
    return "field " + " → ".join(repr(part) for part in path)


def shown_response(schema: Any, response: Any) -> Any:
    """`response` as it may be shown: what was typed into the form's password fields masked."""
    if not isinstance(response, dict):
        return response
    secret = _secret_fields(schema)
    return {key: MASK if key in secret else value for key, value in response.items()}


def _secret_fields(schema: Any) -> list[str]:
    return [
        name
        for name, spec in fields(schema)
        if spec.get("element") == "password" or spec.get("format") == "password"
    ]


def _is_secret(schema: dict[str, Any], path: list[Any]) -> bool:
    # A problem with the whole response may quote all of it, a password field's value too.
    secret = _secret_fields(schema)
    return (path[0] in secret) if path else bool(secret)


def _order(spec: dict[str, Any]) -> float:
    order = spec.get("order")
    return float(order) if isinstance(order, (int, float)) else float("inf")


def _short(text: str) -> str:
    return text if len(text) <= 300 else text[:300] + "…"
