"""The gateway's record of the payments it created at providers, and the reconciliation worker's schedule.

Claims are leases, as in the inbox: `next_check_at` is pushed forward by the claimer inside one
`UPDATE ... FROM (SELECT ... FOR UPDATE SKIP LOCKED)`, so two gateway replicas never check the same payment
at once, and a crashed replica's claim becomes due again by itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import asyncpg

from webhook_gateway.adapters.inbox_repository import _COLUMNS as _INBOX_COLUMNS
from webhook_gateway.adapters.inbox_repository import InboxEvent
from webhook_gateway.adapters.inbox_repository import _event as _inbox_event

OPEN: Final = "open"
DONE: Final = "done"

_COLUMNS: Final = """provider, payment_id, session_id, merchant_id, mode, session_expires_at, created_at, state,
    checks, next_check_at, last_checked_at, provider_status, outcome, last_error, canceled_at"""


@dataclass(frozen=True, slots=True)
class WatchedPayment:
    provider: str
    payment_id: str
    session_id: str
    merchant_id: str
    mode: str
    session_expires_at: datetime
    created_at: datetime
    state: str
    checks: int
    next_check_at: datetime | None
    last_checked_at: datetime | None
    provider_status: str | None
    outcome: str | None
    last_error: str | None
    canceled_at: datetime | None


@dataclass(frozen=True, slots=True)
class CheckoutError:
    """Why the provider's page of a session could not be made, at the last failed attempt (migration 0970)."""

    code: str
    message: str


_MAX_ERROR_MESSAGE: Final = 1000


def _row(row: asyncpg.Record) -> WatchedPayment:
    return WatchedPayment(
        provider=row["provider"],
        payment_id=row["payment_id"],
        session_id=str(row["session_id"]),
        merchant_id=str(row["merchant_id"]),
        mode=row["mode"],
        session_expires_at=row["session_expires_at"],
        created_at=row["created_at"],
        state=row["state"],
        checks=row["checks"],
        next_check_at=row["next_check_at"],
        last_checked_at=row["last_checked_at"],
        provider_status=row["provider_status"],
        outcome=row["outcome"],
        last_error=row["last_error"],
        canceled_at=row["canceled_at"],
    )


class ProviderPaymentsRepository:
    def __init__(self, pool: asyncpg.Pool | asyncpg.Connection) -> None:
        self.pool = pool

    async def record(
        self,
        *,
        provider: str,
        payment_id: str,
        session_id: str,
        merchant_id: str,
        mode: str,
        session_expires_at: datetime,
        first_check_in_s: float,
    ) -> None:
        """Remember a payment we created; a retried create of the same payment changes nothing. The first
        check is due `first_check_in_s` from now, or at the session's expiry if that comes first."""
        await self.pool.execute(
            """INSERT INTO provider_payments (provider, payment_id, session_id, merchant_id, mode,
                                              session_expires_at, next_check_at)
               VALUES ($1, $2, $3, $4, $5, $6, least(now() + make_interval(secs => $7), $6))
               ON CONFLICT (provider, payment_id) DO NOTHING""",
            provider,
            payment_id,
            uuid.UUID(session_id),
            uuid.UUID(merchant_id),
            mode,
            session_expires_at,
            first_check_in_s,
        )

    async def for_session(self, session_id: str) -> list[WatchedPayment]:
        rows = await self.pool.fetch(
            f"SELECT {_COLUMNS} FROM provider_payments WHERE session_id = $1 ORDER BY created_at",
            uuid.UUID(session_id),
        )
        return [_row(row) for row in rows]

    async def get(self, provider: str, payment_id: str) -> WatchedPayment | None:
        row = await self.pool.fetchrow(
            f"SELECT {_COLUMNS} FROM provider_payments WHERE provider = $1 AND payment_id = $2",
            provider,
            payment_id,
        )
        return _row(row) if row is not None else None

    async def claim_due(self, limit: int, lease_s: float, providers: list[str]) -> list[WatchedPayment]:
        rows = await self.pool.fetch(
            f"""WITH due AS (
                    SELECT provider, payment_id FROM provider_payments
                     WHERE state = 'open' AND next_check_at <= now() AND provider = ANY($3::text[])
                     ORDER BY next_check_at
                     LIMIT $1
                     FOR UPDATE SKIP LOCKED)
                UPDATE provider_payments AS p
                   SET next_check_at = now() + make_interval(secs => $2), checks = p.checks + 1,
                       updated_at = now()
                  FROM due
                 WHERE p.provider = due.provider AND p.payment_id = due.payment_id
             RETURNING {", ".join("p." + c.strip() for c in _COLUMNS.split(","))}""",
            limit,
            lease_s,
            providers,
        )
        return [_row(row) for row in rows]

    async def check_again(
        self,
        payment: WatchedPayment,
        *,
        delay_s: float,
        provider_status: str | None = None,
        error: str | None = None,
        checked: bool = True,
    ) -> None:
        await self.pool.execute(
            """UPDATE provider_payments
                  SET next_check_at = now() + make_interval(secs => $3),
                      provider_status = coalesce($4, provider_status), last_error = $5,
                      last_checked_at = CASE WHEN $6 THEN now() ELSE last_checked_at END, updated_at = now()
                WHERE provider = $1 AND payment_id = $2 AND state = 'open'""",
            payment.provider,
            payment.payment_id,
            delay_s,
            provider_status,
            error,
            checked,
        )

    async def done(
        self, payment: WatchedPayment, *, outcome: str, provider_status: str | None = None
    ) -> None:
        await self.pool.execute(
            """UPDATE provider_payments
                  SET state = 'done', next_check_at = NULL, outcome = $3,
                      provider_status = coalesce($4, provider_status), last_error = NULL,
                      last_checked_at = now(), updated_at = now()
                WHERE provider = $1 AND payment_id = $2""",
            payment.provider,
            payment.payment_id,
            outcome,
            provider_status,
        )

    async def money_quarantined(self, payment: WatchedPayment, reference: str) -> bool:
        """Whether a webhook already reported this payment's money (`reference` is the provider reference its
        webhooks give it) and the session service quarantined it: short, in another currency, or late. Money
        received is final at the provider, so reconciliation has nothing left to learn about it; read through
        inbox_events_quarantined_money (migration 0940)."""
        return bool(
            await self.pool.fetchval(
                """SELECT EXISTS (
                       SELECT 1 FROM inbox_events
                        WHERE provider = $1 AND provider_reference = $2 AND session_id = $3
                          AND status = 'quarantined'
                          AND outcome IN ('amount_mismatch', 'payment_on_closed_session'))""",
                payment.provider,
                reference,
                uuid.UUID(payment.session_id),
            )
        )

    async def mark_canceled(self, provider: str, payment_id: str) -> None:
        await self.pool.execute(
            """UPDATE provider_payments SET canceled_at = coalesce(canceled_at, now()), updated_at = now()
                WHERE provider = $1 AND payment_id = $2""",
            provider,
            payment_id,
        )

    async def record_checkout_error(
        self, *, session_id: str, merchant_id: str, provider: str, code: str, message: str
    ) -> None:
        """Keep why the session's provider page could not be made; a later failure replaces it."""
        await self.pool.execute(
            """INSERT INTO provider_checkout_errors (session_id, merchant_id, provider, code, message)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (session_id) DO UPDATE
                  SET provider = excluded.provider, code = excluded.code, message = excluded.message,
                      failed_at = now()""",
            uuid.UUID(session_id),
            uuid.UUID(merchant_id),
            provider,
            code,
            message[:_MAX_ERROR_MESSAGE],
        )

    async def clear_checkout_error(self, session_id: str) -> None:
        """The session's provider page was made: no reason to show any more."""
        await self.pool.execute(
            "DELETE FROM provider_checkout_errors WHERE session_id = $1", uuid.UUID(session_id)
        )

    async def remove_checkout_errors_older_than(self, age_s: float) -> int:
        """Forget the reasons kept longer than `age_s`: their sessions have expired by then (a session lives
        at most that long), so they no longer explain anything. Returns how many were removed."""
        status = await self.pool.execute(
            "DELETE FROM provider_checkout_errors WHERE failed_at < now() - make_interval(secs => $1)",
            float(age_s),
        )
        return int(status.rsplit(" ", 1)[-1])

    async def checkout_errors(self, session_ids: Collection[str]) -> dict[str, CheckoutError]:
        """The kept reasons of the given sessions that have one, by session id."""
        if not session_ids:
            return {}
        rows = await self.pool.fetch(
            "SELECT session_id, code, message FROM provider_checkout_errors WHERE session_id = ANY($1::uuid[])",
            [uuid.UUID(s) for s in session_ids],
        )
        return {str(row["session_id"]): CheckoutError(row["code"], row["message"]) for row in rows}

    async def store_reconcile_event(
        self,
        *,
        provider: str,
        event_id: str,
        event_type: str,
        raw_body: bytes,
        session_id: str,
        provider_reference: str | None,
        mode: str | None,
        lease_s: float,
    ) -> InboxEvent | None:
        """Put an event built from an API read into the webhook inbox (source `reconcile`), leased to the
        caller, which applies it at once; if the caller dies the relay applies it when the lease ends.
        None when this event (same payment, same state) is already in the inbox."""
        row = await self.pool.fetchrow(
            f"""INSERT INTO inbox_events (provider, event_id, event_type, raw_body, status, session_id,
                                          provider_reference, attempts, next_attempt_at, mode, source)
                VALUES ($1, $2, $3, $4, 'received', $5, $6, 1, now() + make_interval(secs => $7), $8,
                        'reconcile')
                ON CONFLICT (provider, event_id) DO NOTHING
                RETURNING {_INBOX_COLUMNS}""",
            provider,
            event_id,
            event_type,
            raw_body,
            uuid.UUID(session_id),
            provider_reference,
            lease_s,
            mode,
        )
        return _inbox_event(row) if row is not None else None
