"""The append-only audit trail (keys.audit_events): the runtime role may insert, never update or delete."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from keys_service.domain.audit_events import AuditEvent

_INSERT = "INSERT INTO audit_events (event_type, merchant_id, object_type, object_id, session_id, details)"


async def record(
    conn: asyncpg.Connection,
    event: AuditEvent,
    *,
    object_type: str,
    object_id: str | uuid.UUID,
    merchant_id: str | uuid.UUID | None = None,
    session_id: str | uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Write one audit row inside the caller's transaction, so the event and the change commit together."""
    await conn.execute(
        f"""{_INSERT} VALUES ($1, $2, $3, $4, $5, $6::jsonb)""",
        event.value,
        _uuid(merchant_id),
        object_type,
        str(object_id),
        _uuid(session_id),
        details_json(details),
    )


def details_json(details: dict[str, Any] | None) -> str:
    return json.dumps(details or {}, sort_keys=True)


def insert_for_rows(source: str, *, object_type: str, object_id: str, event: str, details: str) -> str:
    """The SQL of an audit row for each row of `source` (a CTE with merchant_id and session_id), to put in
    the same statement as the change it records. `object_id` is a column of `source`; `event` and
    `details` are the statement's parameters (an AuditEvent value and `details_json(...)`)."""
    return (
        f"{_INSERT} SELECT {event}, merchant_id, '{object_type}', {object_id}::text, session_id, "
        f"{details}::jsonb FROM {source}"
    )


def _uuid(value: str | uuid.UUID | None) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(value)
