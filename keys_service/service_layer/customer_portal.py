"""What the customer does with their own key in the access portal (contract §12).

The gateway has verified the customer's portal session (token-for-cookie, CSRF) and names its session; every
action here works on that session's current key (its newest: the issued one or the latest rolled successor),
is audited with the customer as actor, and invalidates the verify cache on every replica (NOTIFY) exactly as
a merchant's roll or revoke does.

Merchant events do not exist yet: the merchant learns of a customer's change from the audit trail and from
GET /v1/api_keys (scopes, allow-list, expiry, status); a `api_key.updated` event should be added with them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import asyncpg

from keys_service.adapters import access_token_repository, api_key_repository, audit_log
from keys_service.adapters.api_key_repository import StoredApiKey
from keys_service.adapters.invalidation_listener import notify_invalidated
from keys_service.domain.api_keys import (
    KeyMode,
    hash_key,
    hashes_equal,
    parse_customer_key,
)
from keys_service.domain.audit_events import AuditEvent
from keys_service.domain.ids import parse_uuid, required_uuid
from keys_service.domain.key_permissions import Network, narrow_scopes, parse_allowlist
from keys_service.service_layer import key_changes
from keys_service.service_layer.key_changes import RolledKey, require_alive
from keys_service.service_layer.key_verifier import KeyVerifier
from paygate_runtime.errors import FailedPrecondition, InvalidArgument, NotFound

CUSTOMER_MAX_GRACE_SECONDS = 24 * 3600
DEFAULT_USAGE_DAYS = 30
MAX_USAGE_DAYS = 90
MAX_SUPPORT_MESSAGE_CHARS = 4000
# Contact form limits, counted in the database so that every gateway and keys replica shares them.
SUPPORT_PER_SESSION_PER_HOUR = 3
SUPPORT_PER_MERCHANT_PER_HOUR = 30
DEFAULT_SUBJECT_SESSIONS = 50


def validate_customer_grace(seconds: object) -> int:
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int)
        or not 0 <= seconds <= CUSTOMER_MAX_GRACE_SECONDS
    ):
        raise InvalidArgument(
            "invalid_grace_period",
            f"grace period must be between 0 and {CUSTOMER_MAX_GRACE_SECONDS} seconds",
            field="grace_period_seconds",
        )
    return seconds


def customer_expiry(requested: datetime, current: datetime | None, now: datetime) -> datetime:
    """A customer may only bring the end of their key forward: in the future, never later than now set."""
    if requested <= now:
        raise InvalidArgument(
            "invalid_expires_at", "the new expiry must be in the future", field="expires_at"
        )
    if current is not None and requested > current:
        raise InvalidArgument(
            "invalid_expires_at",
            "the new expiry cannot be later than the key's current expiry",
            field="expires_at",
        )
    return requested


def _actor(access_token_id: str) -> dict[str, str]:
    return {"actor": "customer", "access_token_id": access_token_id[:64]}


class CustomerPortalService:
    def __init__(self, pool: asyncpg.Pool, verifier: KeyVerifier) -> None:
        self.pool = pool
        self.verifier = verifier

    async def _current_locked(self, conn: asyncpg.Connection, session_id: str) -> StoredApiKey:
        """The session's newest key, locked against a concurrent roll or change."""
        if not session_id:
            raise InvalidArgument("missing_session_id", "session_id is required", field="session_id")
        session_uuid = parse_uuid(session_id)
        if session_uuid is None:
            raise NotFound("not_found", "no key for this session")
        # Lock every key of the session first (in id order, so two calls never deadlock), then pick the newest.
        await conn.execute(
            "SELECT id FROM api_keys WHERE session_id = $1 ORDER BY id FOR UPDATE", session_uuid
        )
        key = await api_key_repository.get_current_for_session(conn, session_uuid)
        if key is None:
            raise NotFound("not_found", "no key for this session")
        return key

    async def update_settings(
        self,
        *,
        session_id: str,
        access_token_id: str,
        scopes: Sequence[str] | None,
        ip_allowlist: Sequence[str] | None,
        expires_at: datetime | None,
    ) -> StoredApiKey:
        if scopes is None and ip_allowlist is None and expires_at is None:
            raise InvalidArgument("nothing_to_change", "name at least one setting to change")
        now = datetime.now(UTC)
        async with self.pool.acquire() as conn, conn.transaction():
            key = await self._current_locked(conn, session_id)
            require_alive(key, now, "changed")
            new_scopes = None if scopes is None else narrow_scopes(list(scopes), key.granted_scopes)
            networks: tuple[Network, ...] | None = (
                None if ip_allowlist is None else parse_allowlist(list(ip_allowlist))
            )
            new_expiry = None if expires_at is None else customer_expiry(expires_at, key.expires_at, now)
            updated = await api_key_repository.update_settings(
                conn, uuid.UUID(key.id), scopes=new_scopes, ip_allowlist=networks, expires_at=new_expiry
            )
            details: dict[str, object] = {**_actor(access_token_id)}
            if new_scopes is not None:
                details["scopes"] = list(new_scopes)
            if networks is not None:
                details["ip_allowlist"] = [str(n) for n in networks]
            if new_expiry is not None:
                details["expires_at"] = new_expiry.isoformat()
            await audit_log.record(
                conn,
                AuditEvent.API_KEY_SETTINGS_CHANGED,
                object_type="api_key",
                object_id=key.id,
                merchant_id=key.merchant_id,
                session_id=key.session_id,
                details=details,
            )
            await notify_invalidated(conn, key.id)
        self.verifier.invalidate(key.id)
        return updated

    async def roll(
        self, *, session_id: str, access_token_id: str, current_secret: str, grace_period_seconds: int
    ) -> RolledKey:
        """A new secret for the session's key, only against the current secret: the link alone (which a
        forwarded mail carries) is not enough to mint a working key."""
        grace = validate_customer_grace(grace_period_seconds)
        presented = parse_customer_key(current_secret)
        now = datetime.now(UTC)
        async with self.pool.acquire() as conn, conn.transaction():
            key = await self._current_locked(conn, session_id)
            stored_hash = await conn.fetchval(
                "SELECT key_hash FROM api_keys WHERE id = $1", uuid.UUID(key.id)
            )
            # Hash of the presented string compared in constant time with the stored hash; a malformed input
            # is compared as the hash of the empty string, so it takes the same path.
            presented_hash = hash_key(presented.secret if presented is not None else "")
            if presented is None or not hashes_equal(bytes(stored_hash), presented_hash):
                raise InvalidArgument(
                    "current_key_mismatch",
                    "the current key does not match this purchase's active key",
                    field="current_key",
                )
            # "Revoked at once" (grace 0): the old secret is REVOKED (not merely expired), as the customer chose.
            rolled = await key_changes.roll_locked(
                conn,
                key,
                now=now,
                grace_period_seconds=grace,
                idempotency_key=None,
                revoke_previous=grace == 0,
                actor=_actor(access_token_id),
                ends_at_field="previous_ends_at",
                rolled_details={"previous_revoked": grace == 0},
            )
        self.verifier.invalidate(key.id)
        return rolled

    async def revoke(self, *, session_id: str, access_token_id: str) -> StoredApiKey:
        """Revoke every still-standing key of the session (the current one and any predecessor in its roll
        grace period): a customer who revokes means "this purchase's key must stop working"."""
        async with self.pool.acquire() as conn, conn.transaction():
            current = await self._current_locked(conn, session_id)
            rows = await conn.fetch(
                "SELECT id FROM api_keys WHERE session_id = $1 AND revoked_at IS NULL",
                uuid.UUID(current.session_id),
            )
            revoked_ids = [str(r["id"]) for r in rows]
            result = current
            for key_id in revoked_ids:
                revoked = await key_changes.revoke_locked(conn, key_id, actor=_actor(access_token_id))
                if key_id == current.id:
                    result = revoked
        for key_id in revoked_ids:
            self.verifier.invalidate(key_id)
        return result

    async def usage(self, *, session_id: str, days: int) -> list[tuple[date, int]]:
        """Verifications per UTC day, oldest first, zeros included, over every key of the session."""
        if days == 0:
            days = DEFAULT_USAGE_DAYS
        if not 1 <= days <= MAX_USAGE_DAYS:
            raise InvalidArgument(
                "invalid_days", f"days must be between 1 and {MAX_USAGE_DAYS}", field="days"
            )
        session_uuid = parse_uuid(session_id)
        if session_uuid is None:
            raise NotFound("not_found", "no key for this session")
        key_ids = await api_key_repository.session_key_ids(self.pool, session_uuid)
        if not key_ids:
            raise NotFound("not_found", "no key for this session")
        today = datetime.now(UTC).date()
        first = today - timedelta(days=days - 1)
        counts = await api_key_repository.daily_usage(self.pool, key_ids, first)
        return [(first + timedelta(days=i), counts.get(first + timedelta(days=i), 0)) for i in range(days)]

    async def record_support_message(
        self, *, session_id: str, merchant_id: str, chars: int, access_token_id: str
    ) -> None:
        """Count one contact-form message against the limits, atomically (an advisory lock per merchant
        serialises the count and the insert), and record it; FAILED_PRECONDITION rate_limited when over."""
        session_uuid = required_uuid(session_id, "session_id")
        merchant_uuid = required_uuid(merchant_id, "merchant_id")
        if not 1 <= chars <= MAX_SUPPORT_MESSAGE_CHARS:
            raise InvalidArgument(
                "invalid_message",
                f"the message must be 1 to {MAX_SUPPORT_MESSAGE_CHARS} characters",
                field="message",
            )
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('support:' || $1::text))", str(merchant_uuid)
            )
            row = await conn.fetchrow(
                """SELECT count(*) FILTER (WHERE session_id = $2) AS by_session, count(*) AS by_merchant
                     FROM support_messages WHERE merchant_id = $1 AND sent_at > now() - interval '1 hour'""",
                merchant_uuid,
                session_uuid,
            )
            assert row is not None
            if (
                row["by_session"] >= SUPPORT_PER_SESSION_PER_HOUR
                or row["by_merchant"] >= SUPPORT_PER_MERCHANT_PER_HOUR
            ):
                raise FailedPrecondition("rate_limited", "too many messages; please try again later")
            # Rows only serve the hourly count: drop this merchant's old ones while holding its lock.
            await conn.execute(
                "DELETE FROM support_messages WHERE merchant_id = $1 AND sent_at < now() - interval '1 day'",
                merchant_uuid,
            )
            await conn.execute(
                "INSERT INTO support_messages (merchant_id, session_id, chars) VALUES ($1, $2, $3)",
                merchant_uuid,
                session_uuid,
                chars,
            )
            await audit_log.record(
                conn,
                AuditEvent.SUPPORT_MESSAGE_SENT,
                object_type="session",
                object_id=str(session_uuid),
                merchant_id=merchant_uuid,
                session_id=session_uuid,
                details={**_actor(access_token_id), "chars": chars},
            )

    async def subject_sessions(
        self, *, subject: str, merchant_id: str, mode: KeyMode, limit: int
    ) -> list[str]:
        merchant_uuid = required_uuid(merchant_id, "merchant_id")
        if not subject or len(subject) > 64:
            raise InvalidArgument("invalid_subject", "subject is required", field="subject")
        if limit == 0:
            limit = DEFAULT_SUBJECT_SESSIONS
        if not 1 <= limit <= 100:
            raise InvalidArgument("invalid_limit", "limit must be between 1 and 100", field="limit")
        return await access_token_repository.sessions_for_subject(
            self.pool, subject, merchant_uuid, mode, limit
        )
