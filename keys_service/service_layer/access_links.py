"""Customer access tokens: issue (idempotent per session), rebuild the link, verify, revoke, publish keys."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from keys_service.adapters import access_token_repository, audit_log
from keys_service.adapters.access_token_repository import StoredAccessToken
from keys_service.domain.access_tokens import (
    DEFAULT_LEEWAY_SECONDS,
    TOKEN_INVALID,
    TOKEN_REVOKED,
    AccessClaims,
    SigningKeyring,
    build_claims,
    jwks,
    mail_proof,
    mail_proof_matches,
    new_jti,
    opaque_subject,
    verify_access_token,
)
from keys_service.domain.api_keys import KeyMode
from keys_service.domain.audit_events import AuditEvent
from keys_service.domain.ids import parse_uuid, required_uuid
from keys_service.service_layer.known_merchants import KnownMerchants
from paygate_runtime.audit_actor import clean_actor
from paygate_runtime.errors import FailedPrecondition, InvalidArgument, NotFound, Unauthenticated


@dataclass(frozen=True, slots=True)
class AccessLink:
    url: str
    token: str
    stored: StoredAccessToken
    # `url` with the proof that the visitor read the customer's mail (for that mail only).
    mail_url: str = ""

    def __repr__(self) -> str:
        return f"AccessLink(jti={self.stored.claims.jti!r})"


@dataclass(frozen=True, slots=True)
class PreparedToken:
    """A checked issue request with the claims of the token it would create."""

    claims: AccessClaims
    merchant_id: uuid.UUID
    mode: KeyMode


@dataclass(frozen=True, slots=True)
class VerifiedAccess:
    claims: AccessClaims
    merchant_id: str
    # The opened link carried this token's mail proof.
    mail_proven: bool = False


@dataclass(frozen=True)
class AccessTokenSettings:
    keyring: SigningKeyring
    issuer: str
    audience: str
    subject_secret: bytes
    public_url: str
    leeway_seconds: int = DEFAULT_LEEWAY_SECONDS

    def __repr__(self) -> str:
        return f"AccessTokenSettings(issuer={self.issuer!r}, audience={self.audience!r}, kids={self.keyring.kids})"


class AccessTokenService:
    def __init__(self, pool: asyncpg.Pool, settings: AccessTokenSettings, merchants: KnownMerchants) -> None:
        self.pool = pool
        self.settings = settings
        self.merchants = merchants
        self._jwks_json = json.dumps(jwks(settings.keyring), separators=(",", ":"))

    def link_for(self, stored: StoredAccessToken) -> AccessLink:
        """Re-sign the stored claims with the stored kid: Ed25519 is deterministic, so it is the same token."""
        if stored.kid not in self.settings.keyring.kids:
            raise FailedPrecondition(
                "signing_key_retired", "the key this link was signed with is no longer configured"
            )
        token = self.settings.keyring.sign(stored.claims, stored.kid)
        url = f"{self.settings.public_url}/access?token={token}"
        proof = mail_proof(stored.claims.jti, self.settings.subject_secret)
        return AccessLink(url, token, stored, mail_url=f"{url}&proof={proof}")

    async def issue(
        self, *, merchant_id: str, session_id: str, mode: KeyMode, customer_email: str = ""
    ) -> StoredAccessToken:
        prepared = await self.prepare_issue(
            merchant_id=merchant_id, session_id=session_id, mode=mode, customer_email=customer_email
        )
        return await self.write_issue(self.pool, prepared)

    async def prepare_issue(
        self, *, merchant_id: str, session_id: str, mode: KeyMode, customer_email: str = ""
    ) -> PreparedToken:
        """The checked request and the claims of a new token (a retry's are dropped unseen)."""
        merchant_uuid = required_uuid(merchant_id, "merchant_id")
        session_uuid = required_uuid(session_id, "session_id")
        await self.merchants.key_prefix(merchant_uuid)  # NOT_FOUND for an unknown merchant
        settings = self.settings
        claims = build_claims(
            iss=settings.issuer,
            aud=settings.audience,
            # Keyed HMAC, scoped to the merchant: the mail address never enters the token, and two merchants'
            # subjects for one person do not link. With an email, one customer's purchases from this merchant
            # share the subject (the portal lists all their receipts, contract §12); without, it is per session.
            sub=opaque_subject(
                str(merchant_uuid), customer_email.strip() or str(session_uuid), settings.subject_secret
            ),
            sid=str(session_uuid),
            iat=datetime.now(UTC),
            jti=new_jti(),
        )
        return PreparedToken(claims, merchant_uuid, mode)

    async def write_issue(
        self, conn: asyncpg.Connection | asyncpg.Pool, prepared: PreparedToken
    ) -> StoredAccessToken:
        """THE writer of a session's first token, on the caller's connection (alone, or in a batch's
        transaction). As for keys: one statement, the token and its audit row or the token a retry got."""
        fresh, stored = await access_token_repository.issue_for_session(
            conn,
            prepared.claims,
            kid=self.settings.keyring.active_kid,
            merchant_id=prepared.merchant_id,
            mode=prepared.mode,
            audit_event=AuditEvent.ACCESS_TOKEN_ISSUED,
        )
        return stored if fresh else self._same_issue(stored, str(prepared.merchant_id), prepared.mode)

    @staticmethod
    def _same_issue(existing: StoredAccessToken, merchant_id: str, mode: KeyMode) -> StoredAccessToken:
        if existing.merchant_id != merchant_id or existing.mode is not mode:
            raise FailedPrecondition(
                "session_token_conflict", "this session already has a token of another merchant or mode"
            )
        return existing

    async def link(self, *, session_id: str, merchant_scope: str) -> AccessLink:
        if not session_id:
            raise InvalidArgument("missing_session_id", "session_id is required", field="session_id")
        session_uuid = parse_uuid(session_id)
        stored = (
            None
            if session_uuid is None
            else await access_token_repository.by_session(self.pool, session_uuid)
        )
        if stored is None or (merchant_scope and stored.merchant_id != merchant_scope):
            raise NotFound("not_found", "no access token for this session")
        if stored.revoked_at is not None:
            raise FailedPrecondition("access_token_revoked", "this session's access token was revoked")
        return self.link_for(stored)

    async def verify(self, token: str, proof: str = "") -> VerifiedAccess:
        """The stored token's claims; `proof`, the opened link's, tells whether it came from the customer's
        mail (VerifiedAccess.mail_proven)."""
        settings = self.settings
        claims = verify_access_token(
            token,
            settings.keyring,
            issuer=settings.issuer,
            audience=settings.audience,
            now=datetime.now(UTC),
            leeway_seconds=settings.leeway_seconds,
        )
        jti = parse_uuid(claims.jti)
        stored = None if jti is None else await access_token_repository.by_jti(self.pool, jti)
        # A genuine signature on claims we never stored means a leaked signing key; refuse it all the same.
        if stored is None or stored.claims.sid != claims.sid:
            raise Unauthenticated(TOKEN_INVALID, "access token is not known")
        if stored.revoked_at is not None:
            raise Unauthenticated(TOKEN_REVOKED, "access token was revoked")
        proven = mail_proof_matches(claims.jti, proof, settings.subject_secret)
        return VerifiedAccess(claims, stored.merchant_id, mail_proven=proven)

    async def revoke(self, *, jti: str, merchant_scope: str) -> StoredAccessToken:
        if not jti:
            raise InvalidArgument("missing_jti", "jti is required", field="jti")
        jti_uuid = parse_uuid(jti)
        async with self.pool.acquire() as conn, conn.transaction():
            stored = (
                None
                if jti_uuid is None
                else await access_token_repository.by_jti(conn, jti_uuid, for_update=True)
            )
            if stored is None or (merchant_scope and stored.merchant_id != merchant_scope):
                raise NotFound("not_found", "access token not found")
            if stored.revoked_at is not None:
                return stored
            assert jti_uuid is not None
            revoked = await access_token_repository.revoke(conn, jti_uuid)
            await audit_log.record(
                conn,
                AuditEvent.ACCESS_TOKEN_REVOKED,
                object_type="access_token",
                object_id=str(jti_uuid),
                merchant_id=stored.merchant_id,
                session_id=stored.claims.sid,
            )
        return revoked

    async def _locked_tokens(
        self, conn: asyncpg.Connection, session_id: str, merchant_id: str, mode: KeyMode
    ) -> tuple[uuid.UUID, StoredAccessToken]:
        """The session's newest token under lock. Another merchant's or mode's session, a malformed id and a
        session that never had a link are all NOT_FOUND."""
        merchant_uuid = required_uuid(merchant_id, "merchant_id")
        session_uuid = parse_uuid(session_id)
        newest = (
            None
            if session_uuid is None
            else await access_token_repository.lock_session_tokens(conn, session_uuid)
        )
        if newest is None or newest.merchant_id != str(merchant_uuid) or newest.mode is not mode:
            raise NotFound("not_found", "no access link for this session")
        assert session_uuid is not None
        return session_uuid, newest

    async def revoke_links(self, *, session_id: str, merchant_id: str, mode: KeyMode, actor: str = "") -> int:
        """Revoke every access link of a session at once; how many were still standing. The portal checks its
        session's token on every request (and VerifyAccessToken reads revoked_at), so nothing is cached."""
        async with self.pool.acquire() as conn, conn.transaction():
            session_uuid, newest = await self._locked_tokens(conn, session_id, merchant_id, mode)
            revoked = await access_token_repository.revoke_session(conn, session_uuid)
            for jti in revoked:
                await audit_log.record(
                    conn,
                    AuditEvent.ACCESS_TOKEN_REVOKED,
                    object_type="access_token",
                    object_id=jti,
                    merchant_id=newest.merchant_id,
                    session_id=session_uuid,
                    details={"actor": clean_actor(actor)},
                )
        return len(revoked)

    async def reissue(
        self, *, session_id: str, merchant_id: str, mode: KeyMode, actor: str = ""
    ) -> AccessLink:
        """Revoke the session's links and issue a fresh 7-day one for the same customer (same opaque `sub`)."""
        settings = self.settings
        async with self.pool.acquire() as conn, conn.transaction():
            session_uuid, newest = await self._locked_tokens(conn, session_id, merchant_id, mode)
            merchant_uuid = uuid.UUID(newest.merchant_id)
            revoked = await access_token_repository.revoke_session(conn, session_uuid)
            claims = build_claims(
                iss=settings.issuer,
                aud=settings.audience,
                sub=newest.claims.sub,
                sid=str(session_uuid),
                iat=datetime.now(UTC),
                jti=new_jti(),
            )
            stored, generation = await access_token_repository.insert_generation(
                conn, claims, kid=settings.keyring.active_kid, merchant_id=merchant_uuid, mode=mode
            )
            who = clean_actor(actor)
            for jti in revoked:
                await audit_log.record(
                    conn,
                    AuditEvent.ACCESS_TOKEN_REVOKED,
                    object_type="access_token",
                    object_id=jti,
                    merchant_id=merchant_uuid,
                    session_id=session_uuid,
                    details={"actor": who, "reason": "reissue"},
                )
            await audit_log.record(
                conn,
                AuditEvent.ACCESS_TOKEN_REISSUED,
                object_type="access_token",
                object_id=claims.jti,
                merchant_id=merchant_uuid,
                session_id=session_uuid,
                details={"actor": who, "generation": generation, "kid": stored.kid, "exp": claims.exp},
            )
        return self.link_for(stored)

    def jwks_json(self) -> str:
        return self._jwks_json
