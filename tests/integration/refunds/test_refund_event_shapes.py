"""How refund and dispute events in Stripe's real object shapes (and One.com's payment.refunded) are read:
pure, no services (contract §8)."""

from __future__ import annotations

from paygate_dev.devtools.signing import encode_body
from support.refund_flows import charge_refunded, dispute_event, refund_object, stripe_envelope
from webhook_gateway.providers.normalized import RefundInfo, VerifiedEnvelope
from webhook_gateway.providers.standard_webhooks import normalize_onecom
from webhook_gateway.providers.stripe_webhooks import normalize_stripe


def _normalize(event: dict) -> object:  # type: ignore[type-arg]
    raw = encode_body(event)
    return normalize_stripe(VerifiedEnvelope(event["id"], event["type"], event, raw))


def test_charge_refunded_lists_its_refunds_and_stripes_total() -> None:
    refunds = [
        refund_object("re_a", 1000, "pi_1", "ch_1", "succeeded"),
        refund_object("re_b", 500, "pi_1", "ch_1", "requires_action"),
    ]
    event = charge_refunded("pi_1", "ch_1", 5000, refunds, 1500)
    normalized = _normalize(event)
    assert normalized.kind == "refunded" and normalized.provider_reference == "pi_1"  # type: ignore[attr-defined]
    back = normalized.money_back  # type: ignore[attr-defined]
    assert back.charge_id == "ch_1" and back.refunded_total_minor == 1500
    assert back.refunds == (RefundInfo("re_a", 1000, "succeeded"), RefundInfo("re_b", 500, "pending"))


def test_a_refund_that_names_only_its_charge_is_still_findable() -> None:
    event = stripe_envelope("refund.updated", refund_object("re_c", 700, None, "ch_9", "failed"))
    normalized = _normalize(event)
    assert normalized.kind == "refunded" and normalized.provider_reference is None  # type: ignore[attr-defined]
    back = normalized.money_back  # type: ignore[attr-defined]
    assert back.charge_id == "ch_9" and back.refunds == (RefundInfo("re_c", 700, "failed"),)


def test_stripe_units_become_iso_minor_units() -> None:
    refund = refund_object("re_isk", 10000, "pi_isk", "ch_isk")
    refund["currency"] = "isk"
    event = charge_refunded("pi_isk", "ch_isk", 10000, [refund], 10000)
    event["data"]["object"]["currency"] = "isk"
    back = _normalize(event).money_back  # type: ignore[attr-defined]
    assert back.refunded_total_minor == 100 and back.refunds[0].amount_minor == 100


def test_dispute_events_carry_their_action_and_status() -> None:
    for event_type, action in (
        ("charge.dispute.created", "created"),
        ("charge.dispute.closed", "closed"),
        ("charge.dispute.funds_withdrawn", "funds_withdrawn"),
        ("charge.dispute.funds_reinstated", "funds_reinstated"),
    ):
        normalized = _normalize(dispute_event(event_type, "dp_1", "pi_1", "ch_1", 2000, "lost"))
        assert normalized.kind == "disputed"  # type: ignore[attr-defined]
        back = normalized.money_back  # type: ignore[attr-defined]
        assert (back.dispute_id, back.dispute_action, back.dispute_status) == ("dp_1", action, "lost")


def test_a_malformed_refund_is_ignored_not_applied() -> None:
    bad = refund_object("re_x", 100, "pi_1", "ch_1", "exploded")
    assert _normalize(stripe_envelope("refund.created", bad)).ignore_reason == "malformed_payload"  # type: ignore[attr-defined]


def test_onecom_payment_refunded() -> None:
    body = {
        "type": "payment.refunded",
        "data": {
            "session_id": None,
            "transaction_id": "txn_1",
            "refund_id": "rf_1",
            "amount_minor": "250",
            "currency": "EUR",
        },
    }
    normalized = normalize_onecom(
        VerifiedEnvelope("msg_1", "payment.refunded", body, encode_body(body), mode="test")
    )
    assert normalized.kind == "refunded" and normalized.provider_reference == "txn_1"
    assert normalized.money_back is not None and normalized.money_back.refunds == (
        RefundInfo("rf_1", 250, "succeeded"),
    )
    # Without its refund_id it still goes to the session service, naming no refund: quarantined there for
    # the merchant (test_refund_dispute_faults), never an ignored inbox row.
    del body["data"]["refund_id"]
    missing = normalize_onecom(
        VerifiedEnvelope("msg_2", "payment.refunded", body, encode_body(body), mode="test")
    )
    assert missing.kind == "refunded" and missing.ignore_reason is None
    assert missing.money_back is not None and missing.money_back.refunds == ()
    body["data"]["amount_minor"] = 0
    nothing = normalize_onecom(
        VerifiedEnvelope("msg_3", "payment.refunded", body, encode_body(body), mode="test")
    )
    assert nothing.ignore_reason == "malformed_payload"
