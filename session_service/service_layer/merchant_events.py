"""Use cases on webhook endpoints, merchant events and their delivery log (contract §7)."""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from paygate_runtime.crypto.secret_box import SecretBox
from paygate_runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from session_service.adapters import merchant_events_repository as repo
from session_service.domain.merchant_events import (
    DEFAULT_SECRET_OVERLAP_S,
    ENDPOINT_STATUSES,
    EVENT_TYPES,
    MAX_SECRET_OVERLAP_S,
    check_description,
    check_endpoint_url,
    check_events,
)

DEFAULT_PAGE = 20
MAX_PAGE = 100


@dataclass(frozen=True, slots=True)
class Scope:
    merchant_id: uuid.UUID
    mode: str


def scope(merchant_id: str, mode: str) -> Scope:
    try:
        return Scope(uuid.UUID(merchant_id), mode)
    except ValueError:
        raise InvalidArgument(
            "invalid_merchant_id", "merchant_id must be a UUID", field="merchant_id"
        ) from None


def _endpoint_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound("not_found", "no such webhook endpoint") from None


def page(limit: int) -> int:
    if limit == 0:
        return DEFAULT_PAGE
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidArgument("invalid_limit", f"limit must be 1..{MAX_PAGE}", field="limit")
    return limit


# Associated data of a sealed endpoint secret (with the endpoint id): changing it makes every blob unreadable.
ENDPOINT_SECRET_CONTEXT = b"paygate.session.webhook_endpoint_secret.v1"


def new_secret() -> str:
    """whsec_ + base64 of 32 random bytes: the form the Standard Webhooks libraries take."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def load_secret_box(spec: str) -> SecretBox:
    """PAYGATE_SESSION_ENCRYPTION_KEYS text -> the box that seals endpoint secrets (ValueError if malformed)."""
    return SecretBox.from_config(spec, context=ENDPOINT_SECRET_CONTEXT)


def seal_secret(box: SecretBox, endpoint_id: uuid.UUID, secret: str) -> bytes:
    return box.encrypt(secret, str(endpoint_id))


def open_secret(box: SecretBox, endpoint_id: uuid.UUID, sealed: bytes) -> str:
    """Only the delivery worker calls this, right before signing; SecretBoxError when it does not open."""
    return box.decrypt(sealed, str(endpoint_id))


async def seal_plain_secrets(pool: asyncpg.Pool, box: SecretBox, batch: int = 500) -> int:
    """Seal every endpoint secret still stored in plain text (rows from before migration 0100, or written by
    a previous release during a rolling update); run at start. Replica-safe (SKIP LOCKED). Returns the count."""
    sealed = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await repo.plain_secret_rows(conn, batch)
            for row in rows:
                current = seal_secret(box, row["id"], row["secret"]) if row["secret"] else None
                previous = (
                    seal_secret(box, row["id"], row["previous_secret"]) if row["previous_secret"] else None
                )
                await repo.store_sealed_secrets(conn, row["id"], current, previous)
        sealed += len(rows)
        if len(rows) < batch:
            return sealed


async def _load(conn: asyncpg.Connection, who: Scope, endpoint_id: str, *, lock: bool = False) -> Any:
    row = await repo.get_endpoint(conn, who.merchant_id, who.mode, _endpoint_id(endpoint_id), lock=lock)
    if row is None:
        raise NotFound("not_found", "no such webhook endpoint")
    return row


async def create_endpoint(
    pool: asyncpg.Pool,
    box: SecretBox,
    who: Scope,
    url: str,
    events: list[str],
    description: str,
    *,
    allow_loopback: bool,
) -> tuple[Any, str]:
    checked = check_endpoint_url(url, who.mode, allow_loopback=allow_loopback)
    clean_events = check_events(events)
    secret = new_secret()
    endpoint_id = uuid.uuid4()
    async with pool.acquire() as conn:
        row = await repo.insert_endpoint(
            conn,
            endpoint_id,
            who.merchant_id,
            who.mode,
            checked.url,
            clean_events,
            check_description(description),
            seal_secret(box, endpoint_id, secret),
        )
    return row, secret


async def get_endpoint(pool: asyncpg.Pool, who: Scope, endpoint_id: str) -> Any:
    async with pool.acquire() as conn:
        return await _load(conn, who, endpoint_id)


async def list_endpoints(
    pool: asyncpg.Pool, who: Scope, limit: int, starting_after: str
) -> tuple[list[Any], bool]:
    size = page(limit)
    after = None
    if starting_after:
        try:
            after = uuid.UUID(starting_after)
        except ValueError:
            raise InvalidArgument("invalid_starting_after", "starting_after must be an endpoint id") from None
    async with pool.acquire() as conn:
        rows = await repo.list_endpoints(conn, who.merchant_id, who.mode, size + 1, after)
    return rows[:size], len(rows) > size


async def update_endpoint(
    pool: asyncpg.Pool,
    who: Scope,
    endpoint_id: str,
    *,
    url: str | None,
    events: list[str] | None,
    description: str | None,
    status: str | None,
    allow_loopback: bool,
) -> Any:
    if url is not None:
        url = check_endpoint_url(url, who.mode, allow_loopback=allow_loopback).url
    if events is not None:
        events = check_events(events)
    if description is not None:
        description = check_description(description)
    if status is not None and status not in ENDPOINT_STATUSES:
        raise InvalidArgument("invalid_status", "status must be enabled or disabled", field="status")
    async with pool.acquire() as conn, conn.transaction():
        row = await _load(conn, who, endpoint_id, lock=True)
        return await repo.update_endpoint(
            conn, row["id"], url=url, events=events, description=description, status=status
        )


async def delete_endpoint(pool: asyncpg.Pool, who: Scope, endpoint_id: str) -> Any:
    async with pool.acquire() as conn, conn.transaction():
        row = await _load(conn, who, endpoint_id, lock=True)
        return await repo.delete_endpoint(conn, row["id"])


async def roll_secret(
    pool: asyncpg.Pool, box: SecretBox, who: Scope, endpoint_id: str, overlap_s: int
) -> tuple[Any, str]:
    if overlap_s == 0:
        overlap_s = DEFAULT_SECRET_OVERLAP_S
    if not 0 < overlap_s <= MAX_SECRET_OVERLAP_S:
        raise InvalidArgument(
            "invalid_expires_in",
            f"the old secret may sign for 1..{MAX_SECRET_OVERLAP_S} s",
            field="expires_in",
        )
    secret = new_secret()
    async with pool.acquire() as conn, conn.transaction():
        row = await _load(conn, who, endpoint_id, lock=True)
        sealed = seal_secret(box, row["id"], secret)
        return await repo.roll_secret(conn, row["id"], sealed, float(overlap_s)), secret


async def list_events(
    pool: asyncpg.Pool, who: Scope, event_type: str, limit: int, starting_after: str
) -> tuple[list[Any], bool]:
    if event_type and event_type not in EVENT_TYPES:
        raise InvalidArgument("invalid_type", "type must be a merchant event type", field="type")
    size = page(limit)
    async with pool.acquire() as conn:
        if starting_after and not await repo.event_exists(conn, who.merchant_id, who.mode, starting_after):
            raise InvalidArgument("invalid_starting_after", "starting_after must be an event id of this mode")
        rows = await repo.list_events(
            conn, who.merchant_id, who.mode, event_type or None, size + 1, starting_after or None
        )
    return rows[:size], len(rows) > size


async def list_attempts(
    pool: asyncpg.Pool, who: Scope, endpoint_id: str, event_id: str, limit: int, starting_after: str
) -> tuple[list[Any], bool]:
    size = page(limit)
    after = None
    if starting_after:
        if not starting_after.isdigit() or len(starting_after) > 18:
            raise InvalidArgument("invalid_starting_after", "starting_after must be a delivery attempt id")
        after = int(starting_after)
    async with pool.acquire() as conn:
        endpoint = None
        if endpoint_id:
            endpoint = (await _load(conn, who, endpoint_id))["id"]
        if event_id and not await repo.event_exists(conn, who.merchant_id, who.mode, event_id):
            raise NotFound("not_found", "no such event")
        rows = await repo.list_attempts(
            conn, who.merchant_id, who.mode, endpoint, event_id or None, size + 1, after
        )
    return rows[:size], len(rows) > size


async def redeliver(pool: asyncpg.Pool, who: Scope, event_id: str, endpoint_id: str) -> Any:
    if not endpoint_id:
        raise InvalidArgument("missing_endpoint", "endpoint is required", field="endpoint")
    async with pool.acquire() as conn, conn.transaction():
        if not await repo.event_exists(conn, who.merchant_id, who.mode, event_id):
            raise NotFound("not_found", "no such event")
        endpoint = await _load(conn, who, endpoint_id, lock=True)
        if endpoint["status"] != "enabled":
            raise FailedPrecondition("endpoint_disabled", "the endpoint is disabled; enable it first")
        return await repo.redeliver(conn, event_id, endpoint["id"])


async def record_event(
    pool: asyncpg.Pool, who: Scope, event_type: str, object_id: str, obj: dict[str, Any], source_key: str
) -> Any:
    if event_type not in EVENT_TYPES:
        raise InvalidArgument("invalid_type", "type must be a merchant event type", field="type")
    if not source_key or len(source_key) > 200:
        raise InvalidArgument("invalid_source_key", "source_key: 1..200 characters", field="source_key")
    if not object_id or len(object_id) > 200:
        raise InvalidArgument("invalid_object_id", "object_id: 1..200 characters", field="object_id")
    async with pool.acquire() as conn:
        return await repo.record_event(
            conn, who.merchant_id, who.mode, event_type, object_id, obj, source_key
        )
