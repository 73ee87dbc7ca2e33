"""Forwards a service's merchant events to the session service, which owns merchant events and delivers them
(contract §7). The keys service (`customer_key.revoked`) and billing (`credit_note.issued`) each keep their own
`merchant_event_outbox`, written by a trigger in the very transaction of the change, since a service never
writes another's tables; this is the one worker that empties such an outbox.

The shared lease worker (`paygate_runtime.lease_worker`: LISTEN on the outbox's channel with a poll, leases
that replicas share, a clean stop) claims due rows. The service says what each row is as an event
(`ForwardedEvent`: the object as the merchant API returns it, and a stable `source_key`), and the event goes
to `MerchantEventsService.RecordMerchantEvent`, which is idempotent on that key: a crash between the call and
marking the row forwarded records the event once. A failure is retried with exponential backoff (full
jitter). Forwarded rows are deleted once they are `retention_days` old: the session service keeps the event.

The outbox's columns this module relies on: id (bigserial), merchant_id, mode, event_type, attempts,
next_attempt_at, locked_until, last_error, forwarded_at; the due index on next_attempt_at where not forwarded.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc

from paygate.session.v1 import merchant_events_pb2 as pb
from paygate.session.v1 import merchant_events_pb2_grpc
from paygate_runtime.grpc_client import DeadlineChannel
from paygate_runtime.lease_worker import Backoff, LeaseSettings, LeaseWorker, Periodic
from paygate_runtime.proto_convert import mode_enum

log = logging.getLogger(__name__)

_SLOTS = 32
DEFAULT_RETENTION_DAYS = 30
_PRUNE_BATCH = 1000

_CLAIM_SQL = """
WITH due AS (
    SELECT id FROM merchant_event_outbox
     WHERE forwarded_at IS NULL AND next_attempt_at <= now() AND (locked_until IS NULL OR locked_until < now())
     ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED
)
UPDATE merchant_event_outbox o SET locked_until = now() + make_interval(secs => $2), attempts = o.attempts + 1
  FROM due WHERE o.id = due.id
RETURNING o.*
"""
_NEXT_DUE_SQL = """
SELECT EXTRACT(EPOCH FROM MIN(GREATEST(next_attempt_at, COALESCE(locked_until, next_attempt_at))) - now())::float8
  FROM merchant_event_outbox WHERE forwarded_at IS NULL
"""
_PRUNE_SQL = """
DELETE FROM merchant_event_outbox WHERE id IN (
    SELECT id FROM merchant_event_outbox
     WHERE forwarded_at IS NOT NULL AND forwarded_at < now() - make_interval(days => $1)
     ORDER BY id LIMIT $2)
"""


@dataclass(frozen=True, slots=True)
class ForwardedEvent:
    """One outbox row as a merchant event: the object's id and its API rendering, and the key that makes
    recording it idempotent."""

    object_id: str
    object: dict[str, Any]
    source_key: str


# The service's reading of one claimed row, on a connection of its pool; None: nothing left to tell (the
# object is gone), and the row is marked forwarded.
EventOf = Callable[[asyncpg.Connection, Any], Awaitable[ForwardedEvent | None]]


@dataclass(frozen=True, slots=True)
class ForwarderSettings:
    name: str  # the lease worker's name in logs and metrics, e.g. "keys-merchant-events"
    channel: str  # the outbox trigger's NOTIFY channel
    poll_s: float = 1.0
    lease_s: float = 30.0
    base_s: float = 0.5
    cap_s: float = 300.0
    retention_days: int = DEFAULT_RETENTION_DAYS
    prune_every_s: float = 3600.0


def _reason(exc: Exception) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"[:300]
    return f"{type(exc).__name__}: {exc}"[:300]


class MerchantEventForwarder:
    """The forwarding queue (`LeaseQueue`) and its worker; `run` is the background task."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        listen_dsn: str,
        channel: grpc.aio.Channel | DeadlineChannel,
        event_of: EventOf,
        settings: ForwarderSettings,
        *,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.pool = pool
        self.stub = merchant_events_pb2_grpc.MerchantEventsServiceStub(channel)
        self.event_of = event_of
        self.settings = settings
        self.backoff = Backoff(base_s=settings.base_s, cap_s=settings.cap_s)
        self.rng = rng
        self.worker: LeaseWorker[Any] = LeaseWorker(
            self,
            LeaseSettings(
                name=settings.name, channel=settings.channel, concurrency=_SLOTS, poll_s=settings.poll_s
            ),
            listen_dsn=listen_dsn,
            periodic=[Periodic("retention", settings.prune_every_s, self.prune)],
        )

    async def run(self) -> None:
        await self.worker.run()

    # ------------------------------------------------------------------------------------ LeaseQueue
    async def claim(self, limit: int) -> Sequence[Any]:
        async with self.pool.acquire() as conn:
            rows: list[Any] = await conn.fetch(_CLAIM_SQL, limit, self.settings.lease_s)
        return rows

    def row_id(self, row: Any) -> int:
        return int(row["id"])

    async def process(self, row: Any) -> None:
        async with self.pool.acquire() as conn:
            event = await self.event_of(conn, row)
        if event is not None:
            await self.stub.RecordMerchantEvent(
                pb.RecordMerchantEventRequest(
                    merchant_id=str(row["merchant_id"]),
                    mode=mode_enum(row["mode"]),
                    type=row["event_type"],
                    object_id=event.object_id,
                    object_json=json.dumps(event.object),
                    source_key=event.source_key,
                )
            )
        async with self.pool.acquire() as conn:
            await conn.execute(
                """UPDATE merchant_event_outbox SET forwarded_at = now(), locked_until = NULL, last_error = NULL
                    WHERE id = $1""",
                row["id"],
            )

    async def failed(self, row: Any, error: Exception) -> None:
        reason = _reason(error)
        delay = self.backoff.delay(int(row["attempts"]), self.rng)
        log.warning(
            "merchant event not forwarded; will retry",
            extra={"outbox_id": row["id"], "attempts": row["attempts"], "error": reason},
        )
        async with self.pool.acquire() as conn:
            await conn.execute(
                """UPDATE merchant_event_outbox
                      SET locked_until = NULL, next_attempt_at = now() + make_interval(secs => $2),
                          last_error = $3
                    WHERE id = $1 AND forwarded_at IS NULL""",
                row["id"],
                delay,
                reason,
            )

    async def release(self, row_ids: Sequence[int]) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                """UPDATE merchant_event_outbox SET locked_until = NULL
                    WHERE id = ANY($1::bigint[]) AND forwarded_at IS NULL""",
                list(row_ids),
            )

    async def next_due_in(self) -> float | None:
        async with self.pool.acquire() as conn:
            value = await conn.fetchval(_NEXT_DUE_SQL)
        return None if value is None else max(0.0, float(value))

    # ------------------------------------------------------------------------------------ retention
    async def prune(self) -> int:
        """Delete forwarded rows older than the retention, in batches; returns how many went."""
        removed = 0
        while True:
            async with self.pool.acquire() as conn:
                result = await conn.execute(_PRUNE_SQL, self.settings.retention_days, _PRUNE_BATCH)
            count = int(result.split()[-1])
            removed += count
            if count < _PRUNE_BATCH:
                if removed:
                    log.info(
                        "pruned forwarded merchant events",
                        extra={"count": removed, "forwarder": self.settings.name},
                    )
                return removed
