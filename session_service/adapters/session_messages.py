"""Stored rows rendered as the session proto messages, and wire enums mapped to domain values.

An adapter (rows and wire messages, no I/O): the gRPC servicers reply with these messages, and the merchant
events render their `data.object` from the same messages (`merchant_event_objects`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2
from paygate_runtime.errors import InvalidArgument
from paygate_runtime.proto_convert import mode_enum, timestamp
from paygate_runtime.proto_convert import mode_name as proto_mode_name
from session_service.domain.customer import Customer, check_customer, customer_from_json
from session_service.domain.modes import Mode
from session_service.domain.payment_events import ApplyOutcome, EventKind, QuarantineDecision
from session_service.domain.payment_settings import AcceptedToken, OnchainSettings, PaymentSettings
from session_service.domain.states import SessionStatus, payment_status

STATUS_TO_PROTO = {
    "created": session_pb2.SESSION_STATUS_CREATED,
    "pending": session_pb2.SESSION_STATUS_PENDING,
    "paid": session_pb2.SESSION_STATUS_PAID,
    "failed": session_pb2.SESSION_STATUS_FAILED,
    "expired": session_pb2.SESSION_STATUS_EXPIRED,
    "refunded": session_pb2.SESSION_STATUS_REFUNDED,
}
STATUS_FROM_PROTO = {v: k for k, v in STATUS_TO_PROTO.items()}
PAYMENT_STATUS = {status.value: payment_status(status).value for status in SessionStatus}
MODE_FROM_PROTO = {common_pb2.MODE_TEST: Mode.TEST, common_pb2.MODE_LIVE: Mode.LIVE}
KIND_FROM_PROTO: dict[int, EventKind] = {
    session_pb2.EVENT_KIND_PENDING: EventKind.PENDING,
    session_pb2.EVENT_KIND_SUCCEEDED: EventKind.SUCCEEDED,
    session_pb2.EVENT_KIND_FAILED: EventKind.FAILED,
    session_pb2.EVENT_KIND_ATTEMPT_FAILED: EventKind.ATTEMPT_FAILED,
    session_pb2.EVENT_KIND_EXPIRED: EventKind.EXPIRED,
    session_pb2.EVENT_KIND_REFUNDED: EventKind.REFUNDED,
    session_pb2.EVENT_KIND_DISPUTED: EventKind.DISPUTED,
}
OUTCOME_TO_PROTO = {
    ApplyOutcome.APPLIED: session_pb2.APPLY_OUTCOME_APPLIED,
    ApplyOutcome.DUPLICATE: session_pb2.APPLY_OUTCOME_DUPLICATE,
    ApplyOutcome.ALREADY_PAID: session_pb2.APPLY_OUTCOME_ALREADY_PAID,
    ApplyOutcome.IGNORED_TERMINAL: session_pb2.APPLY_OUTCOME_IGNORED_TERMINAL,
    ApplyOutcome.AMOUNT_MISMATCH: session_pb2.APPLY_OUTCOME_AMOUNT_MISMATCH,
    ApplyOutcome.OVERPAID: session_pb2.APPLY_OUTCOME_OVERPAID,
    ApplyOutcome.PAYMENT_ON_CLOSED_SESSION: session_pb2.APPLY_OUTCOME_PAYMENT_ON_CLOSED_SESSION,
    ApplyOutcome.MODE_MISMATCH: session_pb2.APPLY_OUTCOME_MODE_MISMATCH,
    ApplyOutcome.PROVIDER_MISMATCH: session_pb2.APPLY_OUTCOME_PROVIDER_MISMATCH,
    ApplyOutcome.RECORDED_FOR_REVIEW: session_pb2.APPLY_OUTCOME_RECORDED_FOR_REVIEW,
    ApplyOutcome.ALREADY_QUARANTINED: session_pb2.APPLY_OUTCOME_ALREADY_QUARANTINED,
}
DECISION_FROM_PROTO = {
    session_pb2.QUARANTINE_DECISION_REFUNDED: QuarantineDecision.REFUNDED,
    session_pb2.QUARANTINE_DECISION_DISMISSED: QuarantineDecision.DISMISSED,
    session_pb2.QUARANTINE_DECISION_ACCEPTED: QuarantineDecision.ACCEPTED,
}


def ts(value: datetime) -> Timestamp:
    return timestamp(value)


def money(minor: Any, currency: str, exponent: int) -> common_pb2.Money:
    return common_pb2.Money(amount_minor=str(int(minor)), currency=currency, exponent=exponent)


def session_message(row: Mapping[str, Any]) -> session_pb2.Session:
    message = session_pb2.Session(
        id=str(row["id"]),
        merchant_id=str(row["merchant_id"]),
        mode=mode_enum(row["mode"]),
        status=STATUS_TO_PROTO[row["status"]],
        payment_status=PAYMENT_STATUS[row["status"]],
        amount=money(row["amount_minor"], row["currency"], row["exponent"]),
        provider=row["provider"],
        customer_email=row["customer_email"] or "",
        metadata=json.loads(row["metadata"]) if isinstance(row["metadata"], str) else row["metadata"],
        created_at=ts(row["created_at"]),
        expires_at=ts(row["expires_at"]),
        invoice_id=row["invoice_id"] or "",
        api_key_id=row["api_key_id"] or "",
        access_token_id=row["access_token_id"] or "",
        fulfilment_status=row["fulfilment_status"],
        provider_checkout_url=row["provider_checkout_url"] or "",
        provider_session_id=row["provider_session_id"] or "",
        description=row["description"],
        invoice_number=row["invoice_number"] or "",
        scopes=row.get("scopes") or ["*"],
    )
    customer = customer_from_json(_json(row.get("customer")))
    if customer is not None:
        message.customer.CopyFrom(customer_to_proto(customer))
    if row["paid_at"] is not None:
        message.paid_at.CopyFrom(ts(row["paid_at"]))
    if row["received_minor"] is not None:
        message.amount_received.CopyFrom(
            money(row["received_minor"], row["currency"], row["received_exponent"])
        )
    if row["deposit_address"] is not None:
        message.payment.CopyFrom(web3_payment(row))
    for move in row.get("history") or ():
        message.history.append(
            session_pb2.Transition(
                from_status=STATUS_TO_PROTO[move["from_status"]],
                to_status=STATUS_TO_PROTO[move["to_status"]],
                at=ts(move["at"]),
                source_event_id=move["source_event_id"],
                note=move["note"],
            )
        )
    add_refund_fields(message, row)
    for alert in row.get("alerts") or ():
        message.alerts.append(
            session_pb2.SessionAlert(
                code=alert["code"], detail=alert["detail"], reference=alert["reference"], at=ts(alert["at"])
            )
        )
    return message


def add_refund_fields(message: session_pb2.Session, row: Mapping[str, Any]) -> None:
    """Contract §8: amount_refunded, dispute_status and dispute_kind, and the refunds when the row was read with
    them."""
    refunded = row.get("amount_refunded_minor")
    if refunded is not None:
        message.amount_refunded.CopyFrom(money(refunded, row["currency"], row["exponent"]))
    message.dispute_status = row.get("dispute_status") or ""
    # The kind only of a dispute the session has (an event of a dispute not yet opened may record its kind).
    message.dispute_kind = (row.get("dispute_kind") or "") if message.dispute_status else ""
    message.paid_reference = row.get("paid_reference") or ""
    for refund in row.get("refunds") or ():
        message.refunds.append(refund_message(refund))


def refund_message(row: Mapping[str, Any]) -> session_pb2.Refund:
    return session_pb2.Refund(
        id=str(row["id"]),
        session_id=str(row["session_id"]),
        amount=money(row["amount_minor"], row["currency"], row["exponent"]),
        status=row["status"],
        origin=row["origin"],
        provider_refund_id=row["provider_refund_id"] or "",
        reason=row["reason"],
        credited=money(row["credited_minor"], row["currency"], row["exponent"]),
        credit_note_id=row["credit_note_id"] or "",
        credit_note_number=row["credit_note_number"] or "",
        created_at=ts(row["created_at"]),
        failure_reason=row["failure_reason"] or "",
        replaced_by=str(row["replaced_by"] or ""),
    )


def web3_payment(row: Mapping[str, Any]) -> session_pb2.Web3Payment:
    return session_pb2.Web3Payment(
        chain_id=row["chain_id"],
        deposit_address=row["deposit_address"],
        token=row["token_address"] or "",
        min_confirmations=row["min_confirmations"],
        derivation_index=row["derivation_index"],
    )


def quarantine_message(row: Mapping[str, Any]) -> session_pb2.QuarantineEntry:
    entry = session_pb2.QuarantineEntry(
        id=str(row["id"]),
        merchant_id=str(row["merchant_id"]),
        session_id=str(row["session_id"]),
        reason=row["reason"],
        mode=common_pb2.MODE_LIVE if row["mode"] == "live" else common_pb2.MODE_TEST,
        provider=row["provider"],
        provider_event_id=row["provider_event_id"],
        provider_reference=row["provider_reference"] or "",
        expected=money(row["expected_minor"], row["expected_currency"], row["expected_exponent"]),
        status=row["status"],
        resolution_note=row["resolution_note"],
        note=row.get("note") or "",
        created_at=ts(row["created_at"]),
    )
    if row["amount_minor"] is not None:
        entry.amount.CopyFrom(money(row["amount_minor"], row["amount_currency"], row["amount_exponent"]))
    if row["surplus_minor"] is not None:
        entry.surplus.CopyFrom(money(row["surplus_minor"], row["amount_currency"], row["surplus_exponent"]))
    if row["resolved_at"] is not None:
        entry.resolved_at.CopyFrom(ts(row["resolved_at"]))
    return entry


def settings_message(settings: PaymentSettings) -> session_pb2.PaymentSettings:
    message = session_pb2.PaymentSettings(
        merchant_id=settings.merchant_id,
        default_currency=settings.default_currency,
        next_derivation_index=settings.next_derivation_index,
    )
    if settings.onchain is not None:
        message.onchain.CopyFrom(
            session_pb2.OnchainSettings(
                chain_id=settings.onchain.chain_id,
                xpub=settings.onchain.xpub,
                min_confirmations=settings.onchain.min_confirmations,
                tokens=[
                    session_pb2.AcceptedToken(address=t.address, symbol=t.symbol, decimals=t.decimals)
                    for t in settings.onchain.tokens
                ],
            )
        )
    return message


def onchain_from_message(message: session_pb2.PaymentSettings) -> OnchainSettings | None:
    if not message.HasField("onchain"):
        return None
    onchain = message.onchain
    return OnchainSettings(
        chain_id=onchain.chain_id,
        xpub=onchain.xpub,
        min_confirmations=onchain.min_confirmations,
        tokens=tuple(AcceptedToken(t.address, t.symbol, t.decimals) for t in onchain.tokens),
    )


def event_kind(value: int) -> EventKind:
    kind = KIND_FROM_PROTO.get(value)
    if kind is None:
        raise InvalidArgument("invalid_kind", "kind must be a known event kind", field="kind")
    return kind


def mode_name(value: int) -> str:
    """A session's mode; unspecified is test (the gateway always sets the key's mode)."""
    name = proto_mode_name(value)
    if name is None and value != common_pb2.MODE_UNSPECIFIED:
        raise InvalidArgument("invalid_mode", "mode must be test or live", field="mode")
    return name or "test"


def scope_mode(value: int) -> str | None:
    """The mode a merchant-scoped request acts in: None (no mode scope) only for internal callers that leave
    it unspecified; the gateway always sets its key's mode, and then the other mode's objects are NOT_FOUND."""
    if value == common_pb2.MODE_UNSPECIFIED:
        return None
    return mode_name(value)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def customer_from_proto(customer: session_pb2.SessionCustomer) -> Customer | None:
    """Validated (InvalidArgument naming customer.<field>); None when every field is empty."""
    return check_customer(
        name=customer.name,
        country=customer.country,
        address_lines=tuple(customer.address_lines),
        vat_id=customer.vat_id,
    )


def customer_to_proto(customer: Customer) -> session_pb2.SessionCustomer:
    return session_pb2.SessionCustomer(
        name=customer.name,
        country=customer.country,
        address_lines=list(customer.address_lines),
        vat_id=customer.vat_id,
    )
