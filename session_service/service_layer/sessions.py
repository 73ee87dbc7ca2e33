"""Use cases on sessions: create (idempotent, with deposit allocation), read, list, expire, provider checkout,
alerts and the chain watcher's look-ups."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

import asyncpg

from paygate_runtime.audit_actor import clean_actor
from paygate_runtime.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    cursor_refused,
)
from paygate_runtime.money import max_minor_from_major, parse_amount
from session_service.adapters import chain_repository as chain_repo
from session_service.adapters import session_repository as repo
from session_service.domain.customer import Customer
from session_service.domain.expiry import compute_expires_at
from session_service.domain.payment_settings import (
    DEFAULT_MAINNET_CHAIN_IDS,
    check_chargeable,
    parse_provider,
    price_currency,
    require_chain_for_mode,
    web3_target,
)
from session_service.domain.session_filters import SessionListFilter
from session_service.domain.states import SessionStatus, can_move, parse_status

_MAX_DESCRIPTION = 200
_MAX_EMAIL = 254
DEFAULT_DESCRIPTION = "API access"
DEFAULT_PAGE = 20
MAX_PAGE = 100


@dataclass(frozen=True, slots=True)
class CreateSession:
    merchant_id: str
    mode: str
    amount: str
    currency: str
    provider: str
    customer_email: str
    metadata: dict[str, str] = field(default_factory=dict)
    expires_in_seconds: int = 0
    idempotency_key: str = ""
    request_fingerprint: str = ""
    description: str = ""
    scopes: tuple[str, ...] = ()
    # True when the caller gave `scopes` (even an empty list): then they are the grant, never the default.
    scopes_given: bool = False
    customer: Customer | None = None  # validated by check_customer (contract §9)
    # Who creates it, as the gateway names it for the audit trail ("merchant_key:<id>"); see paygate_runtime.audit_actor.
    actor: str = ""


# Contract §12: what the session's customer key may do. Checked here too (not only at the gateway), since the
# keys service refuses a bad grant at fulfilment, when it is too late to tell the merchant.
_SCOPE = re.compile(r"\*|[a-z0-9_:.\-]{1,64}")


def check_scopes(scopes: tuple[str, ...], *, given: bool = False) -> list[str]:
    """The grant: 1..32 scopes, or ["*"] when the caller gave none. A list given empty is refused: read as
    the default it would grant every scope, the opposite of what a merchant who sends `[]` means."""
    if not scopes and not given:
        return ["*"]
    clean = list(dict.fromkeys(scopes))
    if (
        not clean
        or len(clean) > 32
        or not all(_SCOPE.fullmatch(s) for s in clean)
        or ("*" in clean and len(clean) > 1)
    ):
        raise InvalidArgument(
            "invalid_scopes", 'scopes: 1 to 32 of [a-z0-9_:.-]{1,64}, or ["*"]', field="scopes"
        )
    return clean


@dataclass(frozen=True, slots=True)
class Created:
    session: repo.Record
    replayed: bool


class _KeyTaken(Exception):
    """The idempotency key was claimed by a concurrent request; roll back and replay that one."""


def parse_uuid(raw: str, field_name: str, *, not_found: str | None = None) -> uuid.UUID:
    """A UUID from the wire. For ids that name an object, a malformed one is simply not found."""
    try:
        return uuid.UUID(raw)
    except (ValueError, TypeError, AttributeError):
        if not_found:
            raise NotFound(not_found, f"no such {field_name.removesuffix('_id')}") from None
        if not raw:
            raise InvalidArgument(
                f"missing_{field_name}", f"{field_name} is required", field=field_name
            ) from None
        raise InvalidArgument(
            f"invalid_{field_name}", f"{field_name} must be a UUID", field=field_name
        ) from None


async def create_session(
    pool: asyncpg.Pool,
    command: CreateSession,
    *,
    max_amount_major: int,
    now: datetime,
    derive_address: Callable[[str, int], str],
    live_chain_ids: frozenset[int] = DEFAULT_MAINNET_CHAIN_IDS,
) -> Created:
    merchant_id = parse_uuid(command.merchant_id, "merchant_id")
    provider = parse_provider(command.provider)
    email = _check_email(command.customer_email)
    scopes = check_scopes(command.scopes, given=command.scopes_given)
    description = command.description or DEFAULT_DESCRIPTION
    if len(description) > _MAX_DESCRIPTION:
        raise InvalidArgument(
            "invalid_description", "description is at most 200 characters", field="description"
        )
    key = command.idempotency_key or None
    async with pool.acquire() as conn:
        if key is not None:
            existing = await repo.find_by_idempotency_key(conn, merchant_id, command.mode, key)
            if existing is not None:
                return _replay(existing, command.request_fingerprint)
        needs_settings = provider == "web3" or not command.currency
        settings = repo.settings_from_row(
            command.merchant_id, await repo.fetch_settings(conn, merchant_id) if needs_settings else None
        )
        currency = price_currency(settings, provider, command.currency)
        amount = parse_amount(
            command.amount,
            currency.code,
            currency.exponent,
            max_minor_from_major(max_amount_major, currency.exponent),
        )
        check_chargeable(provider, amount)
        new = repo.NewSession(
            id=uuid.uuid4(),
            merchant_id=merchant_id,
            mode=command.mode,
            amount=amount,
            provider=provider,
            customer_email=email,
            metadata=dict(command.metadata),
            description=description,
            scopes=scopes,
            customer=command.customer.to_json() if command.customer is not None else None,
            expires_at=compute_expires_at(now, command.expires_in_seconds, provider),
            idempotency_key=key,
            request_fingerprint=command.request_fingerprint or None,
            actor=clean_actor(command.actor, "merchant"),
        )
        if provider != "web3":
            row = await repo.insert_session(conn, new)
            if row is not None:
                return Created(row, False)
        else:
            assert settings.onchain is not None  # price_currency refused web3 without on-chain settings
            target = web3_target(settings.onchain, currency)
            require_chain_for_mode(target.chain_id, command.mode, live_chain_ids)
            try:
                async with conn.transaction():
                    index = await repo.allocate_derivation_index(conn, merchant_id)
                    address = derive_address(settings.onchain.xpub, index)
                    row = await repo.insert_session(
                        conn,
                        _with_deposit(
                            new,
                            target.chain_id,
                            address,
                            target.token_address,
                            target.min_confirmations,
                            index,
                        ),
                    )
                    if row is None:
                        raise _KeyTaken
                    return Created(row, False)
            except _KeyTaken:
                pass
        # A concurrent request with the same key won the insert (ON CONFLICT waited for its commit).
        assert key is not None
        existing = await repo.find_by_idempotency_key(conn, merchant_id, command.mode, key)
        assert existing is not None
        return _replay(existing, command.request_fingerprint)


def _with_deposit(
    new: repo.NewSession, chain_id: int, address: str, token: str | None, confirmations: int, index: int
) -> repo.NewSession:
    return replace(
        new,
        chain_id=chain_id,
        deposit_address=address,
        token_address=token,
        min_confirmations=confirmations,
        derivation_index=index,
    )


def _replay(existing: repo.Record, fingerprint: str) -> Created:
    if (existing["request_fingerprint"] or "") != (fingerprint or ""):
        raise AlreadyExists(
            "idempotency_conflict",
            "this idempotency key was used with a different request",
            field="idempotency_key",
        )
    return Created(existing, True)


def _check_email(raw: str) -> str | None:
    if not raw:
        return None
    if len(raw) > _MAX_EMAIL or "@" not in raw or any(ch in raw for ch in "\r\n <>,;"):
        raise InvalidArgument(
            "invalid_customer_email", "customer_email must be one email address", field="customer_email"
        )
    return raw


def caller_scope(merchant_id: str, mode: str | None) -> tuple[uuid.UUID, str | None]:
    """The (merchant, mode) a request acts for. A merchant's request always names its key's mode; None is
    left only to internal callers that act for no key."""
    merchant = parse_uuid(merchant_id, "merchant_id")
    return merchant, mode


async def get_session(
    pool: asyncpg.Pool, session_id: str, merchant_id: str, mode: str | None = None
) -> repo.Record:
    """With a merchant: only that merchant's session of `mode` (NOT_FOUND otherwise, alike). Without one:
    the gateway's own public pages and internal callers."""
    sid = parse_uuid(session_id, "session_id", not_found="session_not_found")
    async with pool.acquire() as conn:
        if merchant_id:
            merchant, scope_mode = caller_scope(merchant_id, mode)
            row = await repo.load_for_caller(conn, merchant, scope_mode, sid)
        else:
            row = await repo.get_session(conn, sid)
    if row is None:
        raise NotFound("session_not_found", "no such session")
    return row


async def list_sessions(
    pool: asyncpg.Pool,
    merchant_id: str,
    status: str | None,
    mode: str | None,
    limit: int,
    starting_after: str,
    filters: SessionListFilter | None = None,
) -> tuple[list[repo.Record], bool]:
    merchant = parse_uuid(merchant_id, "merchant_id")
    page = _page_size(limit)
    if status is not None:
        parse_status(status)
    checked = (filters or SessionListFilter()).checked()
    async with pool.acquire() as conn:
        after = await _cursor(conn, "sessions", merchant, mode, starting_after)
        rows = await repo.list_sessions(
            conn, merchant, status=status, mode=mode, limit=page + 1, starting_after=after, filters=checked
        )
    return rows[:page], len(rows) > page


def _page_size(limit: int) -> int:
    if limit == 0:
        return DEFAULT_PAGE
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidArgument("invalid_limit", f"limit must be 1..{MAX_PAGE}", field="limit")
    return limit


async def _cursor(
    conn: asyncpg.Connection, table: str, merchant: uuid.UUID, mode: str | None, raw: str
) -> uuid.UUID | None:
    if not raw:
        return None
    try:
        cursor = uuid.UUID(raw)
    except ValueError:
        raise cursor_refused() from None
    if not await repo.cursor_exists(conn, table, merchant, mode, cursor):
        raise cursor_refused()
    return cursor


async def expire_session(
    pool: asyncpg.Pool, session_id: str, merchant_id: str, mode: str | None = None, actor: str = ""
) -> repo.Record:
    """The merchant ends a `created` session, or a `pending` web3 one (its partial money is quarantined by the
    gateway). Expiring an expired one again returns it unchanged. `actor`: who did it (paygate_runtime.audit_actor)."""
    merchant, scope_mode = caller_scope(merchant_id, mode)
    who = clean_actor(actor, f"merchant:{merchant}")
    sid = parse_uuid(session_id, "session_id", not_found="session_not_found")
    async with pool.acquire() as conn:
        async with conn.transaction():
            row = await repo.load_for_caller(conn, merchant, scope_mode, sid, lock=True)
            if row is None:
                raise NotFound("session_not_found", "no such session")
            status = SessionStatus(row["status"])
            if can_move(status, SessionStatus.EXPIRED, row["provider"]):
                written = await repo.write_move(
                    conn,
                    repo.Move(
                        session_id=sid,
                        merchant_id=merchant,
                        from_status=status.value,
                        to_status=SessionStatus.EXPIRED.value,
                        source_event_id="merchant:expire",
                        note="expired_by_merchant",
                        history=True,
                        actor=who,
                        action="session_expired",
                        detail={"from": status.value},
                        # The provider-only move (web3 pending -> expired) is checked by the writer too.
                        expected_provider=row["provider"],
                    ),
                )
                assert written["applied"], "the row is locked by this transaction"
            elif status is not SessionStatus.EXPIRED:
                raise FailedPrecondition(
                    "session_not_expirable", f"a {status} session cannot be expired", field="session_id"
                )
        row = await repo.get_session(conn, sid)
    assert row is not None
    return row


async def set_provider_checkout(
    pool: asyncpg.Pool,
    session_id: str,
    merchant_id: str,
    provider_session_id: str,
    url: str,
    mode: str | None = None,
) -> repo.Record:
    merchant, scope_mode = caller_scope(merchant_id, mode)
    sid = parse_uuid(session_id, "session_id", not_found="session_not_found")
    if not provider_session_id:
        raise InvalidArgument(
            "missing_provider_session_id", "provider_session_id is required", field="provider_session_id"
        )
    if not url.startswith("https://") and not url.startswith("http://"):
        raise InvalidArgument(
            "invalid_provider_checkout_url",
            "provider_checkout_url must be a URL",
            field="provider_checkout_url",
        )
    async with pool.acquire() as conn:
        async with conn.transaction():
            row = await repo.load_for_caller(conn, merchant, scope_mode, sid, lock=True)
            if row is None:
                raise NotFound("session_not_found", "no such session")
            current = (row["provider_session_id"], row["provider_checkout_url"])
            if current == (None, None):
                await repo.set_provider_checkout(conn, sid, provider_session_id, url)
                await repo.write_audit(
                    conn,
                    sid,
                    merchant,
                    "gateway",
                    "provider_checkout_set",
                    {"provider_session_id": provider_session_id},
                )
            elif current != (provider_session_id, url):
                raise FailedPrecondition(
                    "provider_checkout_conflict",
                    "this session already has another provider checkout",
                    field="provider_session_id",
                )
        row = await repo.get_session(conn, sid)
    assert row is not None
    return row


# Alerts about money that the merchant must act on: each also opens a quarantine entry (issue 13).
QUARANTINED_ALERTS = frozenset({"reorged_after_paid"})


async def raise_alert(
    pool: asyncpg.Pool,
    session_id: str,
    code: str,
    detail: str,
    reference: str,
    amount: tuple[int, str, int] | None = None,
) -> repo.Record:
    """Record an alert once per (session, code, reference). `amount` is (minor units, currency, exponent) of
    the money concerned; a `reorged_after_paid` alert also opens a quarantine entry for it, so the merchant
    sees a paid session whose money a reorg took back (the session itself never leaves `paid`)."""
    sid = parse_uuid(session_id, "session_id", not_found="session_not_found")
    if not code or len(code) > 64 or not code.replace("_", "").isalnum() or not code.isascii():
        raise InvalidArgument("invalid_code", "code must be snake_case", field="code")
    async with pool.acquire() as conn:
        async with conn.transaction():
            row = await repo.lock_session(conn, sid)
            if row is None:
                raise NotFound("session_not_found", "no such session")
            if await repo.insert_alert(conn, sid, code, detail[:1000], reference[:200]):
                await repo.write_audit(
                    conn,
                    sid,
                    row["merchant_id"],
                    "gateway",
                    "alert_raised",
                    {"code": code, "reference": reference},
                )
                if code in QUARANTINED_ALERTS:
                    minor, currency, exponent = amount if amount is not None else (None, None, None)
                    await chain_repo.quarantine_alert(
                        conn,
                        row,
                        reason=code,
                        note=detail[:1000],
                        reference=reference[:200],
                        amount_minor=minor,
                        currency=currency,
                        exponent=exponent,
                    )
        row = await repo.get_session(conn, sid)
    assert row is not None
    return row


async def active_deposits(pool: asyncpg.Pool, chain_id: int, closed_within_s: int) -> list[repo.Record]:
    if chain_id <= 0:
        raise InvalidArgument("invalid_chain_id", "chain_id must be positive", field="chain_id")
    if closed_within_s < 0:
        raise InvalidArgument(
            "invalid_include_closed_within_seconds",
            "must not be negative",
            field="include_closed_within_seconds",
        )
    async with pool.acquire() as conn:
        return await repo.list_active_deposits(conn, chain_id, closed_within_s)


async def session_by_deposit_address(pool: asyncpg.Pool, chain_id: int, address: str) -> repo.Record:
    if not address:
        raise InvalidArgument(
            "missing_deposit_address", "deposit_address is required", field="deposit_address"
        )
    async with pool.acquire() as conn:
        row = await repo.get_session_by_deposit(conn, chain_id, address)
    if row is None:
        raise NotFound("session_not_found", "no session owns this deposit address")
    return row
