"""The write side of rolling and revoking one customer key, shared by the merchant's API
(customer_keys) and the customer's own portal (customer_portal).

Each function runs inside the caller's transaction, with the key's row already locked by the caller (who
also decides who may act on which key); it writes the rows, the audit entries and the NOTIFY that drops the
key from every replica's verify cache at commit. The caller invalidates its own replica's cache after the
commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from keys_service.adapters import api_key_repository, audit_log
from keys_service.adapters.api_key_repository import StoredApiKey
from keys_service.adapters.invalidation_listener import notify_invalidated
from keys_service.domain.api_keys import generate_customer_key
from keys_service.domain.audit_events import AuditEvent
from keys_service.domain.key_status import KeyStatus, rolled_key_expiry
from paygate_runtime.errors import FailedPrecondition


@dataclass(frozen=True, slots=True)
class RolledKey:
    key: StoredApiKey
    secret: str  # empty on an idempotent replay
    previous: StoredApiKey

    def __repr__(self) -> str:
        return f"RolledKey(key_id={self.key.id!r}, previous={self.previous.id!r})"


def require_alive(key: StoredApiKey, now: datetime, action: str) -> None:
    """FAILED_PRECONDITION unless the key still works: a revoked, expired or suspended key is not `action`."""
    status = key.status_at(now)
    if status is KeyStatus.REVOKED:
        raise FailedPrecondition("key_revoked", f"a revoked key cannot be {action}")
    if status is KeyStatus.EXPIRED:
        raise FailedPrecondition("key_expired", f"an expired key cannot be {action}")
    if status is KeyStatus.SUSPENDED:
        raise FailedPrecondition("key_suspended", f"a suspended key cannot be {action}")


async def roll_locked(
    conn: asyncpg.Connection,
    previous: StoredApiKey,
    *,
    now: datetime,
    grace_period_seconds: int,
    idempotency_key: str | None,
    revoke_previous: bool,
    actor: Mapping[str, object],
    ends_at_field: str,
    rolled_details: Mapping[str, object] | None = None,
) -> RolledKey:
    """A successor for `previous` (alive, checked here) and the end of `previous`: revoked at once when
    `revoke_previous`, else expiring after the grace period. Both audit rows carry `actor`; the roll's also
    names the end `ends_at_field` and adds `rolled_details` (the two callers' audit formats differ)."""
    require_alive(previous, now, "rolled")
    generated = generate_customer_key(previous.prefix.split("_", 1)[0], previous.mode)
    new_key = await api_key_repository.insert_rolled(
        conn,
        key_id=uuid.uuid4(),
        previous=previous,
        hint=generated.hint,
        key_hash=generated.key_hash,
        idempotency_key=idempotency_key,
        successor_expires_at=previous.expires_at,
    )
    ends_at = rolled_key_expiry(
        now=now, grace_period_seconds=grace_period_seconds, current_expires_at=previous.expires_at
    )
    if revoke_previous:
        ended = await api_key_repository.revoke(conn, uuid.UUID(previous.id))
    else:
        ended = await api_key_repository.end_for_roll(conn, uuid.UUID(previous.id), ends_at)
    await audit_log.record(
        conn,
        AuditEvent.API_KEY_ROLLED,
        object_type="api_key",
        object_id=previous.id,
        merchant_id=previous.merchant_id,
        session_id=previous.session_id,
        details={
            **actor,
            "new_key_id": new_key.id,
            "new_hint": new_key.hint,
            "grace_period_seconds": grace_period_seconds,
            ends_at_field: ends_at.isoformat(),
            **(rolled_details or {}),
        },
    )
    await audit_log.record(
        conn,
        AuditEvent.API_KEY_CREATED,
        object_type="api_key",
        object_id=new_key.id,
        merchant_id=new_key.merchant_id,
        session_id=new_key.session_id,
        details={**actor, "mode": new_key.mode.value, "hint": new_key.hint, "rolled_from_id": previous.id},
    )
    await notify_invalidated(conn, previous.id)
    return RolledKey(new_key, generated.secret, ended)


async def revoke_locked(
    conn: asyncpg.Connection, key_id: str, *, actor: Mapping[str, object]
) -> StoredApiKey:
    """Revoke one key (again is harmless: the first revocation time stays), audited with `actor`."""
    revoked = await api_key_repository.revoke(conn, uuid.UUID(key_id))
    await audit_log.record(
        conn,
        AuditEvent.API_KEY_REVOKED,
        object_type="api_key",
        object_id=key_id,
        merchant_id=revoked.merchant_id,
        session_id=revoked.session_id,
        details={**actor, "hint": revoked.hint},
    )
    await notify_invalidated(conn, key_id)
    return revoked
