"""SetSessionKeyAccess (contract §8): what every customer key of one session may do after a refund or a
dispute. "revoked" revokes the session's keys and its access links; "suspended" suspends its keys (VerifyKey
answers SUSPENDED); "active" lifts a suspension. Idempotent; a revoked key is never brought back.

Each changed key is announced to every replica (NOTIFY in the transaction) and dropped from this replica's
verify cache at once, exactly as a merchant's revocation is, so verification fails within the cache's bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from keys_service.adapters import access_token_repository, audit_log
from keys_service.adapters.invalidation_listener import notify_invalidated
from keys_service.domain.audit_events import AuditEvent
from keys_service.domain.ids import required_uuid
from keys_service.service_layer.key_verifier import KeyVerifier
from paygate_runtime.errors import InvalidArgument

ACCESS = ("active", "suspended", "revoked")

_CHANGE = {
    # access -> (statement, audit event); each statement returns the keys it changed.
    "revoked": (
        """UPDATE api_keys SET revoked_at = now(), secret_ciphertext = NULL
            WHERE session_id = $1 AND merchant_id = $2 AND revoked_at IS NULL RETURNING id""",
        AuditEvent.API_KEY_REVOKED,
    ),
    "suspended": (
        """UPDATE api_keys SET suspended_at = now()
            WHERE session_id = $1 AND merchant_id = $2 AND revoked_at IS NULL AND suspended_at IS NULL
        RETURNING id""",
        AuditEvent.API_KEY_SUSPENDED,
    ),
    "active": (
        """UPDATE api_keys SET suspended_at = NULL
            WHERE session_id = $1 AND merchant_id = $2 AND suspended_at IS NOT NULL RETURNING id""",
        AuditEvent.API_KEY_RESTORED,
    ),
}


@dataclass(frozen=True, slots=True)
class AccessChanged:
    keys_changed: int
    links_revoked: int


async def set_session_key_access(
    pool: asyncpg.Pool,
    verifier: KeyVerifier,
    *,
    session_id: str,
    merchant_id: str,
    access: str,
    reason: str,
) -> AccessChanged:
    session = required_uuid(session_id, "session_id")
    merchant = required_uuid(merchant_id, "merchant_id")
    if access not in ACCESS:
        raise InvalidArgument("invalid_access", "access must be active, suspended or revoked", field="access")
    reason = reason[:64]
    sql, event = _CHANGE[access]
    async with pool.acquire() as conn, conn.transaction():
        # The same order of row locks as every other writer of a session's keys (by id), so none deadlock.
        await conn.execute("SELECT id FROM api_keys WHERE session_id = $1 ORDER BY id FOR UPDATE", session)
        changed = [str(row["id"]) for row in await conn.fetch(sql, session, merchant)]
        for key_id in changed:
            await audit_log.record(
                conn,
                event,
                object_type="api_key",
                object_id=key_id,
                merchant_id=merchant,
                session_id=session,
                details={"reason": reason},
            )
            await notify_invalidated(conn, key_id)
        links: list[str] = []
        if access == "revoked":
            owner = await access_token_repository.by_session(conn, session)
            if owner is not None and owner.merchant_id == str(merchant):
                await access_token_repository.lock_session_tokens(conn, session)
                links = await access_token_repository.revoke_session(conn, session)
                for jti in links:
                    await audit_log.record(
                        conn,
                        AuditEvent.ACCESS_TOKEN_REVOKED,
                        object_type="access_token",
                        object_id=jti,
                        merchant_id=merchant,
                        session_id=session,
                        details={"reason": reason},
                    )
    for key_id in changed:
        verifier.invalidate(key_id)
    return AccessChanged(len(changed), len(links))
