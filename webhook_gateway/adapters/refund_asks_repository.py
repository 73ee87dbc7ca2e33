"""The gateway's record of refunds it still has to ask a provider for (migration 0960), as the shared lease
worker's queue table (paygate_runtime/lease_worker.py).

Claims are leases: `next_attempt_at` is pushed forward by the claimer inside one
`UPDATE ... FROM (SELECT ... FOR UPDATE SKIP LOCKED)`, so two gateway replicas never ask for the same refund at
once, and a crashed replica's claim becomes due again by itself.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Final

import asyncpg

# The providers paygate asks for refunds through their API (web3 refunds are sent on-chain, never kept here):
# the bounded label set of the waiting-refund gauges, each exported from the start (0 when none waits).
REFUND_ASK_PROVIDERS: Final[frozenset[str]] = frozenset({"stripe", "onecom"})

# Refunds kept to be asked again, by provider, and how long the oldest has waited since the first ask failed:
# read when /metrics is scraped (webhook_gateway/entrypoints/observability.py), never per request. The table
# holds only refunds still waiting (an answered ask is deleted), so it stays a handful of rows.
WAITING_SQL = """
SELECT provider, count(*)::float8 AS waiting,
       coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest
FROM provider_refund_asks GROUP BY provider
"""


async def waiting_by_provider(connection: Any) -> dict[str, tuple[float, float]]:
    """provider -> (refunds waiting, age in seconds of the oldest), for the providers with any waiting."""
    return {row["provider"]: (row["waiting"], row["oldest"]) for row in await connection.fetch(WAITING_SQL)}


@dataclass(frozen=True, slots=True)
class RefundAsk:
    """What asking a provider for one paygate refund needs: the refund, whose it is, and the payment it returns."""

    refund_id: str
    merchant_id: str
    mode: str
    session_id: str
    provider: str
    paid_reference: str
    amount_minor: int
    currency: str
    exponent: int
    attempts: int = 0
    id: int = 0  # the queue row's key, once kept


class RefundAsksRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def remember(self, ask: RefundAsk, *, first_in_s: float) -> None:
        """Keep `ask` to be asked again in `first_in_s`; a refund already kept stays as it is."""
        await self.pool.execute(
            """INSERT INTO provider_refund_asks (refund_id, merchant_id, mode, session_id, provider, paid_reference,
                                                 amount_minor, currency, exponent, next_attempt_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now() + make_interval(secs => $10))
               ON CONFLICT (refund_id) DO NOTHING""",
            uuid.UUID(ask.refund_id),
            uuid.UUID(ask.merchant_id),
            ask.mode,
            uuid.UUID(ask.session_id),
            ask.provider,
            ask.paid_reference,
            ask.amount_minor,
            ask.currency,
            ask.exponent,
            first_in_s,
        )

    async def claim_due(self, limit: int, lease_s: float) -> list[RefundAsk]:
        rows = await self.pool.fetch(
            """UPDATE provider_refund_asks AS a
                  SET next_attempt_at = now() + make_interval(secs => $2), attempts = a.attempts + 1
                 FROM (SELECT refund_id FROM provider_refund_asks
                        WHERE next_attempt_at <= now()
                        ORDER BY next_attempt_at
                        LIMIT $1
                        FOR UPDATE SKIP LOCKED) AS due
                WHERE a.refund_id = due.refund_id
            RETURNING a.id, a.refund_id, a.merchant_id, a.mode, a.session_id, a.provider, a.paid_reference,
                      a.amount_minor, a.currency, a.exponent, a.attempts""",
            limit,
            lease_s,
        )
        return [
            RefundAsk(
                refund_id=str(row["refund_id"]),
                merchant_id=str(row["merchant_id"]),
                mode=row["mode"],
                session_id=str(row["session_id"]),
                provider=row["provider"],
                paid_reference=row["paid_reference"],
                amount_minor=int(row["amount_minor"]),
                currency=row["currency"],
                exponent=int(row["exponent"]),
                attempts=int(row["attempts"]),
                id=int(row["id"]),
            )
            for row in rows
        ]

    async def done(self, ask_id: int) -> None:
        await self.pool.execute("DELETE FROM provider_refund_asks WHERE id = $1", ask_id)

    async def later(self, ask_id: int, *, delay_s: float, error: str) -> None:
        await self.pool.execute(
            """UPDATE provider_refund_asks
                  SET next_attempt_at = now() + make_interval(secs => $2), last_error = $3
                WHERE id = $1""",
            ask_id,
            delay_s,
            error[:300],
        )

    async def release(self, ids: list[int]) -> None:
        """End these claims' leases (a stopping worker hands them back); their attempts stay counted."""
        await self.pool.execute(
            "UPDATE provider_refund_asks SET next_attempt_at = now() WHERE id = ANY($1::bigint[])", ids
        )

    async def next_due_in(self) -> float | None:
        """Seconds until the next ask falls due (0 or less: due now), None when none is kept."""
        seconds = await self.pool.fetchval(
            "SELECT EXTRACT(EPOCH FROM min(next_attempt_at) - now())::float8 FROM provider_refund_asks"
        )
        return None if seconds is None else float(seconds)
