"""The connector base class and the per-process registry of configured connectors."""

from __future__ import annotations

import abc
import threading
from typing import Any, ClassVar

from flowrt.connectors.masking import mask_text, secrets_of
from flowrt.errors import (
    ConnectorConfigError,
    ConnectorError,
    ConnectorNotFoundError,
    InvalidCallError,
    UnsupportedConnectionError,
)
from flowrt.storage.base import Store

KIND = "connector"


class Connector(abc.ABC):
    """A configured connection to one outside system; one instance serves many calls."""

    type_name: ClassVar[str]
    required: ClassVar[tuple[str, ...]] = ()
    optional: ClassVar[tuple[str, ...]] = ()
    call_params: ClassVar[tuple[str, ...]] = ()
    store: Store | None = None  # set by `Connectors`: the flowrt files some types read and write

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        self.name, self.config = name, config
        self.secrets = secrets_of(config)

    def masked(self, text: str) -> str:
        """`text` with this connector's credentials masked: for every message it raises."""
        return mask_text(text, self.secrets)

    @classmethod
    def check(cls, config: dict[str, Any]) -> str | None:
        """What is wrong with `config` (its keys are known and present), or None if nothing."""
        return None

    @classmethod
    def split_inline(cls, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Split the parameters of an inline connection (`this.connect(connector_type=T,
        **params)`) into this type's configuration and the call's own parameters.

        By default a key naming a configuration field (`required`/`optional`) is
        configuration, every other key a call parameter; a type may override it.
        """
        fields = set(cls.required) | set(cls.optional)
        config = {key: value for key, value in params.items() if key in fields}
        return config, {key: value for key, value in params.items() if key not in fields}

    @abc.abstractmethod
    def call(self, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        """Perform one call; returns the output dict the flow reads as `output_value`."""

    def close(self) -> None:  # noqa: B027 - most connectors hold nothing to release
        """Release pooled connections."""

    def check_params(self, params: dict[str, Any]) -> None:
        """Raise `InvalidCallError` for a parameter this connector does not take."""
        unknown = sorted(set(params) - set(self.call_params))
        if unknown:
            raise InvalidCallError(
                f"connector {self.name!r} ({self.type_name}) takes no parameter "
                f"{', '.join(map(repr, unknown))}; it takes {', '.join(self.call_params)}"
            )


def connector_types() -> dict[str, type[Connector]]:
    """Connector classes by type name (lower case)."""
    from flowrt.connectors.git import GitConnector
    from flowrt.connectors.rest import RestConnector
    from flowrt.connectors.scp import ScpConnector
    from flowrt.connectors.smtp import SmtpConnector
    from flowrt.connectors.sql import SqlConnector
    from flowrt.connectors.sql_hosts import (
        MysqlAliasConnector,
        MysqlConnector,
        PostgresAliasConnector,
        PostgresConnector,
    )
    from flowrt.connectors.ssh import SshConnector

    classes = (SqlConnector, RestConnector, SmtpConnector, GitConnector, SshConnector, ScpConnector)
    sql_hosts = (PostgresConnector, PostgresAliasConnector, MysqlConnector, MysqlAliasConnector)
    return {cls.type_name: cls for cls in (*classes, *sql_hosts)}


def connector_class(type_name: object) -> type[Connector]:
    """The connector class of `type_name`, in any case ('REST' is 'rest');
    raises `UnsupportedConnectionError` for a type flowrt has no connector for."""
    types = connector_types()
    found = types.get(type_name.lower()) if isinstance(type_name, str) else None
    if found is None:
        shown = type_name.upper() if isinstance(type_name, str) else repr(type_name)
        raise UnsupportedConnectionError(shown, ", ".join(sorted(t.upper() for t in types)))
    return found


def check_config(name: str, type_name: str, config: dict[str, Any]) -> dict[str, Any]:
    """Validate the configuration of connector `name`; raises `ConnectorError` saying what
    to fix (`ConnectorConfigError` for a value its type cannot use, say a malformed URL,
    `UnsupportedConnectionError` for a type flowrt has no connector for)."""
    cls = connector_class(type_name)
    type_name = cls.type_name
    missing = [key for key in cls.required if not config.get(key)]
    unknown = sorted(set(config) - set(cls.required) - set(cls.optional))
    if missing:
        raise ConnectorError(f"a {type_name} connector needs {', '.join(missing)}")
    if unknown:
        raise ConnectorError(
            f"a {type_name} connector takes no {', '.join(unknown)}; "
            f"it takes {', '.join(cls.required + cls.optional)}"
        )
    problem = cls.check(config)
    if problem is not None:
        raise ConnectorConfigError(name, mask_text(problem, secrets_of(config)))
    return {"type": type_name, **config}


def build_inline(type_name: object, params: dict[str, Any]) -> tuple[Connector, dict[str, Any]]:
    """A new connector for one inline connection (`this.connect(connector_type=T, **params)`)
    and the parameters of its call; the caller closes it.

    Raises `UnsupportedConnectionError` for an unknown type and `InvalidCallError` for
    parameters the type cannot use, with every credential among them masked.
    """
    cls = connector_class(type_name)
    label = f"{cls.type_name.upper()} connection"
    secrets = secrets_of(params)
    config, call = cls.split_inline(params)
    unknown = sorted(set(call) - set(cls.call_params))
    if unknown:
        takes = ", ".join(dict.fromkeys(cls.required + cls.optional + cls.call_params))
        raise InvalidCallError(
            f"a {label} takes no parameter {', '.join(map(repr, unknown))}; it takes {takes}"
        )
    missing = [f"{key}=" for key in cls.required if not config.get(key)]
    if missing:
        raise InvalidCallError(f"a {label} needs {', '.join(missing)}")
    try:
        check_config(label, cls.type_name, config)
        connector = cls(label, config)
    except ConnectorConfigError as error:
        raise InvalidCallError(mask_text(f"a {label}: {error.problem}", secrets)) from None
    except Exception as error:  # say, the database driver of a SQL URL is not installed
        problem = mask_text(f"{type(error).__name__}: {error}", secrets)
        raise InvalidCallError(f"a {label} cannot be made: {problem}") from None
    connector.secrets = sorted(set(connector.secrets) | set(secrets), key=len, reverse=True)
    return connector, call


class Connectors:
    """The connectors of one process, built from their stored configuration on first use."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._built: dict[str, tuple[dict[str, Any], Connector]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Connector:
        """The connector `name` as currently configured; raises `ConnectorNotFoundError`."""
        record = self._store.get_named(KIND, name)
        if record is None:
            raise ConnectorNotFoundError(name)
        config = dict(record.value)
        with self._lock:
            known = self._built.get(name)
            if known is not None and known[0] == config:
                return known[1]
            connector = _build(name, config)
            connector.store = self._store
            if known is not None:
                known[1].close()
            self._built[name] = (config, connector)
            return connector

    def configure(self, name: str, overrides: dict[str, Any]) -> Connector:
        """A new connector `name` with `overrides` over its stored configuration, for one
        call (Cloudomation lets a call override a connector's inputs); the caller closes it."""
        record = self._store.get_named(KIND, name)
        if record is None:
            raise ConnectorNotFoundError(name)
        return _build(name, {**record.value, **overrides})

    def close(self) -> None:
        """Close every built connector."""
        with self._lock:
            for _, connector in self._built.values():
                connector.close()
            self._built.clear()


def _build(name: str, config: dict[str, Any]) -> Connector:
    # A stored configuration is checked again: it may predate these checks or have been
    # written by hand, and a flow that connects to it must get an error at its line.
    settings = dict(config)
    type_name = settings.pop("type", None)
    try:
        check_config(name, str(type_name), settings)
        return connector_class(type_name)(name, settings)
    except ConnectorError as error:
        # A stored type flowrt has no connector for is a configuration to fix, as any other.
        if isinstance(error, ConnectorConfigError):
            raise
        raise ConnectorConfigError(name, mask_text(str(error), secrets_of(settings))) from None
    except Exception as error:  # say, the database driver of a SQL URL is not installed
        problem = mask_text(f"{type(error).__name__}: {error}", secrets_of(settings))
        raise ConnectorConfigError(name, problem) from None
