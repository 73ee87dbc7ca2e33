"""What the dashboard's Refund action offers and asks (the handlers are in routes_dashboard): whether a session can
be refunded from the dashboard, its refundable rest, the form's amount parsed exactly, and the sentences of the
confirm page. The refund itself is made by refund_requests.request_refund, the writer the JSON route uses too.

Offered as the API accepts it: a paid session (partly refunded ones too) with something left that no pending
refund holds. Not offered, each with a sentence saying why:
- while a formal dispute (chargeback) is open: the disputed money is held by the card network, and a refund now
  could pay the customer twice (Stripe does not refund a payment under a formal dispute). The API refuses it
  too (409 `dispute_open`, session_service.domain.refunds). During an inquiry (Stripe's pre-dispute retrieval,
  `dispute_kind` "inquiry") no money was withdrawn and the charge stays refundable: Refund is offered, with a
  sentence that a refund usually settles the inquiry.

Web3 sessions get "Record a refund you sent" instead of Refund: their refund is a transaction the merchant sends
from their own wallet, which the dashboard cannot send. The form names that transaction (its hash; the sending
address when it is not the session's deposit address; a reason) and goes straight to request_refund, as
`POST /v1/sessions/{id}/refund` with `tx_hash` does: the gateway reads the tx back from the session's chain, and
the refund is what it sent back to the payer (capped at the refundable rest), so the form asks no amount and
needs no confirm page (it records money already moved; it moves none). Its nonce is the Idempotency-Key, and a
tx hash is one refund: the same form, or another naming the same tx, records nothing twice. A tx without its
confirmations yet, or a node that cannot be reached, records nothing: the merchant sends the form again later.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from paygate.session.v1 import session_pb2
from paygate_runtime.errors import InvalidArgument
from paygate_runtime.money import MAX_AMOUNT_MINOR, format_major, parse_amount
from webhook_gateway.entrypoints import dashboard_views as views
from webhook_gateway.entrypoints.http_errors import ApiError
from webhook_gateway.entrypoints.refund_requests import (
    ChainRefundFields,
    chain_refund_fields,
    refundable_minor,
    status_name,
)

MAX_REASON = 500  # as the API (routes_refunds) and the session service accept it
_MAX_AMOUNT_CHARS = 40
_MAX_TYPED = 100  # the maxlength of the tx and address inputs

# The refusal codes of POST /v1/sessions/{id}/refund (and this form's own), as the merchant reads them here.
REFUSALS = {
    "session_refunded": "This session is already fully refunded: there is nothing left to refund.",
    "session_not_paid": "Only a paid session can be refunded.",
    "refund_in_progress": "Refunds still pending already cover the rest of this session; wait until the "
    "provider confirms or refuses them.",
    "amount_too_large": "That is more than can still be refunded.",
    "amount_not_positive": "Enter an amount greater than zero.",
    "invalid_amount": "Enter the amount in the session's currency, such as 12.50.",
    "amount_too_precise": "The amount has more decimal places than the session's currency has.",
    "invalid_reason": f"The reason is too long ({MAX_REASON} characters at most).",
    "dispute_open": "A dispute (chargeback) of this payment is open: refund once it is closed.",
    "web3_refund": "A web3 payment is refunded by a transaction you send yourself: record it with "
    '"Record a refund you sent" on the session\'s page.',
    "use_provider": "This session's refunds go through its provider.",
    "payment_unknown": "The provider's reference of this payment is unknown, so it cannot be asked to refund.",
    "provider_unavailable": "The provider could not be reached. The refund stays pending and paygate asks "
    "again until the provider answers: do not refund it again.",
    "already_submitted": "That refund form was already submitted, so nothing was refunded again.",
    # Recording a web3 refund the merchant sent (the codes of refund_requests and refund_verification).
    "missing_tx_hash": "Enter the hash of the refund transaction you sent.",
    "invalid_tx_hash": "That is not a transaction hash: it is 0x followed by 64 hex digits, as your wallet or "
    "block explorer shows it.",
    "invalid_from_address": "The sending address is 0x followed by 40 hex digits. Leave it empty when you sent "
    "the refund from the session's deposit address.",
    "refund_tx_not_found": "That transaction was not found on chain: check the hash, and that you sent it on "
    "the session's network. Nothing was recorded.",
    "refund_tx_unconfirmed": "That transaction does not have enough confirmations yet, so nothing was recorded: "
    "try again in a minute.",
    "refund_tx_no_matching_transfer": "That transaction does not send the session's asset from its deposit "
    "address (or from the sending address you named) back to the address that paid, or sends less than the "
    "refund: nothing was recorded.",
    "refund_tx_failed": "That transaction failed on chain and moved nothing: nothing was recorded.",
    "refund_tx_wrong_chain": "That transaction is not on the session's network: nothing was recorded.",
    "refund_tx_already_used": "That transaction is already recorded as the refund of another session: a "
    "transaction is one refund. Nothing was recorded.",
    "refund_payer_unknown": "paygate holds no on-chain payment of this session, so it cannot check a refund to "
    "the payer. Nothing was recorded.",
    "chain_not_configured": "This gateway reads no chain for this mode's sessions, so it cannot check the "
    "refund. Nothing was recorded.",
    "unavailable": "The chain node or a paygate service could not be reached, so nothing was recorded: try "
    "again in a minute.",
    "idempotency_conflict": "That form was already used for another refund: reload the page and fill in the "
    "new form.",
}

# The outcome of "Record a refund you sent", said on the session's page (the refund named by its id, read back
# from the session: nothing the URL carries is shown but a code).
CHAIN_NOTICES = {
    "chain_refund_recorded": "Recorded: your refund of {amount} (transaction {tx}) was verified on chain. "
    "paygate moved no money; it issues the refund's credit note.",
    "chain_refund_already_recorded": "Transaction {tx} is already recorded as a refund of {amount}: a "
    "transaction is one refund, so nothing was recorded again.",
}


def refusal_text(code: str, message: str) -> str:
    return views.refusal_text(code, message, REFUSALS)


# How the pages name a session's provider ("paygate asks Stripe to refund ...").
PROVIDER_NAMES = {"stripe": "Stripe", "onecom": "One.com"}


def provider_name(provider: str) -> str:
    return PROVIDER_NAMES.get(provider, provider)


@dataclass(frozen=True)
class RefundOffer:
    """The Refund action of one session's page: offered, or the code and sentence saying why not."""

    refundable_minor: int
    currency: str
    exponent: int
    provider: str  # as the pages name it: "Stripe", "One.com"
    via_provider: bool
    refused_code: str = ""
    why_not: str = ""
    # An inquiry of the payment is open: the page says a refund usually settles it.
    inquiry: bool = False

    @property
    def available(self) -> bool:
        return not self.refused_code

    @property
    def records_chain_tx(self) -> bool:
        """A web3 session's page offers "Record a refund you sent" where card sessions offer Refund."""
        return self.refused_code == "web3_refund"

    @property
    def default_amount(self) -> str:
        """The whole refundable rest in major units, as the amount field shows it ("25.00")."""
        return format_major(self.refundable_minor, self.exponent)

    def money(self, minor: int) -> str:
        return views.money_text(minor, self.exponent, self.currency)

    def refused(self) -> ApiError:
        return ApiError(409, self.refused_code, self.why_not)


def refund_offer(session: session_pb2.Session, *, via_provider: bool) -> RefundOffer:
    """What the session's page offers; checked again when the form is confirmed."""
    rest = refundable_minor(session)
    offer = RefundOffer(
        refundable_minor=rest,
        currency=session.amount.currency,
        exponent=session.amount.exponent,
        provider=provider_name(session.provider),
        via_provider=via_provider,
        inquiry=_open_inquiry(session),
    )
    refused = _why_not(session, rest)
    if refused is None:
        return offer
    code, sentence = refused
    return dataclasses.replace(offer, refused_code=code, why_not=sentence)


def _why_not(session: session_pb2.Session, rest: int) -> tuple[str, str] | None:
    if session.status == session_pb2.SESSION_STATUS_REFUNDED:
        return "session_refunded", "this session is already fully refunded"
    if session.status != session_pb2.SESSION_STATUS_PAID:
        return "session_not_paid", f"only a paid session can be refunded, this one is {status_name(session)}"
    if session.provider == "web3":
        return (
            "web3_refund",
            "paygate cannot send a web3 refund: send it from your wallet to the address that paid, then record "
            'it with "Record a refund you sent" (or POST /v1/sessions/{id}/refund naming its tx_hash), which '
            "paygate verifies on chain",
        )
    if session.dispute_status == "open" and not _open_inquiry(session):
        return (
            "dispute_open",
            "a dispute of this payment is open (a chargeback: the card network holds the money); refund once it "
            "is closed",
        )
    if rest == 0:
        return "refund_in_progress", "pending refunds already cover the rest of the amount"
    return None


def _open_inquiry(session: session_pb2.Session) -> bool:
    # Only an inquiry is refundable while open; a dispute of no known kind is a chargeback, as the API rules.
    return session.dispute_status == "open" and session.dispute_kind == "inquiry"


@dataclass(frozen=True)
class RefundPlan:
    """What the confirm page says will happen, and what its form sends."""

    amount_minor: int
    amount: str  # major units, the session's exponent ("10.00"): the form's field, sent as the API's `amount`
    amount_text: str  # "10.00 EUR"
    rest_text: str  # what stays refundable after it, "15.00 EUR"
    rest_minor: int
    reason: str
    via_provider: bool
    provider: str


def plan_refund(offer: RefundOffer, amount_field: object, reason_field: object) -> RefundPlan:
    """The refund the form asks for: the amount typed in major units (empty: the whole rest), parsed exactly
    by the money module; ApiError 400 naming the code otherwise, 409 when the session offers no refund."""
    if not offer.available:
        raise offer.refused()
    text = amount_field.strip() if isinstance(amount_field, str) else ""
    if len(text) > _MAX_AMOUNT_CHARS:
        raise ApiError(400, "invalid_amount", "amount: not an amount")
    if text:
        try:
            # Bounded by the largest amount paygate holds; the refundable rest is compared below, in the API's words.
            minor = parse_amount(text, offer.currency, offer.exponent, MAX_AMOUNT_MINOR).amount_minor
        except InvalidArgument as error:
            raise ApiError(400, error.code, error.message) from None
    else:
        minor = offer.refundable_minor
    if minor > offer.refundable_minor:
        raise ApiError(
            400, "amount_too_large", f"at most {offer.money(offer.refundable_minor)} can still be refunded"
        )
    reason = _reason(reason_field)
    rest = offer.refundable_minor - minor
    return RefundPlan(
        amount_minor=minor,
        amount=format_major(minor, offer.exponent),
        amount_text=offer.money(minor),
        rest_text=offer.money(rest),
        rest_minor=rest,
        reason=reason,
        via_provider=offer.via_provider,
        provider=offer.provider,
    )


@dataclass(frozen=True)
class ChainRefundForm:
    """What "Record a refund you sent" sends to request_refund: the tx (and its sender), and the reason."""

    chain: ChainRefundFields
    reason: str

    def fingerprint_fields(self) -> dict[str, str]:
        """The request the form's nonce stands for: the same nonce with other fields is another request."""
        return {"tx_hash": self.chain.tx_hash, "from_address": self.chain.from_address, "reason": self.reason}


def chain_refund_form(tx_field: object, from_field: object, reason_field: object) -> ChainRefundForm:
    """The form's fields, checked by the API's own parser of `tx_hash` and `from_address`: ApiError 400 naming
    the code, so that a malformed hash is a sentence on the page, never a failure deeper down. An empty field is
    an absent one (an absent hash is the writer's `missing_tx_hash`, refused before anything is read)."""
    chain = chain_refund_fields(_field(tx_field) or None, _field(from_field) or None)
    return ChainRefundForm(chain, _reason(reason_field))


def chain_refund_typed(tx_field: object, from_field: object, reason_field: object) -> dict[str, str]:
    """The form's fields as typed, for the page that refuses them to show again (cut to what the inputs hold;
    the template escapes them)."""
    return {
        "tx_hash": _field(tx_field)[:_MAX_TYPED],
        "from_address": _field(from_field)[:_MAX_TYPED],
        "reason": _field(reason_field)[:MAX_REASON],
    }


def _field(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _reason(reason_field: object) -> str:
    """A form's reason, as the API bounds it: ApiError 400 `invalid_reason` past MAX_REASON."""
    reason = _field(reason_field)
    if len(reason) > MAX_REASON:
        raise ApiError(400, "invalid_reason", f"reason: at most {MAX_REASON} characters")
    return reason


def chain_refund_notice(session: session_pb2.Session, code: str | None, refund_id: str | None) -> str | None:
    """The sentence of a recorded web3 refund, for the page the form redirects to; None when the code or the
    refund (one of this session's, with its tx) is not one of ours."""
    wording = CHAIN_NOTICES.get(code or "")
    if wording is None or session.provider != "web3":
        return None
    refund = next(
        (r for r in session.refunds if refund_id and r.id == refund_id and r.provider_refund_id), None
    )
    if refund is None:
        return None
    amount = views.money_text(int(refund.amount.amount_minor), refund.amount.exponent, refund.amount.currency)
    return wording.format(amount=amount, tx=refund.provider_refund_id)
