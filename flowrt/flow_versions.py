"""Versions of registered flows: each distinct source a flow was registered with, numbered 1, 2, ...

A version is a named object of kind `FLOW_VERSION`, keyed by a hash of the flow's name and
its number (a name is up to 200 characters, as the key column), signed over that key and its
source as the registered flow is: a version edited, or moved to another flow or number, is
refused. Registering a source the flow had before reuses that version's number.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from flowrt.errors import FlowNotFoundError, TamperedFlowError, TamperedSavepointError
from flowrt.script import FLOW, script_hash

if TYPE_CHECKING:
    from flowrt.blobs import Signer
    from flowrt.storage.base import NamedRecord, Store

FLOW_VERSION = "flowversion"  # the kind of named object that holds one version's source


@dataclass(frozen=True)
class FlowVersion:
    """Version `number` of the registered flow `flow`, and the source it holds."""

    flow: str
    number: int
    source: str
    saved_at: datetime

    @property
    def hash(self) -> str:
        """The short hash of its source, as savepoints record it (`script_hash`)."""
        return script_hash(self.source)


def record_version(store: Store, signer: Signer, name: str, source: str) -> int:
    """Keep `source` as a version of flow `name` (a new number unless it had it); its number.

    A flow registered before versions were kept gets its source then as version 1 first.
    """
    versions = flow_versions(store, signer, name)
    for version in versions:
        if version.source == source:
            return version.number
    if versions and not _stored(store, name):  # only the registered-now one, not kept yet
        _put(store, signer, name, 1, versions[0].source)
    number = versions[-1].number + 1 if versions else 1
    _put(store, signer, name, number, source)
    return number


def flow_versions(store: Store, signer: Signer, name: str) -> list[FlowVersion]:
    """The versions of flow `name`, oldest first; a flow registered before versions were
    kept has its current source as version 1. Raises `TamperedFlowError` on an altered one."""
    from flowrt.seals import check_flow  # seals reads storage records, which import much

    stored = _stored(store, name)
    if stored:
        return sorted((_version(signer, name, row) for row in stored), key=lambda v: v.number)
    registered = store.get_named(FLOW, name)
    if registered is None:
        return []
    return [FlowVersion(name, 1, check_flow(signer, registered), registered.updated_at)]


def version_source(store: Store, signer: Signer, ref: str) -> str:
    """The source of `ref`, "NAME@N": version N of the registered flow NAME."""
    name, sep, number = ref.rpartition("@")
    if not sep or not name or not (number.isascii() and number.isdigit()):  # not '²'
        raise FlowNotFoundError(f"{ref} (a flow version is NAME@N, say {name or 'billing'}@1)")
    for version in flow_versions(store, signer, name):
        if version.number == int(number):
            return version.source
    raise FlowNotFoundError(f"{ref} (`flowrt flow versions {name}` lists its versions)")


def _stored(store: Store, name: str) -> list[NamedRecord]:
    return store.list_named(FLOW_VERSION, prefix=_key(name, None))


def _key(name: str, number: int | None) -> str:
    digest = hashlib.sha256(name.encode(errors="surrogatepass")).hexdigest()[:32]
    return f"{digest}@" if number is None else f"{digest}@{number}"


def _put(store: Store, signer: Signer, name: str, number: int, source: str) -> None:
    from flowrt.seals import sign_flow

    key = _key(name, number)
    store.put_named(
        FLOW_VERSION, key, {"flow": name, "source": source}, sign_flow(signer, key, source)
    )


def _version(signer: Signer, name: str, row: NamedRecord) -> FlowVersion:
    from flowrt.seals import check_flow

    number = row.name.rpartition("@")[2]
    what = f"version {number} of the registered flow {name!r}"
    try:
        source = check_flow(signer, row)
    except TamperedSavepointError as error:
        raise TamperedFlowError(what, error.reason) from None
    if not number.isdigit():
        raise TamperedFlowError(what, "its key was altered in the database")
    return FlowVersion(name, int(number), source, row.updated_at)
