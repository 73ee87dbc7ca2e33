"""Customer API keys: issue on payment, reveal once, roll, revoke, list."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from keys_service.adapters import api_key_repository, audit_log
from keys_service.adapters.api_key_repository import StoredApiKey
from keys_service.domain.api_keys import GeneratedKey, KeyMode, generate_customer_key
from keys_service.domain.audit_events import AuditEvent
from keys_service.domain.ids import parse_uuid, required_uuid
from keys_service.domain.key_permissions import ALL_SCOPES, validate_scopes
from keys_service.domain.key_status import validate_grace_period
from keys_service.service_layer import key_changes
from keys_service.service_layer.key_changes import RolledKey
from keys_service.service_layer.key_verifier import KeyVerifier
from keys_service.service_layer.known_merchants import KnownMerchants
from paygate_runtime.audit_actor import clean_actor
from paygate_runtime.crypto.secret_box import SecretBox, SecretBoxError
from paygate_runtime.errors import FailedPrecondition, InvalidArgument, NotFound, cursor_refused

log = logging.getLogger(__name__)

DEFAULT_LIST_LIMIT = 20
MAX_LIST_LIMIT = 100
MAX_METADATA_ENTRIES = 50
MAX_METADATA_CHARS = 500


@dataclass(frozen=True, slots=True)
class RevealedKey:
    key: StoredApiKey
    secret: str

    def __repr__(self) -> str:
        return f"RevealedKey(key_id={self.key.id!r})"


def _metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    if len(metadata) > MAX_METADATA_ENTRIES:
        raise InvalidArgument("invalid_metadata", "at most 50 metadata entries", field="metadata")
    for key, value in metadata.items():
        if not key or len(key) > 40 or len(value) > MAX_METADATA_CHARS:
            raise InvalidArgument(
                "invalid_metadata", "metadata keys are 1..40 chars, values up to 500", field="metadata"
            )
    return dict(metadata)


@dataclass(frozen=True, slots=True)
class PreparedKey:
    """A checked issue request with its freshly generated key, ready for the one statement that stores it."""

    key_id: uuid.UUID
    merchant_id: uuid.UUID
    session_id: uuid.UUID
    mode: KeyMode
    generated: GeneratedKey
    ciphertext: bytes
    metadata: dict[str, str]
    scopes: tuple[str, ...]

    def __repr__(self) -> str:
        return f"PreparedKey(key_id={self.key_id!r}, session_id={self.session_id!r})"


class CustomerKeyService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        box: SecretBox,
        verifier: KeyVerifier,
        merchants: KnownMerchants,
    ) -> None:
        self.pool = pool
        self.box = box
        self.verifier = verifier
        self.merchants = merchants

    async def issue(
        self,
        *,
        merchant_id: str,
        session_id: str,
        mode: KeyMode,
        metadata: Mapping[str, str],
        scopes: Sequence[str] | None = None,
    ) -> StoredApiKey:
        """The session's key, created on the first call; a retry returns the same key (no second key)."""
        prepared = await self.prepare_issue(
            merchant_id=merchant_id, session_id=session_id, mode=mode, metadata=metadata, scopes=scopes
        )
        return await self.write_issue(self.pool, prepared)

    async def prepare_issue(
        self,
        *,
        merchant_id: str,
        session_id: str,
        mode: KeyMode,
        metadata: Mapping[str, str],
        scopes: Sequence[str] | None = None,
    ) -> PreparedKey:
        """Everything an issue needs before the database: the checked request and a fresh key (whose secret a
        retry drops unseen). Raises the request's DomainError."""
        merchant_uuid = required_uuid(merchant_id, "merchant_id")
        session_uuid = required_uuid(session_id, "session_id")
        clean_metadata = _metadata(metadata)
        # The merchant's grant for the session (None, not given: everything); the key starts with all of it.
        # A grant given empty is refused by validate_scopes, never read as everything.
        granted = ALL_SCOPES if scopes is None else validate_scopes(list(scopes))
        prefix = await self.merchants.key_prefix(merchant_uuid)
        generated = generate_customer_key(prefix, mode)
        key_id = uuid.uuid4()
        return PreparedKey(
            key_id=key_id,
            merchant_id=merchant_uuid,
            session_id=session_uuid,
            mode=mode,
            generated=generated,
            ciphertext=self.box.encrypt(generated.secret, str(key_id)),
            metadata=clean_metadata,
            scopes=granted,
        )

    async def write_issue(
        self, conn: asyncpg.Connection | asyncpg.Pool, prepared: PreparedKey
    ) -> StoredApiKey:
        """THE writer of a session's issued key, on the caller's connection (alone, or in a batch's
        transaction). One statement on this hot path: the key and its audit row, or the key a retry got."""
        generated = prepared.generated
        fresh, stored = await api_key_repository.issue_for_session(
            conn,
            key_id=prepared.key_id,
            merchant_id=prepared.merchant_id,
            session_id=prepared.session_id,
            mode=generated.mode,
            prefix=generated.prefix,
            hint=generated.hint,
            key_hash=generated.key_hash,
            ciphertext=prepared.ciphertext,
            metadata=prepared.metadata,
            audit_event=AuditEvent.API_KEY_CREATED,
            audit_details={
                "mode": generated.mode.value,
                "hint": generated.hint,
                "scopes": list(prepared.scopes),
            },
            scopes=prepared.scopes,
        )
        return stored if fresh else self._same_issue(stored, str(prepared.merchant_id), prepared.mode)

    @staticmethod
    def _same_issue(existing: StoredApiKey, merchant_id: str, mode: KeyMode) -> StoredApiKey:
        if existing.merchant_id != merchant_id or existing.mode is not mode:
            raise FailedPrecondition(
                "session_key_conflict", "this session already has a key of another merchant or mode"
            )
        return existing

    async def reveal(self, *, session_id: str, access_token_id: str) -> RevealedKey:
        """The secret, once. The ciphertext is erased in the same transaction, so a second call (or a
        concurrent one) gets FAILED_PRECONDITION already_revealed."""
        session_uuid = parse_uuid(session_id)
        if not session_id:
            raise InvalidArgument("missing_session_id", "session_id is required", field="session_id")
        if session_uuid is None:
            raise NotFound("not_found", "no key for this session")
        async with self.pool.acquire() as conn, conn.transaction():
            key = await api_key_repository.get_issued_for_session(conn, session_uuid, for_update=True)
            if key is None:
                raise NotFound("not_found", "no key for this session")
            if key.revealed_at is not None:
                raise FailedPrecondition("already_revealed", "this key was already revealed")
            if key.revoked_at is not None:
                raise FailedPrecondition("key_revoked", "this key was revoked")
            ciphertext = await api_key_repository.read_ciphertext(conn, uuid.UUID(key.id))
            if ciphertext is None:
                raise FailedPrecondition("secret_unavailable", "this key was replaced and cannot be revealed")
            try:
                secret = self.box.decrypt(ciphertext, key.id)
            except SecretBoxError as error:
                log.error(
                    "stored key ciphertext does not open", extra={"key_id": key.id, "error": str(error)}
                )
                raise FailedPrecondition("secret_unavailable", "this key's secret cannot be opened") from None
            revealed = await api_key_repository.mark_revealed(conn, uuid.UUID(key.id))
            await audit_log.record(
                conn,
                AuditEvent.API_KEY_REVEALED,
                object_type="api_key",
                object_id=key.id,
                merchant_id=key.merchant_id,
                session_id=key.session_id,
                details={"access_token_id": access_token_id[:64], "hint": key.hint},
            )
        return RevealedKey(revealed, secret)

    async def get_for_session(self, *, session_id: str, merchant_scope: str) -> StoredApiKey:
        session_uuid = parse_uuid(session_id)
        if not session_id:
            raise InvalidArgument("missing_session_id", "session_id is required", field="session_id")
        key = (
            None
            if session_uuid is None
            else await api_key_repository.get_current_for_session(self.pool, session_uuid)
        )
        if key is None or (merchant_scope and key.merchant_id != merchant_scope):
            raise NotFound("not_found", "no key for this session")
        return key

    async def _owned(
        self, conn: asyncpg.Connection, merchant_id: str, key_id: str, mode_scope: KeyMode | None
    ) -> StoredApiKey:
        """The merchant's key, locked; another merchant's key, another mode's or a malformed id: NOT_FOUND."""
        merchant_uuid = required_uuid(merchant_id, "merchant_id")
        if not key_id:
            raise InvalidArgument("missing_key_id", "key_id is required", field="key_id")
        key_uuid = parse_uuid(key_id)
        key = (
            None
            if key_uuid is None
            else await api_key_repository.get_by_id(conn, key_uuid, merchant_uuid, for_update=True)
        )
        if key is None or (mode_scope is not None and key.mode is not mode_scope):
            raise NotFound("not_found", "API key not found")
        return key

    async def roll(
        self,
        *,
        merchant_id: str,
        key_id: str,
        grace_period_seconds: int,
        idempotency_key: str,
        mode_scope: KeyMode | None,
        actor: str = "",
    ) -> RolledKey:
        grace = validate_grace_period(grace_period_seconds)
        if len(idempotency_key) > 255:
            raise InvalidArgument(
                "invalid_idempotency_key", "idempotency_key is too long", field="idempotency_key"
            )
        async with self.pool.acquire() as conn, conn.transaction():
            previous = await self._owned(conn, merchant_id, key_id, mode_scope)
            successor = await api_key_repository.get_successor(conn, uuid.UUID(previous.id))
            if successor is not None:
                if idempotency_key and successor.roll_idempotency_key == idempotency_key:
                    return RolledKey(successor, "", previous)
                raise FailedPrecondition("already_rolled", "this key was already rolled; roll its successor")
            rolled = await key_changes.roll_locked(
                conn,
                previous,
                now=datetime.now(UTC),
                grace_period_seconds=grace,
                idempotency_key=idempotency_key or None,
                revoke_previous=False,
                actor={"actor": clean_actor(actor)},
                ends_at_field="previous_expires_at",
            )
        self.verifier.invalidate(previous.id)
        return rolled

    async def revoke(
        self, *, merchant_id: str, key_id: str, mode_scope: KeyMode | None, actor: str = ""
    ) -> StoredApiKey:
        async with self.pool.acquire() as conn, conn.transaction():
            key = await self._owned(conn, merchant_id, key_id, mode_scope)
            if key.revoked_at is not None:
                return key
            revoked = await key_changes.revoke_locked(conn, key.id, actor={"actor": clean_actor(actor)})
        # At once on this replica; the NOTIFY, delivered at commit, reaches the others.
        self.verifier.invalidate(key.id)
        return revoked

    async def list(
        self, *, merchant_id: str, mode: KeyMode | None, limit: int, starting_after: str, session_id: str = ""
    ) -> tuple[list[StoredApiKey], bool]:
        """The merchant's keys of `mode`, newest first; with `session_id`, only that session's."""
        merchant_uuid = required_uuid(merchant_id, "merchant_id")
        session_uuid = required_uuid(session_id, "session_id") if session_id else None
        if limit == 0:
            limit = DEFAULT_LIST_LIMIT
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidArgument("invalid_limit", "limit must be between 1 and 100", field="limit")
        async with self.pool.acquire() as conn:
            after = None
            if starting_after:
                cursor_uuid = parse_uuid(starting_after)
                after = (
                    None
                    if cursor_uuid is None
                    else await api_key_repository.cursor_position(conn, merchant_uuid, mode, cursor_uuid)
                )
                if after is None:
                    raise cursor_refused()
            rows = await api_key_repository.list_for_merchant(
                conn, merchant_uuid, mode=mode, limit=limit + 1, after=after, session_id=session_uuid
            )
        return rows[:limit], len(rows) > limit
