"""The one writer of a merchant's refund (contract §8), shared by POST /v1/sessions/{id}/refund (routes_refunds)
and the dashboard's Refund action (routes_dashboard): route modules never import each other.

`request_refund` checks what only the gateway can check (a web3 refund's tx on the chain of the session's mode;
whether this gateway has the provider's API for the mode), records the refund with the session service (which
keeps the Idempotency-Key with the refund and refuses what its ledger does not allow), then asks the provider
when the refund goes through one. See routes_refunds for the whole story of a refund.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import grpc
from aiohttp import web

from paygate.session.v1 import session_pb2
from paygate_runtime.api_objects import STATUS_NAMES
from paygate_runtime.errors import InvalidArgument
from paygate_runtime.money import Money, format_major, parse_amount
from webhook_gateway.adapters.payment_providers import PaymentProvider, mode_of
from webhook_gateway.adapters.provider_errors import ProviderError
from webhook_gateway.adapters.refund_asks_repository import RefundAsk
from webhook_gateway.chain.refund_verification import RefundTxRefused, verify_refund_tx
from webhook_gateway.chain.verification import ChainUnavailable
from webhook_gateway.entrypoints.app_keys import CLIENTS, PROVIDER_CHECKOUTS, REFUND_ASKS, WEB3_SERVICES
from webhook_gateway.entrypoints.http_errors import ApiError, raise_for_rpc_error
from webhook_gateway.entrypoints.merchant_auth import AuthenticatedMerchant
from webhook_gateway.service_layer.refund_asks import ask_provider

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChainRefundFields:
    """The web3-only fields of a refund request."""

    tx_hash: str  # lower-case 0x hex, "" when absent
    from_address: str  # "" when absent


_TX_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def chain_refund_fields(tx_hash: object, from_address: object) -> ChainRefundFields:
    """`tx_hash` and `from_address` as the API's JSON and the dashboard's form give them (None when absent):
    0x hex each, else 400 naming the field. One parser for both, so the two cannot accept different input."""
    if tx_hash is None:
        tx_text = ""
    elif not isinstance(tx_hash, str) or not _TX_HASH.fullmatch(tx_hash.strip()):
        raise ApiError(400, "invalid_tx_hash", "tx_hash: 0x followed by 64 hex digits")
    else:
        tx_text = tx_hash.strip().lower()
    if from_address is None:
        from_text = ""
    elif not isinstance(from_address, str) or not _ADDRESS.fullmatch(from_address.strip()):
        raise ApiError(400, "invalid_from_address", "from_address: 0x followed by 40 hex digits")
    else:
        from_text = from_address.strip()
    return ChainRefundFields(tx_text, from_text)


def provider_api(request: web.Request, session: session_pb2.Session) -> PaymentProvider | None:
    """The provider API that refunds this session's payment, when this gateway has one for its mode."""
    provider = request.app[PROVIDER_CHECKOUTS].provider_for(session)
    if provider is None or not provider.available(mode_of(session)):
        return None
    return provider


@dataclass(frozen=True, slots=True)
class RefundMade:
    """What one refund request made (or, `replayed`, had made under the same idempotency key)."""

    refund: session_pb2.Refund
    session: session_pb2.Session  # the session after it
    extra: dict[str, Any]  # `provider_error` when the provider refused the refund
    replayed: bool


async def request_refund(
    request: web.Request,
    merchant: AuthenticatedMerchant,
    session: session_pb2.Session,
    *,
    amount: str,
    reason: str,
    provider_refund_id: str = "",
    chain: ChainRefundFields = ChainRefundFields("", ""),
    idempotency_key: str = "",
    fingerprint: str = "",
    actor: str,
) -> RefundMade:
    """The one writer of a merchant's refund, for the JSON route and the dashboard alike: checks what only the
    gateway can (a web3 tx on chain, the provider API of the session's mode), records the refund with the
    session service (which keeps `idempotency_key`), then asks the provider when it goes through one.
    ApiError (or an RPC error raised as one) when refused; `actor` names who asks in the audit trail."""
    chain_tx_hash = ""
    if session.provider == "web3":
        if provider_refund_id:
            raise ApiError(
                400,
                "invalid_provider_refund_id",
                "a web3 refund is identified by its tx_hash, not provider_refund_id",
            )
        amount, chain_tx_hash = await _verify_on_chain(request, session, amount, chain)
    elif chain.tx_hash or chain.from_address:
        raise ApiError(
            400,
            "invalid_tx_hash" if chain.tx_hash else "invalid_from_address",
            "tx_hash and from_address are for refunds of web3 sessions only",
        )
    provider = provider_api(request, session)
    if provider is not None and provider_refund_id:
        raise ApiError(
            409,
            "use_provider",
            f"refunds of this {session.provider} session go through {session.provider}'s API: "
            "leave out provider_refund_id and paygate asks the provider",
        )
    sessions = request.app[CLIENTS].session
    try:
        reply = await sessions.RefundSession(
            session_pb2.RefundSessionRequest(
                **merchant.scope,
                session_id=session.id,
                amount=amount,
                reason=reason,
                idempotency_key=idempotency_key,
                request_fingerprint=fingerprint if idempotency_key else "",
                via_provider=provider is not None,
                provider_refund_id=provider_refund_id,
                chain_tx_hash=chain_tx_hash,
                actor=actor,
            )
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    refund, after = reply.refund, reply.session
    extra: dict[str, Any] = {}
    if (
        provider is not None
        and refund.status == "pending"
        and refund.origin == "merchant"
        and not refund.provider_refund_id
    ):
        refund, after, extra = await _ask_provider(request, merchant, provider, after, refund)
    return RefundMade(refund, after, extra, reply.replayed)


async def _ask_provider(
    request: web.Request,
    merchant: AuthenticatedMerchant,
    provider: PaymentProvider,
    session: session_pb2.Session,
    refund: session_pb2.Refund,
) -> tuple[session_pb2.Refund, session_pb2.Session, dict[str, Any]]:
    """Ask the provider to refund, then record its refund id (or its refusal) on paygate's refund."""
    if not session.paid_reference:
        raise ApiError(409, "payment_unknown", "the payment of this session has no provider reference")
    ask = RefundAsk(
        refund_id=refund.id,
        merchant_id=merchant.merchant_id,
        mode=mode_of(session),
        session_id=session.id,
        provider=session.provider,
        paid_reference=session.paid_reference,
        amount_minor=int(refund.amount.amount_minor),
        currency=refund.amount.currency,
        exponent=refund.amount.exponent,
    )
    try:
        asked = await ask_provider(provider, request.app[CLIENTS].session, ask)
    except ProviderError:
        # The request may or may not have reached the provider: the refund stays pending (its amount
        # reserved) and paygate asks again under the same provider idempotency key until it answers. A new
        # refund request would be a second refund.
        await request.app[REFUND_ASKS].keep(ask)
        log.warning("provider refund failed; asking again later", extra={"refund_id": refund.id})
        raise ApiError(
            503,
            "provider_unavailable",
            f"{session.provider} could not be reached; the refund {refund.id} stays pending and paygate asks "
            f"{session.provider} again until it answers. Do not send a new refund for it: the same request with "
            "the same Idempotency-Key answers its state",
        ) from None
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    extra: dict[str, Any] = {"provider_error": asked.provider_error} if asked.provider_error else {}
    return asked.refund, asked.session, extra


def refundable_minor(session: session_pb2.Session) -> int:
    """What may still be refunded, as the session service counts it: price - credited - pending."""
    credited = sum(int(r.credited.amount_minor or 0) for r in session.refunds)
    pending = sum(int(r.amount.amount_minor or 0) for r in session.refunds if r.status == "pending")
    return max(0, int(session.amount.amount_minor) - credited - pending)


async def _verify_on_chain(
    request: web.Request, session: session_pb2.Session, amount: str, chain: ChainRefundFields
) -> tuple[str, str]:
    """Check a web3 refund's tx on the chain of the session's mode; (the refund's amount in major units, the
    verified tx hash). Refusals are 4xx with the codes of refund_verification; nothing is recorded."""
    if not chain.tx_hash:
        raise ApiError(
            400,
            "missing_tx_hash",
            "tx_hash: a web3 refund names the transaction that sent the money back; paygate verifies it on chain",
        )
    earlier = next((r for r in session.refunds if r.provider_refund_id == chain.tx_hash), None)
    if earlier is not None:
        # The same tx again (a retry, even after it refunded the last cent): the session service answers the
        # refund it made, without reading the chain again.
        return format_major(int(earlier.amount.amount_minor), earlier.amount.exponent), chain.tx_hash
    # The state is checked before the chain, so that a refused request answers what is really wrong.
    if session.status == session_pb2.SESSION_STATUS_REFUNDED:
        raise ApiError(409, "session_refunded", "this session is already fully refunded")
    if session.status != session_pb2.SESSION_STATUS_PAID:
        raise ApiError(
            409,
            "session_not_paid",
            f"only a paid session can be refunded, this one is {status_name(session)}",
        )
    exponent, currency = session.amount.exponent, session.amount.currency
    refundable = refundable_minor(session)
    wanted: int | None = None
    if amount:
        try:
            wanted = parse_amount(amount, currency, exponent, int(session.amount.amount_minor)).amount_minor
        except InvalidArgument as error:
            raise ApiError(400, error.code, error.message) from None
        if wanted > refundable:
            raise ApiError(
                400,
                "amount_too_large",
                # Worded as the session service words it for the card rails ("2.60 EUR").
                f"at most {Money(refundable, currency, exponent).display()} can still be refunded",
            )
    elif refundable == 0:
        raise ApiError(409, "refund_in_progress", "pending refunds already cover the rest of the amount")
    service = request.app[WEB3_SERVICES].get(mode_of(session))
    if service is None or not service.configured:
        raise ApiError(
            409,
            "chain_not_configured",
            f"this gateway has no chain for {mode_of(session)} sessions to verify on",
        )
    assert service.w3 is not None and service.settings is not None
    payers = sorted(
        {
            row.from_address
            for row in await service.repo.for_session(session.id)
            if row.canonical and row.from_address
        }
    )
    if not payers:
        raise ApiError(
            409, "refund_payer_unknown", "paygate holds no on-chain deposit of this session to refund to"
        )
    sources = [session.payment.deposit_address] + ([chain.from_address] if chain.from_address else [])
    try:
        verified = await verify_refund_tx(
            service.w3,
            chain.tx_hash,
            expected_chain_id=session.payment.chain_id,
            token=session.payment.token or None,
            sources=sources,
            payers=payers,
            min_amount_minor=wanted if wanted is not None else 1,
            min_confirmations=session.payment.min_confirmations,
        )
    except RefundTxRefused as refused:
        raise ApiError(refused.status, refused.code, refused.message) from None
    except ChainUnavailable:
        log.warning("chain node failed while verifying a refund", extra={"session_id": session.id})
        raise ApiError(
            503, "unavailable", "the chain node could not be reached; retry the same request"
        ) from None
    # Without an amount the refund is what the tx sent back, never more than is still refundable.
    minor = wanted if wanted is not None else min(verified.amount_minor, refundable)
    return format_major(minor, exponent), verified.tx_hash


def status_name(session: session_pb2.Session) -> str:
    return STATUS_NAMES.get(session.status, "unknown")
