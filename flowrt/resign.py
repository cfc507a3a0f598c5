"""`flowrt db resign`: sign the rows written before schema 0004, which carry no signature.

Executions and registered flows were never signed before 0004: signing them now vouches for
what the database holds, so run it only on a database you trust. A savepoint's blobs did carry
a MAC of their own (without their place); one that does not verify with a key of
FLOWRT_SECRET is left unsigned, and so refused. Nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, replace

import sqlalchemy as sa

from flowrt.blobs import Signer
from flowrt.script import FLOW
from flowrt.seals import sign_execution, sign_flow, sign_savepoint
from flowrt.storage import scripts
from flowrt.storage.rows import named_record, savepoint_record
from flowrt.storage.schema import executions, named, savepoints

_LEGACY_KINDS = {b"\x01": b"\x03", b"\x02": b"\x04"}  # pickle, dill: before 0004, then now
_LEGACY_MAC_BYTES = 16


@dataclass
class ResignReport:
    """How many rows of each table were signed, and how many savepoints were refused."""

    executions: int = 0
    savepoints: int = 0
    flows: int = 0
    refused: int = 0


def resign(engine: sa.Engine, signer: Signer, keys: tuple[bytes, ...]) -> ResignReport:
    """Sign every unsigned row in one transaction; `keys` check the blobs' legacy MACs."""
    report = ResignReport()
    with engine.begin() as conn:
        unsigned = sa.select(executions).where(executions.c.signature.is_(None))
        for execution in scripts.records(conn, conn.execute(unsigned).all()):
            signature = sign_execution(
                signer,
                execution.id,
                execution.flow_name,
                execution.source,
                execution.inputs,
                execution.parent_id,
            )
            conn.execute(
                executions.update()
                .where(executions.c.id == execution.id)
                .values(signature=signature)
            )
            report.executions += 1
        unsigned = sa.select(savepoints).where(savepoints.c.signature.is_(None))
        for row in conn.execute(unsigned).all():
            savepoint = savepoint_record(row)
            try:
                savepoint = replace(
                    savepoint,
                    answer=_blob(savepoint.answer, keys),
                    reads=_blob(savepoint.reads, keys),
                )
            except ValueError:
                report.refused += 1
                continue
            values = {"answer": savepoint.answer, "reads": savepoint.reads}
            values["signature"] = sign_savepoint(signer, savepoint)
            conn.execute(savepoints.update().where(savepoints.c.id == row.id).values(values))
            report.savepoints += 1
        flows = sa.select(named).where(named.c.kind == FLOW, named.c.signature.is_(None))
        for row in conn.execute(flows).all():
            source = named_record(row).value.get("source", "")
            where = (named.c.kind == FLOW) & (named.c.name == row.name)
            conn.execute(
                named.update().where(where).values(signature=sign_flow(signer, row.name, source))
            )
            report.flows += 1
    return report


def _blob(blob: bytes | None, keys: tuple[bytes, ...]) -> bytes | None:
    # A legacy blob is kind + MAC(kind + payload) + payload; today's is kind + payload.
    if blob is None:
        return None
    kind, mac, payload = blob[:1], blob[1 : 1 + _LEGACY_MAC_BYTES], blob[1 + _LEGACY_MAC_BYTES :]
    if kind not in _LEGACY_KINDS:
        raise ValueError("not a blob of schema 0003")
    for key in keys:
        expected = hmac.new(key, kind + payload, hashlib.sha256).digest()[:_LEGACY_MAC_BYTES]
        if hmac.compare_digest(mac, expected):
            return _LEGACY_KINDS[kind] + payload
    raise ValueError("its MAC matches no key of FLOWRT_SECRET")
