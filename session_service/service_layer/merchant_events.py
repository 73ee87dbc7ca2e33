"""Use cases on webhook endpoints, merchant events and their delivery log (contract §7).

Every change a merchant makes here (an endpoint created, updated, deleted, its secret rolled, an event sent
again) is written to the session service's hash-chained audit trail in the transaction of the change: who
(`actor`, the secret key that asked), what (the action, the object, which fields changed; never a secret and
never a URL's path or query, which may hold a receiver's token) and when (the entry's time).

Retention: `prune` deletes, in batches, finished deliveries older than `Retention.days` with their attempts,
then the events older than that which no delivery names any more; the delivery worker runs it periodically.
"""

from __future__ import annotations

import base64
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from paygate_runtime.crypto.secret_box import SecretBox
from paygate_runtime.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    cursor_refused,
)
from session_service.adapters import merchant_events_repository as repo
from session_service.adapters.session_repository import write_audit
from session_service.domain.merchant_events import (
    DEFAULT_SECRET_OVERLAP_S,
    ENDPOINT_STATUSES,
    EVENT_TYPES,
    MAX_PREVIOUS_SECRETS,
    MAX_SECRET_OVERLAP_S,
    check_description,
    check_endpoint_url,
    check_events,
)

log = logging.getLogger(__name__)

DEFAULT_PAGE = 20
MAX_PAGE = 100
MAX_IDEMPOTENCY_KEY = 255
DEFAULT_ACTOR = "merchant"


@dataclass(frozen=True, slots=True)
class Retention:
    """How long merchant events and the delivery log are kept, and how the pruning runs."""

    days: int = 30
    interval_s: float = 3600.0
    batch: int = 1000


@dataclass(frozen=True, slots=True)
class Pruned:
    deliveries: int = 0
    attempts: int = 0
    events: int = 0


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


async def _load(
    conn: asyncpg.Connection, who: Scope, endpoint_id: str, *, lock: bool = False, deleted: bool = False
) -> Any:
    row = await repo.get_endpoint(
        conn, who.merchant_id, who.mode, _endpoint_id(endpoint_id), lock=lock, deleted=deleted
    )
    if row is None:
        raise NotFound("not_found", "no such webhook endpoint")
    return row


def _actor(actor: str) -> str:
    return actor[:200] if actor else DEFAULT_ACTOR


def _host(url: str) -> str:
    return urlsplit(url).hostname or ""


async def _audit(
    conn: asyncpg.Connection,
    who: Scope,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    detail: dict[str, Any],
) -> None:
    """One audit entry of a merchant's change, in the caller's transaction. `object_type`, `object_id` and
    `mode` are in the detail: the entry names no session (GET /v1/audit reads them from there)."""
    await write_audit(
        conn,
        None,
        who.merchant_id,
        _actor(actor),
        action,
        {"object_type": object_type, "object_id": object_id, "mode": who.mode, **detail},
    )


@dataclass(frozen=True, slots=True)
class CreatedEndpoint:
    row: Any
    secret: str  # empty on a replay: the secret is shown once
    replayed: bool = False


def _check_idempotency_key(key: str) -> None:
    if len(key) > MAX_IDEMPOTENCY_KEY:
        raise InvalidArgument(
            "invalid_idempotency_key",
            f"Idempotency-Key must be at most {MAX_IDEMPOTENCY_KEY} characters",
            field="idempotency_key",
        )


def _replayed(existing: Any, fingerprint: str) -> CreatedEndpoint:
    if (existing["request_fingerprint"] or "") != (fingerprint or ""):
        raise AlreadyExists(
            "idempotency_conflict",
            "this Idempotency-Key was used with another request body",
            field="idempotency_key",
        )
    return CreatedEndpoint(existing, "", replayed=True)


async def create_endpoint(
    pool: asyncpg.Pool,
    box: SecretBox,
    who: Scope,
    url: str,
    events: list[str],
    description: str,
    *,
    allow_loopback: bool,
    idempotency_key: str = "",
    request_fingerprint: str = "",
    actor: str = "",
) -> CreatedEndpoint:
    """A new endpoint and its secret. With an idempotency key already used in this merchant and mode: the
    endpoint that request made (no secret: it was shown once), or 409 `idempotency_conflict` when that request
    had another body (`request_fingerprint`, the caller's hash of the body)."""
    _check_idempotency_key(idempotency_key)
    if idempotency_key:
        # Before the body's checks: a replay answers what the first request got, whatever the rules now say.
        async with pool.acquire() as conn:
            existing = await repo.endpoint_by_idempotency_key(
                conn, who.merchant_id, who.mode, idempotency_key
            )
        if existing is not None:
            return _replayed(existing, request_fingerprint)
    checked = check_endpoint_url(url, who.mode, allow_loopback=allow_loopback)
    clean_events = check_events(events)
    secret = new_secret()
    endpoint_id = uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        row = await repo.insert_endpoint(
            conn,
            endpoint_id,
            who.merchant_id,
            who.mode,
            checked.url,
            clean_events,
            check_description(description),
            seal_secret(box, endpoint_id, secret),
            idempotency_key=idempotency_key or None,
            request_fingerprint=request_fingerprint if idempotency_key else None,
        )
        if row is None:
            # A concurrent request with the same key committed first.
            existing = await repo.endpoint_by_idempotency_key(
                conn, who.merchant_id, who.mode, idempotency_key
            )
            if existing is None:  # pragma: no cover - the conflict's row is committed before we are told
                raise FailedPrecondition("idempotency_in_progress", "retry the request")
            return _replayed(existing, request_fingerprint)
        await _audit(
            conn,
            who,
            actor,
            "webhook_endpoint_created",
            "webhook_endpoint",
            str(endpoint_id),
            {"url_host": _host(checked.url), "events": clean_events},
        )
    return CreatedEndpoint(row, secret)


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
            raise cursor_refused() from None
    async with pool.acquire() as conn:
        if after is not None and not await repo.endpoint_in_list(conn, who.merchant_id, who.mode, after):
            raise cursor_refused()
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
    actor: str = "",
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
        changed = [
            name
            for name, value in (
                ("url", url),
                ("events", events),
                ("description", description),
                ("status", status),
            )
            if value is not None and value != (list(row[name]) if name == "events" else row[name])
        ]
        if not changed:
            # An empty or no-op update changes nothing: no write, no `updated_at` bump, no audit entry.
            return row
        updated = await repo.update_endpoint(
            conn,
            row["id"],
            url=url if "url" in changed else None,
            events=events if "events" in changed else None,
            description=description if "description" in changed else None,
            status=status if "status" in changed else None,
        )
        detail: dict[str, Any] = {"changed": changed}
        if "url" in changed:
            detail["url_host"] = _host(updated["url"])
        if "events" in changed:
            detail["events"] = list(updated["events"])
        if "status" in changed:
            detail["status"] = {"from": row["status"], "to": updated["status"]}
        await _audit(conn, who, actor, "webhook_endpoint_updated", "webhook_endpoint", str(row["id"]), detail)
        return updated


async def delete_endpoint(pool: asyncpg.Pool, who: Scope, endpoint_id: str, *, actor: str = "") -> Any:
    async with pool.acquire() as conn, conn.transaction():
        row = await _load(conn, who, endpoint_id, lock=True)
        deleted = await repo.delete_endpoint(conn, row["id"])
        await _audit(
            conn,
            who,
            actor,
            "webhook_endpoint_deleted",
            "webhook_endpoint",
            str(row["id"]),
            {"url_host": _host(row["url"])},
        )
        return deleted


def _sealed(box: SecretBox, endpoint_id: uuid.UUID, sealed: bytes | None, plain: str | None) -> bytes | None:
    """A secret column pair as a sealed blob (a plain value is only there if a previous release wrote it)."""
    if sealed is not None:
        return bytes(sealed)
    return seal_secret(box, endpoint_id, plain) if plain else None


async def roll_secret(
    pool: asyncpg.Pool,
    box: SecretBox,
    who: Scope,
    endpoint_id: str,
    overlap_s: int | None,
    *,
    actor: str = "",
) -> tuple[Any, str]:
    """A new signing secret. The one it replaces keeps signing beside it for `overlap_s` seconds (None: the
    default 24 h), and every secret retired by an earlier roll keeps signing until the end promised for it;
    at most MAX_PREVIOUS_SECRETS previous secrets are kept (a roll past that ends the oldest retired). 0 is
    the emergency stop (a leaked secret): the replaced secret AND every earlier one end at once, and
    deliveries carry the new signature only. The reply's `previous_secret_expires_at` is the latest end of
    any previous secret still signing (None when none does)."""
    if overlap_s is None:
        overlap_s = DEFAULT_SECRET_OVERLAP_S
    if not 0 <= overlap_s <= MAX_SECRET_OVERLAP_S:
        raise InvalidArgument(
            "invalid_expires_in",
            f"expires_in: seconds the old secret keeps signing, 0..{MAX_SECRET_OVERLAP_S}"
            f" (0: stops now; default {DEFAULT_SECRET_OVERLAP_S})",
            field="expires_in",
        )
    secret = new_secret()
    async with pool.acquire() as conn, conn.transaction():
        row = await _load(conn, who, endpoint_id, lock=True)
        held = await repo.secrets_of(conn, row["id"])
        legacy: tuple[bytes, Any] | None = None
        old_end = held["previous_secret_expires_at"]
        if old_end is not None and old_end > datetime.now(UTC):
            legacy_sealed = _sealed(box, row["id"], held["previous_secret_sealed"], held["previous_secret"])
            if legacy_sealed is not None:
                legacy = (legacy_sealed, old_end)
        rolled = await repo.roll_secret(
            conn,
            row["id"],
            seal_secret(box, row["id"], secret),
            float(overlap_s),
            replaced_sealed=_sealed(box, row["id"], held["secret_sealed"], held["secret"]),
            legacy=legacy,
            keep=MAX_PREVIOUS_SECRETS,
        )
        ends = rolled.replaced_expires_at
        await _audit(
            conn,
            who,
            actor,
            "webhook_endpoint_secret_rolled",
            "webhook_endpoint",
            str(row["id"]),
            {
                # When the secret this roll replaced stops signing (None: at once).
                "previous_secret_expires_at": ends.isoformat() if ends is not None else None,
                "previous_secrets_signing": rolled.signing,
                "previous_secrets_ended": rolled.ended,
            },
        )
        return rolled.row, secret


async def list_events(
    pool: asyncpg.Pool, who: Scope, event_type: str, limit: int, starting_after: str
) -> tuple[list[Any], bool]:
    if event_type and event_type not in EVENT_TYPES:
        raise InvalidArgument("invalid_type", "type must be a merchant event type", field="type")
    size = page(limit)
    async with pool.acquire() as conn:
        if starting_after and not await repo.event_exists(conn, who.merchant_id, who.mode, starting_after):
            raise cursor_refused()
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
        if not (starting_after.isascii() and starting_after.isdecimal()) or len(starting_after) > 18:
            raise cursor_refused()
        after = int(starting_after)
    async with pool.acquire() as conn:
        if after is not None and not await repo.attempt_exists(conn, who.merchant_id, who.mode, after):
            raise cursor_refused()
        endpoint = None
        if endpoint_id:
            # A deleted endpoint's log stays (contract §7: "its delivery log stays"): still readable by it.
            endpoint = (await _load(conn, who, endpoint_id, deleted=True))["id"]
        if event_id and not await repo.event_exists(conn, who.merchant_id, who.mode, event_id):
            raise NotFound("not_found", "no such event")
        rows = await repo.list_attempts(
            conn, who.merchant_id, who.mode, endpoint, event_id or None, size + 1, after
        )
    return rows[:size], len(rows) > size


async def redeliver(
    pool: asyncpg.Pool, who: Scope, event_id: str, endpoint_id: str, *, actor: str = ""
) -> Any:
    if not endpoint_id:
        raise InvalidArgument("missing_endpoint", "endpoint is required", field="endpoint")
    try:
        async with pool.acquire() as conn, conn.transaction():
            if not await repo.event_exists(conn, who.merchant_id, who.mode, event_id):
                raise NotFound("not_found", "no such event")
            endpoint = await _load(conn, who, endpoint_id, lock=True)
            if endpoint["status"] != "enabled":
                raise FailedPrecondition("endpoint_disabled", "the endpoint is disabled; enable it first")
            row = await repo.redeliver(conn, event_id, endpoint["id"])
            await _audit(
                conn,
                who,
                actor,
                "merchant_event_redelivered",
                "merchant_event",
                event_id,
                {"endpoint_id": str(endpoint["id"])},
            )
            return row
    except asyncpg.ForeignKeyViolationError:
        # The event was pruned (retention) between the check and the insert.
        raise NotFound("not_found", "no such event") from None


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


async def prune(pool: asyncpg.Pool, retention: Retention) -> Pruned:
    """Delete what the retention allows, one batch per statement (short locks) until a batch comes back
    short. Replica-safe: each batch skips rows another holds."""
    deliveries = attempts = events = 0
    while True:
        async with pool.acquire() as conn:
            batch = await repo.prune_batch(conn, retention.days, retention.batch)
        deliveries += batch.deliveries
        attempts += batch.attempts
        events += batch.events
        if batch.deliveries < retention.batch and batch.events < retention.batch:
            break
    pruned = Pruned(deliveries, attempts, events)
    if deliveries or events:
        log.info(
            "pruned merchant events past their retention",
            extra={"deliveries": deliveries, "attempts": attempts, "events": events, "days": retention.days},
        )
    return pruned
