"""The parts of Cloudomation's Flow-API flowrt does not have, and why: using one raises
`UnsupportedCallError` (a `FlowApiError` and an `AttributeError`) that says so."""

from __future__ import annotations

from typing import NoReturn

from flowrt.errors import UnsupportedCallError

_NO_USERS = "flowrt has no users, clients or permissions of its own to manage"
_NO_VAULT = "flowrt keeps no vault configurations; give credentials to a connector instead"
_NOT_AN_EXECUTION = (
    "a connection is not an execution in flowrt (it is made inside the step that reaches it); "
    "make a new one with this.connect() or this.task()"
)

# What each object a flow is handed lacks of Cloudomation's, by attribute name.
MISSING: dict[str, dict[str, str]] = {
    "system": {
        "user": _NO_USERS,
        "users": _NO_USERS,
        "client": _NO_USERS,
        "clients": _NO_USERS,
        "vault_config": _NO_VAULT,
        "vault_configs": _NO_VAULT,
        "webhook": "flowrt receives no webhooks; start flows with flowrt.start() or the CLI",
        "webhooks": "flowrt receives no webhooks; start flows with flowrt.start() or the CLI",
    },
    "this": {
        "script": "flowrt runs registered flows and .py files, not script text: "
        "register it with system.flow(name).save(script=...) and start it with this.flow(name)",
        "webhook_html_response": "flowrt receives no webhooks, so it answers none",
        "clone": "start a new execution of the flow with this.flow(name) instead",
    },
    "connection": {
        "save": _NOT_AN_EXECUTION,
        "clone": _NOT_AN_EXECUTION,
        "pause": _NOT_AN_EXECUTION,
        "cancel": _NOT_AN_EXECUTION,
    },
}


def refuse(kind: str, name: str) -> NoReturn:
    """Raise what a flow gets for `kind.name`: `UnsupportedCallError` with the reason for a
    part of Cloudomation's Flow-API flowrt lacks, a plain `AttributeError` for anything else."""
    why = MISSING.get(kind, {}).get(name)
    if why is None:
        raise AttributeError(f"{kind}.{name}: flowrt's Flow-API has no such attribute")
    raise UnsupportedCallError(f"{kind}.{name}", why)
