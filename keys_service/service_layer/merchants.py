"""Merchants and their secret keys (sk_test_/sk_live_): create, read, authenticate."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from keys_service.adapters import audit_log, merchant_repository
from keys_service.adapters.merchant_repository import StoredMerchant
from keys_service.domain.api_keys import (
    KeyMode,
    generate_merchant_secret_key,
    hash_key,
    hashes_equal,
    parse_merchant_key,
    validate_key_prefix,
)
from keys_service.domain.audit_events import AuditEvent
from keys_service.domain.ids import parse_uuid
from paygate_runtime.errors import InvalidArgument, NotFound, Unauthenticated

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
    secret: str
    secret_key_id: str

    def __repr__(self) -> str:
        return f"CreatedSecretKey(secret_key_id={self.secret_key_id!r})"


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


class MerchantService:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create(
        self, *, name: str, key_prefix: str, mode: KeyMode, idempotency_key: str
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
                first = await merchant_repository.first_secret_key(conn, parse_uuid(existing.id))  # type: ignore[arg-type]
                return CreatedMerchant(existing, "", str(first or ""))
            merchant_uuid = parse_uuid(merchant.id)
            assert merchant_uuid is not None
            key_id = await merchant_repository.insert_secret_key(
                conn,
                merchant_id=merchant_uuid,
                mode=generated.mode,
                key_hash=generated.key_hash,
                hint=generated.hint,
                idempotency_key=None,
            )
            await audit_log.record(
                conn,
                AuditEvent.MERCHANT_CREATED,
                object_type="merchant",
                object_id=merchant.id,
                merchant_id=merchant.id,
                details={"name": clean_name, "key_prefix": prefix},
            )
            await audit_log.record(
                conn,
                AuditEvent.MERCHANT_SECRET_KEY_CREATED,
                object_type="merchant_secret_key",
                object_id=str(key_id),
                merchant_id=merchant.id,
                details={"mode": generated.mode.value, "hint": generated.hint},
            )
        return CreatedMerchant(merchant, generated.secret, str(key_id))

    async def get(self, merchant_id: str) -> StoredMerchant:
        if not merchant_id:
            raise InvalidArgument("missing_merchant_id", "merchant_id is required", field="merchant_id")
        merchant_uuid = parse_uuid(merchant_id)
        merchant = None if merchant_uuid is None else await merchant_repository.get(self.pool, merchant_uuid)
        if merchant is None:
            raise NotFound("not_found", "merchant not found")
        return merchant

    async def create_secret_key(
        self, *, merchant_id: str, mode: KeyMode, idempotency_key: str
    ) -> CreatedSecretKey:
        merchant = await self.get(merchant_id)
        merchant_uuid = parse_uuid(merchant.id)
        assert merchant_uuid is not None
        idem = _idempotency_key(idempotency_key)
        generated = generate_merchant_secret_key(mode)
        async with self.pool.acquire() as conn, conn.transaction():
            key_id = await merchant_repository.insert_secret_key(
                conn,
                merchant_id=merchant_uuid,
                mode=generated.mode,
                key_hash=generated.key_hash,
                hint=generated.hint,
                idempotency_key=idem,
            )
            if key_id is None:
                assert idem is not None
                existing = await merchant_repository.secret_key_by_idempotency_key(conn, merchant_uuid, idem)
                return CreatedSecretKey("", str(existing))
            await audit_log.record(
                conn,
                AuditEvent.MERCHANT_SECRET_KEY_CREATED,
                object_type="merchant_secret_key",
                object_id=str(key_id),
                merchant_id=merchant.id,
                details={"mode": generated.mode.value, "hint": generated.hint},
            )
        return CreatedSecretKey(generated.secret, str(key_id))

    async def authenticate(self, presented: str) -> merchant_repository.AuthenticatedKey:
        """The merchant behind a secret key. A customer key, a malformed, unknown or revoked key: 401."""
        parsed = parse_merchant_key(presented)
        if parsed is None:
            raise Unauthenticated("unauthenticated", "invalid API key")
        key_hash = hash_key(parsed.secret)
        found = await merchant_repository.secret_key_by_hash(self.pool, key_hash)
        if found is None or found.revoked or not hashes_equal(found.key_hash, key_hash):
            raise Unauthenticated("unauthenticated", "invalid API key")
        return found
