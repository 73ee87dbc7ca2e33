"""Why a refund failed (Stripe's refund `failure_reason`): kept by the Stripe normaliser on a failed refund only,
bounded to a short lowercase token (anything else is `unknown`, never a refused event), and carried through the
stored normalised form (rows stored before the field have none)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paygate_dev.devtools.signing import encode_body, sign_stripe
from paygate_runtime.refund_failures import MAX_FAILURE_REASON, failure_reason_of, failure_wording
from webhook_gateway.providers.normalized import NormalizedEvent, RefundInfo
from webhook_gateway.providers.normalized_json import dump_normalized, load_normalized
from webhook_gateway.providers.stripe_webhooks import normalize_stripe, verify_stripe

NOW = 1_750_000_000
SECRET = "whsec_failure_reason_tests"


def _refund_event(status: str, **extra: Any) -> dict[str, Any]:
    refund = {
        "id": "re_3QfailureReason",
        "object": "refund",
        "amount": 1000,
        "currency": "eur",
        "charge": "ch_3QfailureReason",
        "payment_intent": "pi_3QfailureReason",
        "status": status,
        "metadata": {"paygate_refund_id": str(uuid.uuid4())},
        **extra,
    }
    return {
        "id": "evt_" + uuid.uuid4().hex,
        "object": "event",
        "type": "refund.updated",
        "created": NOW - 5,
        "livemode": False,
        "data": {"object": refund},
    }


def _normalize(event: dict[str, Any]) -> NormalizedEvent:
    raw = encode_body(event)
    return normalize_stripe(verify_stripe(raw, sign_stripe(raw, SECRET, NOW), [SECRET], now=NOW))


def _refund(event: NormalizedEvent) -> RefundInfo:
    assert event.kind == "refunded", event
    assert event.money_back is not None
    [refund] = event.money_back.refunds
    return refund


@pytest.mark.parametrize(
    "reason",
    [
        "charge_for_pending_refund_disputed",
        "declined",
        "expired_or_canceled_card",
        "insufficient_funds",
        "lost_or_stolen_card",
        "merchant_request",
        "unknown",
        "a_value_stripe_adds_later",
    ],
)
def test_a_failed_refund_keeps_stripes_reason(reason: str) -> None:
    refund = _refund(_normalize(_refund_event("failed", failure_reason=reason)))
    assert (refund.status, refund.failure_reason) == ("failed", reason)


@pytest.mark.parametrize("status", ["succeeded", "pending", "canceled", "requires_action"])
def test_only_a_failed_refund_has_a_reason(status: str) -> None:
    refund = _refund(_normalize(_refund_event(status, failure_reason="declined")))
    assert refund.failure_reason is None


def test_a_failed_refund_without_a_reason_has_none() -> None:
    assert _refund(_normalize(_refund_event("failed"))).failure_reason is None
    assert _refund(_normalize(_refund_event("failed", failure_reason=None))).failure_reason is None


@pytest.mark.parametrize(
    "odd",
    [
        "x" * (MAX_FAILURE_REASON + 1),
        "Declined",
        "declined; DROP TABLE",
        "",
        " declined",
        "d\u00e9clin\u00e9",
        42,
        True,
        {},
        [],
    ],
)
def test_an_odd_reason_is_unknown_not_a_refused_event(odd: object) -> None:
    refund = _refund(_normalize(_refund_event("failed", failure_reason=odd)))
    assert (refund.status, refund.failure_reason) == ("failed", "unknown")


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=120), st.integers(), st.booleans()))
def test_any_reason_normalises_to_a_bounded_token_and_round_trips(value: object) -> None:
    event = _normalize(_refund_event("failed", failure_reason=value))
    refund = _refund(event)
    if value is None:
        assert refund.failure_reason is None
    else:
        reason = refund.failure_reason
        assert reason is not None and 0 < len(reason) <= MAX_FAILURE_REASON
        assert reason == (value if failure_reason_of(value) == value else "unknown")
        assert reason.replace("_", "").isalnum() and reason.isascii() and reason == reason.lower()
    assert load_normalized(dump_normalized(event)) == event


@given(st.from_regex(r"[a-z][a-z0-9_]{0,63}", fullmatch=True))
def test_every_short_lowercase_token_is_kept(token: str) -> None:
    assert failure_reason_of(token) == token


def test_a_row_stored_before_the_field_is_read_afresh_from_its_body() -> None:
    """The form of version 1 (a refund of four items, no reason) is refused, so the relay and a replay normalise
    the raw body again and the failed refund reaches the session with the reason Stripe gave."""
    event = _normalize(_refund_event("failed", failure_reason="declined"))
    stored = json.loads(dump_normalized(event))
    [item] = stored["money_back"]["refunds"]
    assert item[-1] == "declined"
    stored["v"], stored["money_back"]["refunds"] = 1, [item[:4]]  # as version 1 wrote it
    with pytest.raises(ValueError, match="another version"):
        load_normalized(json.dumps(stored))
    stored["v"] = 2  # four items under the current version: damaged
    with pytest.raises(ValueError, match="a refund is not"):
        load_normalized(json.dumps(stored))


def test_a_damaged_stored_reason_is_refused() -> None:
    event = _normalize(_refund_event("failed", failure_reason="declined"))
    stored = json.loads(dump_normalized(event))
    stored["money_back"]["refunds"][0][4] = 7
    with pytest.raises(ValueError):
        load_normalized(json.dumps(stored))


def test_merchant_wording() -> None:
    assert "expired or was canceled" in failure_wording("expired_or_canceled_card")
    assert failure_wording("a_value_stripe_adds_later") == "a_value_stripe_adds_later"
