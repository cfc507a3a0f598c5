"""What every route is given: the client the application serves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request

from flowrt.client import Client, default_client
from flowrt.connectors.base import KIND as CONNECTOR
from flowrt.connectors.masking import mask_text, secrets_of


def client_of(request: Request) -> Client:
    """The application's client (the FLOWRT_* environment's, unless it was given one)."""
    client = request.app.state.client
    if client is None:
        client = request.app.state.client = default_client()
    return client


ClientDep = Annotated[Client, Depends(client_of)]


def connector_secrets(client: Client) -> list[str]:
    """Every credential of every stored connector, in the spellings a text may hold them."""
    found: set[str] = set()
    for record in client.list_named(CONNECTOR):
        if isinstance(record.value, dict):
            found.update(secrets_of(record.value))
    return sorted(found, key=len, reverse=True)


def masked(value: Any, secrets: list[str]) -> Any:
    """`value` (JSON) with every one of `secrets` masked in its texts and keys: a flow may
    have put a connector's credentials into its error, message, outputs or logs."""
    if not secrets:
        return value
    if isinstance(value, str):
        return mask_text(value, secrets)
    if isinstance(value, dict):
        return {masked(k, secrets): masked(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(item, secrets) for item in value]
    return value


def masker(client: ClientDep) -> Callable[[Any], Any]:
    """Masks the connector credentials in what a route answers (see `masked`)."""
    secrets = connector_secrets(client)
    return lambda value: masked(value, secrets)


Masker = Annotated[Callable[[Any], Any], Depends(masker)]
