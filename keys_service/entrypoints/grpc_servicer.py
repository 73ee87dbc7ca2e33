"""gRPC adapter of the keys service: translate messages, call the service layer, translate back.

Domain errors raised below are mapped to a status and a stable `paygate-error-code` by the shared RPC wrapper
(`paygate_runtime.grpc_server.guarded_rpc`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import grpc

from keys_service.adapters.access_token_repository import StoredAccessToken
from keys_service.adapters.key_messages import KEY_STATUS_ENUM, api_key_message
from keys_service.adapters.merchant_repository import StoredMerchant
from keys_service.domain.api_keys import KeyMode
from keys_service.domain.key_status import KeyStatus, VerifyResult
from keys_service.domain.merchant_keys import MerchantKeyFacts, MerchantKeyStatus
from keys_service.service_layer import session_access
from keys_service.service_layer.access_links import AccessLink, AccessTokenService
from keys_service.service_layer.customer_access import AccessRequest, CustomerAccessService
from keys_service.service_layer.customer_keys import CustomerKeyService
from keys_service.service_layer.customer_portal import CustomerPortalService
from keys_service.service_layer.key_verifier import KeyVerifier
from keys_service.service_layer.merchants import MerchantService
from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2, keys_pb2_grpc
from paygate_runtime.audit_listing import list_audit_entries
from paygate_runtime.errors import DomainError, InvalidArgument
from paygate_runtime.grpc_errors import item_error
from paygate_runtime.proto_convert import mode_enum, optional_datetime, timestamp

log = logging.getLogger(__name__)
# Built from the shared wire table once: key verification is the hottest RPC and looks the mode up per call.
_KEY_MODE_BY_ENUM: dict[int, KeyMode] = {mode_enum(mode): mode for mode in KeyMode}
_NOT_FOUND_REPLY = keys_pb2.VerifyKeyResponse(status=keys_pb2.KEY_STATUS_NOT_FOUND)
_MERCHANT_KEY_STATUS_ENUM = {
    MerchantKeyStatus.ACTIVE: keys_pb2.MERCHANT_KEY_STATUS_ACTIVE,
    MerchantKeyStatus.EXPIRING: keys_pb2.MERCHANT_KEY_STATUS_EXPIRING,
    MerchantKeyStatus.REVOKED: keys_pb2.MERCHANT_KEY_STATUS_REVOKED,
    MerchantKeyStatus.EXPIRED: keys_pb2.MERCHANT_KEY_STATUS_EXPIRED,
}


def _mode_or_default(value: int) -> KeyMode:
    """UNSPECIFIED means test (merchant creation)."""
    return _scope_mode(value) or KeyMode.TEST


def _required_mode(value: int) -> KeyMode:
    mode = _scope_mode(value)
    if mode is None:
        raise InvalidArgument("missing_mode", "mode must be test or live", field="mode")
    return mode


def _scope_mode(value: int) -> KeyMode | None:
    return _KEY_MODE_BY_ENUM.get(value)


def _given_scopes(
    request: keys_pb2.IssueCustomerKeyRequest | keys_pb2.CustomerAccessItem,
) -> list[str] | None:
    """The merchant's grant as the caller gave it; None when not given (the default ["*"]). With set_scopes
    an empty list stays empty, so it is refused instead of granting every scope."""
    if request.set_scopes or request.scopes:
        return list(request.scopes)
    return None


def merchant_message(merchant: StoredMerchant) -> keys_pb2.Merchant:
    return keys_pb2.Merchant(
        id=merchant.id,
        name=merchant.name,
        key_prefix=merchant.key_prefix,
        created_at=timestamp(merchant.created_at),
    )


def merchant_key_message(key: MerchantKeyFacts, now: datetime | None = None) -> keys_pb2.MerchantKey:
    message = keys_pb2.MerchantKey(
        id=key.id,
        merchant_id=key.merchant_id,
        mode=mode_enum(key.mode),
        prefix=key.prefix,
        last4=key.last4,
        status=_MERCHANT_KEY_STATUS_ENUM[key.status_at(now or datetime.now(UTC))],
        created_at=timestamp(key.created_at),
        rolled_from_id=key.rolled_from_id or "",
    )
    for field in ("last_used_at", "expires_at", "revoked_at"):
        value = getattr(key, field)
        if value is not None:
            getattr(message, field).CopyFrom(timestamp(value))
    return message


def access_link_message(link: AccessLink) -> keys_pb2.AccessLink:
    return keys_pb2.AccessLink(
        url=link.url,
        token=link.token,
        access_token=access_token_message(link.stored),
        mail_url=link.mail_url,
    )


def access_token_message(stored: StoredAccessToken) -> keys_pb2.AccessToken:
    claims = stored.claims
    message = keys_pb2.AccessToken(
        id=claims.jti,
        session_id=claims.sid,
        merchant_id=stored.merchant_id,
        subject=claims.sub,
        kid=stored.kid,
        issued_at=timestamp(claims.issued_at),
        expires_at=timestamp(claims.expires_at),
    )
    if stored.revoked_at is not None:
        message.revoked_at.CopyFrom(timestamp(stored.revoked_at))
    return message


def verify_reply(result: VerifyResult) -> keys_pb2.VerifyKeyResponse:
    if result.status is KeyStatus.NOT_FOUND:
        return _NOT_FOUND_REPLY
    return keys_pb2.VerifyKeyResponse(
        status=KEY_STATUS_ENUM[result.status],
        key_id=result.key_id,
        merchant_id=result.merchant_id,
        session_id=result.session_id,
        mode=mode_enum(result.mode) if result.mode else common_pb2.MODE_UNSPECIFIED,
        scopes=result.scopes,
    )


class KeysServicer(keys_pb2_grpc.KeysServiceServicer):
    def __init__(
        self,
        merchants: MerchantService,
        customer_keys: CustomerKeyService,
        verifier: KeyVerifier,
        access: AccessTokenService,
        portal: CustomerPortalService | None = None,
        customer_access: CustomerAccessService | None = None,
    ) -> None:
        self.merchants = merchants
        self.customer_keys = customer_keys
        self.verifier = verifier
        self.access = access
        self.portal = portal or CustomerPortalService(customer_keys.pool, verifier)
        self.customer_access = customer_access or CustomerAccessService(
            customer_keys.pool, customer_keys, access, customer_keys.merchants
        )

    # Merchants

    async def ListAuditEntries(
        self, request: common_pb2.ListAuditEntriesRequest, context: grpc.aio.ServicerContext
    ) -> common_pb2.ListAuditEntriesResponse:
        # The merchant's hash-chained audit of this service (issue 20, GET /v1/audit).
        return await list_audit_entries(self.customer_keys.pool, "keys", request)

    async def CreateMerchant(
        self, request: keys_pb2.CreateMerchantRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.CreateMerchantResponse:
        created = await self.merchants.create(
            name=request.name,
            key_prefix=request.key_prefix,
            mode=_mode_or_default(request.mode),
            idempotency_key=request.idempotency_key,
            actor=request.actor,
        )
        return keys_pb2.CreateMerchantResponse(
            merchant=merchant_message(created.merchant),
            secret_key=created.secret,
            secret_key_id=created.secret_key_id,
        )

    async def GetMerchant(
        self, request: keys_pb2.GetMerchantRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.Merchant:
        return merchant_message(await self.merchants.get(request.merchant_id))

    async def CreateMerchantSecretKey(
        self, request: keys_pb2.CreateMerchantSecretKeyRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.CreateMerchantSecretKeyResponse:
        created = await self.merchants.create_secret_key(
            merchant_id=request.merchant_id,
            mode=_mode_or_default(request.mode),
            idempotency_key=request.idempotency_key,
            actor=request.actor,
        )
        return keys_pb2.CreateMerchantSecretKeyResponse(
            secret_key=created.secret,
            secret_key_id=created.secret_key_id,
            key=merchant_key_message(created.key),
        )

    async def ListMerchantKeys(
        self, request: keys_pb2.ListMerchantKeysRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.ListMerchantKeysResponse:
        keys, has_more = await self.merchants.list_secret_keys(
            merchant_id=request.merchant_id,
            mode=_scope_mode(request.mode),
            limit=request.limit,
            starting_after=request.starting_after,
        )
        now = datetime.now(UTC)
        return keys_pb2.ListMerchantKeysResponse(
            keys=[merchant_key_message(k, now) for k in keys], has_more=has_more
        )

    async def RollMerchantKey(
        self, request: keys_pb2.RollMerchantKeyRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.RollMerchantKeyResponse:
        rolled = await self.merchants.roll_secret_key(
            merchant_id=request.merchant_id,
            key_id=request.key_id,
            grace_period_seconds=request.grace_period_seconds,
            mode_scope=_scope_mode(request.mode),
            idempotency_key=request.idempotency_key,
            actor=request.actor,
        )
        now = datetime.now(UTC)
        return keys_pb2.RollMerchantKeyResponse(
            key=merchant_key_message(rolled.key, now),
            secret=rolled.secret,
            previous=merchant_key_message(rolled.previous, now),
        )

    async def RevokeMerchantKey(
        self, request: keys_pb2.RevokeMerchantKeyRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.MerchantKey:
        key = await self.merchants.revoke_secret_key(
            merchant_id=request.merchant_id,
            key_id=request.key_id,
            mode_scope=_scope_mode(request.mode),
            actor=request.actor,
        )
        return merchant_key_message(key)

    async def AuthenticateMerchant(
        self, request: keys_pb2.AuthenticateMerchantRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.AuthenticateMerchantResponse:
        found = await self.merchants.authenticate(request.secret_key)
        return keys_pb2.AuthenticateMerchantResponse(
            merchant=merchant_message(found.merchant),
            mode=mode_enum(found.mode),
            secret_key_id=found.key_id,
        )

    # Customer keys

    async def IssueCustomerKey(
        self, request: keys_pb2.IssueCustomerKeyRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.ApiKey:
        key = await self.customer_keys.issue(
            merchant_id=request.merchant_id,
            session_id=request.session_id,
            mode=_required_mode(request.mode),
            metadata=dict(request.metadata),
            scopes=_given_scopes(request),
        )
        return api_key_message(key)

    async def RevealCustomerKey(
        self, request: keys_pb2.RevealCustomerKeyRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.RevealCustomerKeyResponse:
        revealed = await self.customer_keys.reveal(
            session_id=request.session_id, access_token_id=request.access_token_id
        )
        return keys_pb2.RevealCustomerKeyResponse(key=api_key_message(revealed.key), secret=revealed.secret)

    async def GetCustomerKey(
        self, request: keys_pb2.GetCustomerKeyRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.ApiKey:
        key = await self.customer_keys.get_for_session(
            session_id=request.session_id, merchant_scope=request.merchant_id
        )
        return api_key_message(key)

    async def VerifyKey(
        self, request: keys_pb2.VerifyKeyRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.VerifyKeyResponse:
        result = await self.verifier.verify(
            request.key, request.merchant_id or None, _KEY_MODE_BY_ENUM.get(request.mode), request.ip
        )
        return verify_reply(result)

    async def RollKey(
        self, request: keys_pb2.RollKeyRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.RollKeyResponse:
        rolled = await self.customer_keys.roll(
            merchant_id=request.merchant_id,
            key_id=request.key_id,
            grace_period_seconds=request.grace_period_seconds,
            idempotency_key=request.idempotency_key,
            mode_scope=_scope_mode(request.mode),
            actor=request.actor,
        )
        return keys_pb2.RollKeyResponse(
            key=api_key_message(rolled.key), secret=rolled.secret, previous=api_key_message(rolled.previous)
        )

    async def RevokeKey(
        self, request: keys_pb2.RevokeKeyRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.ApiKey:
        key = await self.customer_keys.revoke(
            merchant_id=request.merchant_id,
            key_id=request.key_id,
            mode_scope=_scope_mode(request.mode),
            actor=request.actor,
        )
        return api_key_message(key)

    async def ListKeys(
        self, request: keys_pb2.ListKeysRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.ListKeysResponse:
        keys, has_more = await self.customer_keys.list(
            merchant_id=request.merchant_id,
            mode=_scope_mode(request.mode),
            limit=request.limit,
            starting_after=request.starting_after,
            session_id=request.session_id,
        )
        return keys_pb2.ListKeysResponse(keys=[api_key_message(k) for k in keys], has_more=has_more)

    # Access tokens

    async def IssueAccessToken(
        self, request: keys_pb2.IssueAccessTokenRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.AccessToken:
        stored = await self.access.issue(
            merchant_id=request.merchant_id,
            session_id=request.session_id,
            mode=_required_mode(request.mode),
            customer_email=request.customer_email[:320],
        )
        return access_token_message(stored)

    async def GetAccessLink(
        self, request: keys_pb2.GetAccessLinkRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.AccessLink:
        link = await self.access.link(session_id=request.session_id, merchant_scope=request.merchant_id)
        return access_link_message(link)

    async def IssueCustomerAccess(
        self, request: keys_pb2.IssueCustomerAccessRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.IssueCustomerAccessResponse:
        if not request.items:
            raise InvalidArgument("invalid_batch_size", "at least one item is required", field="items")
        decoded: list[AccessRequest | DomainError] = []
        for item in request.items:
            try:
                decoded.append(
                    AccessRequest(
                        merchant_id=item.merchant_id,
                        session_id=item.session_id,
                        mode=_required_mode(item.mode),
                        metadata=dict(item.metadata),
                        scopes=_given_scopes(item),
                        customer_email=item.customer_email[:320],
                    )
                )
            except DomainError as error:
                decoded.append(error)
        wanted = [d for d in decoded if isinstance(d, AccessRequest)]
        issued = iter(await self.customer_access.issue_many(wanted) if wanted else [])
        results = []
        for item, entry in zip(request.items, decoded, strict=True):
            outcome = entry if isinstance(entry, DomainError) else next(issued)
            result = keys_pb2.CustomerAccessResult(session_id=item.session_id)
            if isinstance(outcome, Exception):
                result.error.CopyFrom(item_error(outcome, "customer access item"))
            else:
                link = outcome.link
                result.access.CopyFrom(
                    keys_pb2.CustomerAccess(
                        key=api_key_message(outcome.key),
                        link=access_link_message(link),
                        merchant_name=outcome.merchant_name,
                    )
                )
            results.append(result)
        return keys_pb2.IssueCustomerAccessResponse(results=results)

    async def VerifyAccessToken(
        self, request: keys_pb2.VerifyAccessTokenRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.AccessTokenClaims:
        verified = await self.access.verify(request.token, request.mail_proof)
        claims = verified.claims
        return keys_pb2.AccessTokenClaims(
            jti=claims.jti,
            session_id=claims.sid,
            subject=claims.sub,
            merchant_id=verified.merchant_id,
            issued_at=timestamp(claims.issued_at),
            expires_at=timestamp(claims.expires_at),
            mail_proven=verified.mail_proven,
        )

    async def RevokeAccessToken(
        self, request: keys_pb2.RevokeAccessTokenRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.AccessToken:
        stored = await self.access.revoke(jti=request.jti, merchant_scope=request.merchant_id)
        return access_token_message(stored)

    async def RevokeAccessLinks(
        self, request: keys_pb2.RevokeAccessLinksRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.RevokeAccessLinksResponse:
        revoked = await self.access.revoke_links(
            session_id=request.session_id,
            merchant_id=request.merchant_id,
            mode=_required_mode(request.mode),
            actor=request.actor,
        )
        return keys_pb2.RevokeAccessLinksResponse(revoked=revoked)

    async def ReissueAccessLink(
        self, request: keys_pb2.ReissueAccessLinkRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.AccessLink:
        link = await self.access.reissue(
            session_id=request.session_id,
            merchant_id=request.merchant_id,
            mode=_required_mode(request.mode),
            actor=request.actor,
        )
        return access_link_message(link)

    async def GetJwks(
        self, request: keys_pb2.GetJwksRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.Jwks:
        return keys_pb2.Jwks(json=self.access.jwks_json())

    # Customer portal (contract §12)

    async def UpdateCustomerKeySettings(
        self, request: keys_pb2.UpdateCustomerKeySettingsRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.ApiKey:
        key = await self.portal.update_settings(
            session_id=request.session_id,
            access_token_id=request.access_token_id,
            scopes=list(request.scopes) if request.set_scopes else None,
            ip_allowlist=list(request.ip_allowlist) if request.set_ip_allowlist else None,
            expires_at=optional_datetime(request, "expires_at"),
        )
        return api_key_message(key)

    async def CustomerRollKey(
        self, request: keys_pb2.CustomerRollKeyRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.RollKeyResponse:
        rolled = await self.portal.roll(
            session_id=request.session_id,
            access_token_id=request.access_token_id,
            current_secret=request.current_secret,
            grace_period_seconds=request.grace_period_seconds,
        )
        return keys_pb2.RollKeyResponse(
            key=api_key_message(rolled.key), secret=rolled.secret, previous=api_key_message(rolled.previous)
        )

    async def CustomerRevokeKey(
        self, request: keys_pb2.CustomerRevokeKeyRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.ApiKey:
        key = await self.portal.revoke(session_id=request.session_id, access_token_id=request.access_token_id)
        return api_key_message(key)

    async def GetCustomerKeyUsage(
        self, request: keys_pb2.GetCustomerKeyUsageRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.CustomerKeyUsage:
        days = await self.portal.usage(session_id=request.session_id, days=request.days)
        return keys_pb2.CustomerKeyUsage(
            days=[keys_pb2.DailyUsage(day=d.isoformat(), count=n) for d, n in days],
            total=sum(n for _d, n in days),
        )

    async def RecordSupportMessage(
        self, request: keys_pb2.RecordSupportMessageRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.RecordSupportMessageResponse:
        await self.portal.record_support_message(
            session_id=request.session_id,
            merchant_id=request.merchant_id,
            chars=request.chars,
            access_token_id=request.access_token_id,
        )
        return keys_pb2.RecordSupportMessageResponse()

    async def ListSubjectSessions(
        self, request: keys_pb2.ListSubjectSessionsRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.ListSubjectSessionsResponse:
        sessions = await self.portal.subject_sessions(
            subject=request.subject,
            merchant_id=request.merchant_id,
            mode=_required_mode(request.mode),
            limit=request.limit,
        )
        return keys_pb2.ListSubjectSessionsResponse(session_ids=sessions)

    # Refunds and disputes (contract §8)

    async def SetSessionKeyAccess(
        self, request: keys_pb2.SetSessionKeyAccessRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.SetSessionKeyAccessResponse:
        changed = await session_access.set_session_key_access(
            self.customer_keys.pool,
            self.verifier,
            session_id=request.session_id,
            merchant_id=request.merchant_id,
            access=request.access,
            reason=request.reason,
        )
        return keys_pb2.SetSessionKeyAccessResponse(
            keys_changed=changed.keys_changed, links_revoked=changed.links_revoked
        )
