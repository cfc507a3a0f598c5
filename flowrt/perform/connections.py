"""Calls that reach outside systems through connectors: connect (stored or inline), and the
connector records a flow reads and writes as `system.connection(name)`."""

from __future__ import annotations

from typing import Any

from flowrt.connectors import Connector, check_config
from flowrt.connectors.base import KIND, build_inline, connector_types
from flowrt.connectors.masking import mask_text, secrets_of
from flowrt.errors import ConnectorError, FlowrtError, InvalidCallError, NotFoundError
from flowrt.perform.base import Result, StepContext, done, existence_calls, json_value, performer

_FIELDS = ("value", "connection_type", "name", "updated_at")
_HINT = (
    "create it with system.connection(name).save(connection_type='REST', value={...}) "
    "or `flowrt connector set NAME --type ...`"
)


@performer("connect", reaches_out=True)
def _connect(context: StepContext, connector: str | None, /, **params: Any) -> Result:
    """Perform one connection: with the stored connector `connector`, or (None) inline with
    `connector_type=` and its parameters. Inline connectors live for this call only."""
    secrets = secrets_of(params)
    own: Connector | None = None  # built for this call alone, closed after it
    try:
        if connector is None:
            own, params = build_inline(params.pop("connector_type", None), params)
            used = own
        else:
            if "connector_type" in params:
                raise InvalidCallError(
                    f"connect({connector!r}, connector_type=...): give a stored connector's "
                    "name or an inline connector_type=, not both"
                )
            used = context.connectors.get(connector)
            overrides = _overrides(type(used), params)
            if overrides:
                own = used = context.connectors.configure(connector, overrides)
                params = {key: value for key, value in params.items() if key not in overrides}
        used.store = context.store  # the flowrt files some types read and write
        return done(used.call(params, context.idempotency_key))
    except FlowrtError as error:
        raise _masked(error, secrets) from None
    except Exception as error:
        what = f"connector {connector!r}" if connector is not None else "the connection"
        raise ConnectorError(
            mask_text(f"{what}: {type(error).__name__}: {error}", secrets)
        ) from None
    finally:
        if own is not None:
            own.close()


def _overrides(cls: type[Connector], params: dict[str, Any]) -> dict[str, Any]:
    """The parameters of a call on a stored connector that override its configuration."""
    fields = set(cls.required) | set(cls.optional)
    return {key: value for key, value in params.items() if key in fields - set(cls.call_params)}


def _masked(error: FlowrtError, secrets: list[str]) -> FlowrtError:
    """`error` with the call's credentials masked in its message (rebuilt from its args)."""
    if not secrets or not any(secret in str(error) for secret in secrets):
        return error
    args = tuple(mask_text(a, secrets) if isinstance(a, str) else a for a in error.args)
    try:
        masked: FlowrtError | None = type(error)(*args)
    except Exception:
        masked = None
    if masked is None or any(secret in str(masked) for secret in secrets):
        return ConnectorError(mask_text(str(error), secrets))
    return masked


# --- system.connection(name): stored connectors as records -----------------------------------


@performer("connection.get")
@performer("connection.load")
def _connection_get(context: StepContext, name: str, asked: str | tuple[str, ...] | None) -> Result:
    fields = (asked or "value",) if not isinstance(asked, tuple) else asked
    unknown = [field for field in fields if field not in _FIELDS]
    if unknown:
        raise InvalidCallError(
            f"a connection has the fields {', '.join(map(repr, _FIELDS))}, not "
            f"{', '.join(map(repr, unknown))}"
        )
    record = context.store.get_named(KIND, name)
    if record is None:
        raise NotFoundError("connection", name, _HINT)
    value = dict(record.value)
    type_name = str(value.pop("type", ""))
    shown = {
        "value": value,  # unmasked: the flow may need the credentials; flowrt never prints it
        "connection_type": type_name.upper(),
        "name": name,
        "updated_at": record.updated_at,
    }
    values = tuple(shown[field] for field in fields)
    return done(values[0] if len(values) == 1 else values)


@performer("connection.save", reaches_out=True)
def _connection_save(context: StepContext, name: str, **fields: Any) -> Result:
    unknown = sorted(set(fields) - {"connection_type", "value"})
    if unknown:
        raise InvalidCallError(
            f"connection.save() takes connection_type= and value=, not {', '.join(unknown)}"
        )
    record = context.store.get_named(KIND, name)
    stored = dict(record.value) if record is not None else {}
    type_name = fields.get("connection_type", stored.pop("type", None))
    if type_name is None:
        raise InvalidCallError(
            f"connection {name!r} does not exist yet: save it with connection_type= "
            f"(one of {', '.join(sorted(t.upper() for t in connector_types()))}) and value={{...}}"
        )
    value = fields.get("value", stored)
    if not isinstance(value, dict):
        raise InvalidCallError(
            f"connection.save(value=...) takes a dict of settings, not {type(value).__name__}"
        )
    value = json_value("connection.save", "value", value)
    context.store.put_named(KIND, name, check_config(name, type_name, value))
    return done()


existence_calls("connection", KIND)
