"""Forwards the keys service's merchant events (`customer_key.revoked`) to the session service, which owns
merchant events and delivers them (contract §7).

A trigger writes an outbox row in the transaction that revokes a key (migration 0050). This worker leases due
rows (`FOR UPDATE SKIP LOCKED`, then `locked_until`: replicas share the rows), renders the key as the merchant
API returns it (`api_key_message`, then `paygate_runtime.api_objects.api_key_json`, the gateway's renderer
too), and calls `MerchantEventsService.RecordMerchantEvent` with `source_key = "keys:<row id>"`. That call is
idempotent on the key, so a crash between the call and marking the row forwarded records the event once. A
failure is retried with exponential backoff (full jitter). The worker wakes on LISTEN `keys_merchant_events`
and also polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable
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
from paygate_runtime.tasks import cancel_and_wait, wait_event

log = logging.getLogger(__name__)

CHANNEL = "keys_merchant_events"
_BATCH = 32

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


class MerchantEventForwarder:
    def __init__(
        self,
        pool: asyncpg.Pool,
        listen_dsn: str,
        channel: grpc.aio.Channel,
        *,
        poll_s: float = 1.0,
        lease_s: float = 30.0,
        base_s: float = 0.5,
        cap_s: float = 300.0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.pool = pool
        self.listen_dsn = listen_dsn
        self.stub = merchant_events_pb2_grpc.MerchantEventsServiceStub(channel)
        self.poll_s = poll_s
        self.lease_s = lease_s
        self.base_s = base_s
        self.cap_s = cap_s
        self.rng = rng
        self._wake = asyncio.Event()

    async def run(self) -> None:
        listener = asyncio.create_task(self._listen(), name="keys-merchant-events-listener")
        try:
            while True:
                self._wake.clear()
                try:
                    busy = await self.forward_due()
                except (asyncpg.PostgresError, OSError) as exc:
                    log.warning("merchant event forwarding failed; retrying", extra={"error": str(exc)})
                    busy = False
                if not busy:
                    await wait_event(self._wake, self.poll_s)
        finally:
            await cancel_and_wait([listener], timeout=2)

    async def forward_due(self) -> bool:
        """Forward one batch; True when the batch was full (more may be due)."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(_CLAIM_SQL, _BATCH, self.lease_s)
        if rows:
            await asyncio.gather(*(self._forward(row) for row in rows))
        return len(rows) == _BATCH

    async def _forward(self, row: Any) -> None:
        try:
            async with self.pool.acquire() as conn:
                key = await api_key_repository.get_by_id(conn, row["key_id"], row["merchant_id"])
            if key is None:  # keys are never deleted; nothing to tell
                await self._finish(row["id"], None)
                return
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
            await self._finish(row["id"], None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = (
                f"{exc.code().name}: {exc.details()}"
                if isinstance(exc, grpc.aio.AioRpcError)
                else f"{type(exc).__name__}: {exc}"
            )[:300]
            delay = max(0.05, self.rng() * min(self.cap_s, self.base_s * 2 ** min(row["attempts"], 30)))
            log.warning(
                "merchant event not forwarded; will retry",
                extra={"outbox_id": row["id"], "attempts": row["attempts"], "error": reason},
            )
            with contextlib.suppress(Exception):
                await self._finish(row["id"], (delay, reason))

    async def _finish(self, outbox_id: int, retry: tuple[float, str] | None) -> None:
        async with self.pool.acquire() as conn:
            if retry is None:
                await conn.execute(
                    """UPDATE merchant_event_outbox SET forwarded_at = now(), locked_until = NULL, last_error = NULL
                        WHERE id = $1""",
                    outbox_id,
                )
            else:
                await conn.execute(
                    """UPDATE merchant_event_outbox
                          SET locked_until = NULL, next_attempt_at = now() + make_interval(secs => $2),
                              last_error = $3
                        WHERE id = $1 AND forwarded_at IS NULL""",
                    outbox_id,
                    retry[0],
                    retry[1],
                )

    async def _listen(self) -> None:
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.listen_dsn)
                await conn.add_listener(CHANNEL, lambda *_: self._wake.set())
                self._wake.set()
                while not conn.is_closed():
                    await asyncio.sleep(1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("merchant event listener lost its connection", extra={"error": str(exc)})
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), timeout=1)
            await asyncio.sleep(1.0)
