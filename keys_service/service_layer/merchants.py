"""Merchants and their secret keys (sk_test_/sk_live_): create, read, authenticate."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from keys_service.adapters import audit_log, merchant_repository
from keys_service.adapters.merchant_repository import StoredMerchant
from keys_service.adapters.usage_recorder import UsageRecorder
from keys_service.domain.api_keys import (
    GeneratedKey,
    KeyMode,
    generate_merchant_secret_key,
    hash_key,
    hashes_equal,
    parse_merchant_key,
    validate_key_prefix,
)
from keys_service.domain.audit_events import AuditEvent
from keys_service.domain.ids import parse_uuid, required_uuid
from keys_service.domain.key_status import validate_grace_period
from keys_service.domain.merchant_keys import (
    MerchantKeyFacts,
    check_revocable,
    last4,
    merchant_key_status,
    roll_expiry,
)
from paygate_runtime.audit_actor import clean_actor
from paygate_runtime.errors import AlreadyExists, InvalidArgument, NotFound, Unauthenticated, cursor_refused

DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 100

MAX_NAME_CHARS = 200
MAX_IDEMPOTENCY_KEY_CHARS = 255


@dataclass(frozen=True, slots=True)
class CreatedMerchant:
    merchant: StoredMerchant
    secret: str  # empty on an idempotent replay
    secret_key_id: str

    def __repr__(self) -> str:
        return f"CreatedMerchant(merchant={self.merchant!r}, secret_key_id={self.secret_key_id!r})"


@dataclass(frozen=True, slots=True)
class CreatedSecretKey:
    secret: str  # empty on an idempotent replay
    key: MerchantKeyFacts

    @property
    def secret_key_id(self) -> str:
        return self.key.id

    def __repr__(self) -> str:
        return f"CreatedSecretKey(secret_key_id={self.key.id!r})"


@dataclass(frozen=True, slots=True)
class RolledSecretKey:
    key: MerchantKeyFacts
    secret: str  # empty on an idempotent replay
    previous: MerchantKeyFacts

    def __repr__(self) -> str:
        return f"RolledSecretKey(key_id={self.key.id!r}, previous_id={self.previous.id!r})"


def _idempotency_key(value: str) -> str | None:
    if not value:
        return None
    if len(value) > MAX_IDEMPOTENCY_KEY_CHARS:
        raise InvalidArgument(
            "invalid_idempotency_key",
            "idempotency_key is longer than 255 characters",
            field="idempotency_key",
        )
    return value


def _key_not_found() -> NotFound:
    return NotFound("not_found", "merchant key not found")


class MerchantService:
    def __init__(self, pool: asyncpg.Pool, usage: UsageRecorder | None = None) -> None:
        self.pool = pool
        # Batched last_used_at of merchant secret keys (None: not recorded, e.g. in a unit of a test).
        self.usage = usage

    async def create(
        self, *, name: str, key_prefix: str, mode: KeyMode, idempotency_key: str, actor: str = ""
    ) -> CreatedMerchant:
        clean_name = name.strip()
        if not clean_name:
            raise InvalidArgument("missing_name", "name is required", field="name")
        if len(clean_name) > MAX_NAME_CHARS:
            raise InvalidArgument("invalid_name", "name is longer than 200 characters", field="name")
        if not key_prefix:
            raise InvalidArgument("missing_key_prefix", "key_prefix is required", field="key_prefix")
        prefix = validate_key_prefix(key_prefix)
        idem = _idempotency_key(idempotency_key)
        generated = generate_merchant_secret_key(mode)
        async with self.pool.acquire() as conn, conn.transaction():
            merchant = await merchant_repository.insert_merchant(
                conn, name=clean_name, key_prefix=prefix, idempotency_key=idem
            )
            if merchant is None:
                assert idem is not None
                existing = await merchant_repository.get_by_idempotency_key(conn, idem)
                assert existing is not None
                first = await merchant_repository.first_secret_key(conn, parse_uuid(existing.id))  # type: ignore[arg-type]  # existing.id is a stored UUID, never None here
                return CreatedMerchant(existing, "", str(first or ""))
            merchant_uuid = parse_uuid(merchant.id)
            assert merchant_uuid is not None
            first_key = await self._insert(conn, merchant_uuid, generated, None, rolled_from=None)
            await audit_log.record(
                conn,
                AuditEvent.MERCHANT_CREATED,
                object_type="merchant",
                object_id=merchant.id,
                merchant_id=merchant.id,
                details={"name": clean_name, "key_prefix": prefix, "actor": clean_actor(actor)},
            )
            await audit_log.record(
                conn,
                AuditEvent.MERCHANT_SECRET_KEY_CREATED,
                object_type="merchant_secret_key",
                object_id=first_key.id,
                merchant_id=merchant.id,
                details={"mode": generated.mode.value, "hint": generated.hint, "actor": clean_actor(actor)},
            )
        return CreatedMerchant(merchant, generated.secret, first_key.id)

    async def get(self, merchant_id: str) -> StoredMerchant:
        if not merchant_id:
            raise InvalidArgument("missing_merchant_id", "merchant_id is required", field="merchant_id")
        merchant_uuid = parse_uuid(merchant_id)
        merchant = None if merchant_uuid is None else await merchant_repository.get(self.pool, merchant_uuid)
        if merchant is None:
            raise NotFound("not_found", "merchant not found")
        return merchant

    async def create_secret_key(
        self, *, merchant_id: str, mode: KeyMode, idempotency_key: str, actor: str = ""
    ) -> CreatedSecretKey:
        if not merchant_id:
            raise InvalidArgument("missing_merchant_id", "merchant_id is required", field="merchant_id")
        merchant_uuid = parse_uuid(merchant_id)
        idem = _idempotency_key(idempotency_key)
        generated = generate_merchant_secret_key(mode)
        async with self.pool.acquire() as conn, conn.transaction():
            if merchant_uuid is None or not await merchant_repository.lock_merchant(conn, merchant_uuid):
                raise NotFound("not_found", "merchant not found")
            if idem is not None:
                existing = await merchant_repository.secret_key_by_idempotency_key(conn, merchant_uuid, idem)
                if existing is not None:
                    if existing.mode is not mode or existing.rolled_from_id is not None:
                        raise _idempotency_conflict()
                    return CreatedSecretKey("", existing)
            key = await self._insert(conn, merchant_uuid, generated, idem, rolled_from=None)
            await audit_log.record(
                conn,
                AuditEvent.MERCHANT_SECRET_KEY_CREATED,
                object_type="merchant_secret_key",
                object_id=key.id,
                merchant_id=merchant_uuid,
                details={"mode": key.mode.value, "last4": key.last4, "actor": clean_actor(actor)},
            )
        return CreatedSecretKey(generated.secret, key)

    @staticmethod
    async def _insert(
        conn: asyncpg.Connection,
        merchant_uuid: uuid.UUID,
        generated: GeneratedKey,
        idem: str | None,
        *,
        rolled_from: uuid.UUID | None,
    ) -> MerchantKeyFacts:
        key_id = await merchant_repository.insert_secret_key(
            conn,
            merchant_id=merchant_uuid,
            mode=generated.mode,
            key_hash=generated.key_hash,
            hint=generated.hint,
            prefix=generated.prefix,
            last4=last4(generated.secret),
            idempotency_key=idem,
            rolled_from_id=rolled_from,
        )
        # The merchant row is locked and the idempotency key was looked up under that lock: no conflict left.
        assert key_id is not None
        key = await merchant_repository.secret_key(conn, merchant_uuid, key_id)
        assert key is not None
        return key

    async def _locked_key(
        self, conn: asyncpg.Connection, merchant_id: str, key_id: str, mode_scope: KeyMode | None
    ) -> tuple[uuid.UUID, MerchantKeyFacts]:
        """The merchant's key under the merchant's row lock. Another merchant's key, a key of the other
        mode (when scoped) and a malformed id are all NOT_FOUND: the caller learns nothing about them."""
        merchant_uuid = required_uuid(merchant_id, "merchant_id")
        key_uuid = parse_uuid(key_id)
        if key_uuid is None or not await merchant_repository.lock_merchant(conn, merchant_uuid):
            raise _key_not_found()
        key = await merchant_repository.secret_key(conn, merchant_uuid, key_uuid)
        if key is None or (mode_scope is not None and key.mode is not mode_scope):
            raise _key_not_found()
        return merchant_uuid, key

    async def list_secret_keys(
        self, *, merchant_id: str, mode: KeyMode | None, limit: int, starting_after: str
    ) -> tuple[list[MerchantKeyFacts], bool]:
        merchant_uuid = required_uuid(merchant_id, "merchant_id")
        if limit == 0:
            limit = DEFAULT_LIST_LIMIT
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidArgument("invalid_limit", "limit must be from 1 to 100", field="limit")
        after = None
        if starting_after:
            after = parse_uuid(starting_after)
            # Another merchant's key, a key of the other mode and a missing one: the same refusal.
            cursor = (
                None
                if after is None
                else await merchant_repository.secret_key(self.pool, merchant_uuid, after)
            )
            if cursor is None or (mode is not None and cursor.mode is not mode):
                raise cursor_refused()
        keys = await merchant_repository.list_secret_keys(
            self.pool, merchant_uuid, mode, limit=limit, after=after
        )
        return keys[:limit], len(keys) > limit

    async def roll_secret_key(
        self,
        *,
        merchant_id: str,
        key_id: str,
        grace_period_seconds: int,
        mode_scope: KeyMode | None,
        idempotency_key: str = "",
        actor: str = "",
    ) -> RolledSecretKey:
        grace = validate_grace_period(grace_period_seconds)
        idem = _idempotency_key(idempotency_key)
        async with self.pool.acquire() as conn, conn.transaction():
            merchant_uuid, target = await self._locked_key(conn, merchant_id, key_id, mode_scope)
            if idem is not None:
                existing = await merchant_repository.secret_key_by_idempotency_key(conn, merchant_uuid, idem)
                if existing is not None:
                    # A retry of this very roll gets its key again, without the secret.
                    if existing.rolled_from_id != target.id:
                        raise _idempotency_conflict()
                    return RolledSecretKey(existing, "", target)
            now = datetime.now(UTC)
            expires_at = roll_expiry(target, now=now, grace_period_seconds=grace)
            generated = generate_merchant_secret_key(target.mode)
            key = await self._insert(conn, merchant_uuid, generated, idem, rolled_from=uuid.UUID(target.id))
            previous = await merchant_repository.set_expiry(conn, uuid.UUID(target.id), expires_at)
            who = clean_actor(actor)
            await audit_log.record(
                conn,
                AuditEvent.MERCHANT_SECRET_KEY_CREATED,
                object_type="merchant_secret_key",
                object_id=key.id,
                merchant_id=merchant_uuid,
                details={
                    "mode": key.mode.value,
                    "last4": key.last4,
                    "rolled_from_id": target.id,
                    "actor": who,
                },
            )
            await audit_log.record(
                conn,
                AuditEvent.MERCHANT_SECRET_KEY_ROLLED,
                object_type="merchant_secret_key",
                object_id=target.id,
                merchant_id=merchant_uuid,
                details={
                    "new_key_id": key.id,
                    "grace_period_seconds": grace,
                    "expires_at": expires_at.isoformat(),
                    "actor": who,
                },
            )
        return RolledSecretKey(key, generated.secret, previous)

    async def revoke_secret_key(
        self, *, merchant_id: str, key_id: str, mode_scope: KeyMode | None, actor: str = ""
    ) -> MerchantKeyFacts:
        async with self.pool.acquire() as conn, conn.transaction():
            merchant_uuid, target = await self._locked_key(conn, merchant_id, key_id, mode_scope)
            others = await merchant_repository.secret_keys_of_mode(conn, merchant_uuid, target.mode)
            if not check_revocable(target, others, datetime.now(UTC)):
                return target  # already revoked: nothing to do, nothing to audit
            revoked = await merchant_repository.revoke_secret_key(conn, uuid.UUID(target.id))
            await audit_log.record(
                conn,
                AuditEvent.MERCHANT_SECRET_KEY_REVOKED,
                object_type="merchant_secret_key",
                object_id=target.id,
                merchant_id=merchant_uuid,
                details={"mode": target.mode.value, "last4": target.last4, "actor": clean_actor(actor)},
            )
        return revoked

    async def authenticate(self, presented: str) -> merchant_repository.AuthenticatedKey:
        """The merchant behind a secret key. A customer key, a malformed, unknown, revoked or expired key: 401.

        Every call reads the key's row (one indexed lookup; nothing is cached), so a revocation or the end of
        a roll's grace period counts on every replica from the next request on."""
        parsed = parse_merchant_key(presented)
        if parsed is None:
            raise Unauthenticated("unauthenticated", "invalid API key")
        key_hash = hash_key(parsed.secret)
        found = await merchant_repository.secret_key_by_hash(self.pool, key_hash)
        if found is None or not hashes_equal(found.key_hash, key_hash):
            raise Unauthenticated("unauthenticated", "invalid API key")
        now = datetime.now(UTC)
        if not merchant_key_status(revoked_at=found.revoked_at, expires_at=found.expires_at, now=now).works:
            raise Unauthenticated("unauthenticated", "invalid API key")
        if self.usage is not None:
            self.usage.note(found.key_id, now)
        return found


def _idempotency_conflict() -> AlreadyExists:
    return AlreadyExists(
        "idempotency_conflict", "this idempotency key was used for another request", field="idempotency_key"
    )
