"""The append-only audit trail (keys.audit_events): the runtime role may insert, never update or delete."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from keys_service.domain.audit_events import AuditEvent


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
        """INSERT INTO audit_events (event_type, merchant_id, object_type, object_id, session_id, details)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb)""",
        event.value,
        _uuid(merchant_id),
        object_type,
        str(object_id),
        _uuid(session_id),
        json.dumps(details or {}, sort_keys=True),
    )


def _uuid(value: str | uuid.UUID | None) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(value)
