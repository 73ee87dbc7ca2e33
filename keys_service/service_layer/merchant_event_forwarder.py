"""The keys service's merchant events (`customer_key.revoked`), forwarded to the session service, which owns
merchant events (contract §7).

A trigger writes an outbox row in the transaction that revokes a key, whichever path revokes it (migration
0050). The shared forwarder (`paygate_runtime.merchant_event_forwarder`) empties the outbox; this module says
what a row is as an event: the key as the merchant API returns it (`api_key_message`, then
`paygate_runtime.api_objects.api_key_json`, the gateway's renderer too), under `source_key = "keys:<row id>"`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import grpc

from keys_service.adapters import api_key_repository
from keys_service.adapters.key_messages import api_key_message
from paygate_runtime.api_objects import api_key_json
from paygate_runtime.grpc_client import DeadlineChannel
from paygate_runtime.merchant_event_forwarder import (
    DEFAULT_RETENTION_DAYS,
    ForwardedEvent,
    ForwarderSettings,
    MerchantEventForwarder,
)

CHANNEL = "keys_merchant_events"


async def event_of(conn: asyncpg.Connection, row: Any) -> ForwardedEvent | None:
    key = await api_key_repository.get_by_id(conn, row["key_id"], row["merchant_id"])
    if key is None:  # keys are never deleted; without one there is nothing to tell
        return None
    moment = key.revoked_at or datetime.now(UTC)
    return ForwardedEvent(
        object_id=str(row["key_id"]),
        object=api_key_json(api_key_message(key, now=moment)),
        source_key=f"keys:{row['id']}",
    )


def merchant_event_forwarder(
    pool: asyncpg.Pool,
    listen_dsn: str,
    channel: grpc.aio.Channel | DeadlineChannel,
    *,
    retention_days: int = DEFAULT_RETENTION_DAYS,
) -> MerchantEventForwarder:
    settings = ForwarderSettings("keys-merchant-events", CHANNEL, retention_days=retention_days)
    return MerchantEventForwarder(pool, listen_dsn, channel, event_of, settings)
