"""The audit entry of a merchant's replay of a provider event from the gateway's inbox.

The gateway owns the inbox but not an audit trail; the session service keeps the merchant's payment-event trail
(hash-chained, listed by GET /v1/audit), so the replay is written here, before the gateway runs it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from paygate_runtime.errors import InvalidArgument
from session_service.adapters.session_repository import write_audit

ACTION = "inbox_event_replayed"
_ACTOR_LIMIT = 255
_FACT_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class InboxReplay:
    merchant_id: str
    mode: str
    actor: str
    inbox_event_id: str
    provider: str
    provider_event_id: str
    provider_event_type: str
    session_id: str
    inbox_status: str


def _uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument(f"invalid_{field}", f"{field} must be a UUID", field=field) from None


def _actor(value: str) -> str:
    if not value:
        raise InvalidArgument("missing_actor", "actor is required", field="actor")
    if len(value) > _ACTOR_LIMIT or "\x00" in value:
        raise InvalidArgument("invalid_actor", "actor is too long or holds a NUL", field="actor")
    return value


def _fact(value: str) -> str:
    """What the provider said, as the gateway verified and stored it: recorded, never a reason to refuse the
    audit (and so the replay); bounded, and without the NUL that jsonb cannot hold."""
    return value.replace("\x00", "")[:_FACT_LIMIT]


async def record_inbox_replay(pool: asyncpg.Pool, replay: InboxReplay) -> None:
    merchant_id = _uuid(replay.merchant_id, "merchant_id")
    session_id = _uuid(replay.session_id, "session_id") if replay.session_id else None
    if not replay.inbox_event_id:
        raise InvalidArgument("missing_inbox_event_id", "inbox_event_id is required", field="inbox_event_id")
    actor = _actor(replay.actor)
    detail = {
        "object_type": "inbox_event",
        "object_id": _fact(replay.inbox_event_id),
        "mode": replay.mode,
        "provider": _fact(replay.provider),
        "provider_event_id": _fact(replay.provider_event_id),
        "provider_event_type": _fact(replay.provider_event_type),
        "inbox_status": _fact(replay.inbox_status),
    }
    async with pool.acquire() as conn:
        await write_audit(conn, session_id, merchant_id, actor, ACTION, detail)
