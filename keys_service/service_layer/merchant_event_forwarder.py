"""Forwards the keys service's merchant events (`customer_key.revoked`) to the session service, which owns
merchant events and delivers them (contract §7).

A trigger writes an outbox row in the transaction that revokes a key (migration 0050). The shared lease worker
(`paygate_runtime.lease_worker`: LISTEN `keys_merchant_events` with a poll, leases that replicas share, a clean
stop) claims due rows; each is rendered as the merchant API returns the key (`api_key_message`, then
`paygate_runtime.api_objects.api_key_json`, the gateway's renderer too) and handed to
`MerchantEventsService.RecordMerchantEvent` with `source_key = "keys:<row id>"`. That call is idempotent on
the key, so a crash between the call and marking the row forwarded records the event once. A failure is
retried with exponential backoff (full jitter). Forwarded rows are deleted once they are `retention_days` old:
the session service keeps the event itself.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import grpc

from keys_service.adapters import api_key_repository
from keys_service.adapters.key_messages import api_key_message
from paygate.common.v1 import common_pb2
from paygate.session.v1 import merchant_events_pb2 as pb
from paygate.session.v1 import merchant_events_pb2_grpc
from paygate_runtime.api_objects import api_key_json
from paygate_runtime.grpc_client import DeadlineChannel
from paygate_runtime.lease_worker import Backoff, LeaseSettings, LeaseWorker, Periodic

log = logging.getLogger(__name__)

CHANNEL = "keys_merchant_events"
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
        *,
        poll_s: float = 1.0,
        lease_s: float = 30.0,
        base_s: float = 0.5,
        cap_s: float = 300.0,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        prune_every_s: float = 3600.0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.pool = pool
        self.stub = merchant_events_pb2_grpc.MerchantEventsServiceStub(channel)
        self.lease_s = lease_s
        self.backoff = Backoff(base_s=base_s, cap_s=cap_s)
        self.retention_days = retention_days
        self.rng = rng
        self.worker: LeaseWorker[Any] = LeaseWorker(
            self,
            LeaseSettings(name="keys-merchant-events", channel=CHANNEL, concurrency=_SLOTS, poll_s=poll_s),
            listen_dsn=listen_dsn,
            periodic=[Periodic("retention", prune_every_s, self.prune)],
        )

    async def run(self) -> None:
        await self.worker.run()

    # ------------------------------------------------------------------------------------ LeaseQueue
    async def claim(self, limit: int) -> Sequence[Any]:
        async with self.pool.acquire() as conn:
            return await conn.fetch(_CLAIM_SQL, limit, self.lease_s)

    def row_id(self, row: Any) -> int:
        return int(row["id"])

    async def process(self, row: Any) -> None:
        async with self.pool.acquire() as conn:
            key = await api_key_repository.get_by_id(conn, row["key_id"], row["merchant_id"])
        if key is not None:  # keys are never deleted; without one there is nothing to tell
            moment = key.revoked_at or datetime.now(UTC)
            await self.stub.RecordMerchantEvent(
                pb.RecordMerchantEventRequest(
                    merchant_id=str(row["merchant_id"]),
                    mode=common_pb2.MODE_LIVE if row["mode"] == "live" else common_pb2.MODE_TEST,
                    type=row["event_type"],
                    object_id=str(row["key_id"]),
                    object_json=json.dumps(api_key_json(api_key_message(key, now=moment))),
                    source_key=f"keys:{row['id']}",
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
                result = await conn.execute(_PRUNE_SQL, self.retention_days, _PRUNE_BATCH)
            count = int(result.split()[-1])
            removed += count
            if count < _PRUNE_BATCH:
                if removed:
                    log.info("pruned forwarded merchant events", extra={"count": removed})
                return removed
