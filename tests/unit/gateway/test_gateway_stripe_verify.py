from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest

from paygate_dev.devtools.signing import encode_body, sign_stripe
from paygate_dev.devtools.stripe_fixtures import build_stripe_event
from webhook_gateway.providers.errors import WebhookRejected
from webhook_gateway.providers.stripe_webhooks import verify_stripe

NOW = 1_750_000_000
SECRET = "whsec_current_0123456789abcdef"
OLD_SECRET = "whsec_previous_0123456789abcdef"


def _event_body() -> bytes:
    event = build_stripe_event(
        "payment_intent.succeeded", str(uuid.uuid4()), 9999, "EUR", event_id="evt_test_1", created=NOW
    )
    return encode_body(event)


def _reject_code(raw: bytes, header: str | None, secrets: list[str] | None = None) -> str:
    with pytest.raises(WebhookRejected) as caught:
        verify_stripe(raw, header, secrets or [SECRET], now=NOW)
    return caught.value.code


def test_valid_signature_gives_the_parsed_event() -> None:
    raw = _event_body()
    envelope = verify_stripe(raw, sign_stripe(raw, SECRET, NOW), [SECRET], now=NOW)
    assert envelope.event_id == "evt_test_1"
    assert envelope.event_type == "payment_intent.succeeded"
    assert envelope.raw is raw
    assert envelope.signed_at == NOW
    assert type(envelope.payload) is dict
    assert envelope.payload == json.loads(raw)


def test_wrong_secret_is_refused() -> None:
    raw = _event_body()
    assert _reject_code(raw, sign_stripe(raw, "whsec_someone_else", NOW)) == "invalid_signature"


def test_body_changed_after_signing_is_refused() -> None:
    raw = _event_body()
    header = sign_stripe(raw, SECRET, NOW)
    tampered = raw.replace(b'"amount_received":9999', b'"amount_received":1')
    assert tampered != raw
    assert _reject_code(tampered, header) == "invalid_signature"


def test_reserialised_json_no_longer_verifies() -> None:
    raw = _event_body()
    header = sign_stripe(raw, SECRET, NOW)
    assert _reject_code(json.dumps(json.loads(raw), indent=2).encode(), header) == "invalid_signature"


@pytest.mark.parametrize("header", [None, "", "   "])
def test_missing_signature_header(header: str | None) -> None:
    assert _reject_code(_event_body(), header) == "missing_signature"


@pytest.mark.parametrize(
    "header", ["garbage", "t=abc,v1=00", "v1=deadbeef", "t=1750000000", "t=1750000000,v0=ab"]
)
def test_unparseable_signature_header(header: str) -> None:
    assert _reject_code(_event_body(), header) == "invalid_signature"


# stripe-python compares signatures with hmac.compare_digest, which raises TypeError on non-ASCII text; a
# header carrying any (aiohttp passes non-UTF-8 bytes on as lone surrogates) is the caller's fault: 400.
@pytest.mark.parametrize(
    "header",
    [f"t={NOW},v1=\u00e9\u00e9", f"t={NOW},v1=\udce9", f"t={NOW},v1=\u0661\u0662", f"t=\u0661{NOW},v1=00"],
)
def test_non_ascii_signature_header_is_refused_not_crashed(header: str) -> None:
    assert _reject_code(_event_body(), header) == "invalid_signature"


@pytest.mark.parametrize("age", [600, 301])
def test_timestamp_too_old(age: int) -> None:
    raw = _event_body()
    assert _reject_code(raw, sign_stripe(raw, SECRET, NOW - age)) == "timestamp_out_of_tolerance"


@pytest.mark.parametrize("ahead", [600, 301])
def test_timestamp_in_the_future(ahead: int) -> None:
    raw = _event_body()
    assert _reject_code(raw, sign_stripe(raw, SECRET, NOW + ahead)) == "timestamp_out_of_tolerance"


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_timestamp_at_the_edges_of_tolerance_is_accepted(offset: int) -> None:
    raw = _event_body()
    assert (
        verify_stripe(raw, sign_stripe(raw, SECRET, NOW + offset), [SECRET], now=NOW).signed_at
        == NOW + offset
    )


def test_rotation_any_configured_secret_verifies() -> None:
    raw = _event_body()
    signed_with_old = sign_stripe(raw, OLD_SECRET, NOW)
    signed_with_new = sign_stripe(raw, SECRET, NOW)
    for header in (signed_with_old, signed_with_new):
        assert verify_stripe(raw, header, [SECRET, OLD_SECRET], now=NOW).event_id == "evt_test_1"
    # Once the old secret is dropped from the configuration, its signatures stop working.
    assert _reject_code(raw, signed_with_old, [SECRET]) == "invalid_signature"


def test_rotation_any_v1_value_in_the_header_verifies() -> None:
    raw = _event_body()
    header = sign_stripe(raw, OLD_SECRET, NOW, also_sign_with=[SECRET])
    assert header.count("v1=") == 2
    assert verify_stripe(raw, header, [SECRET], now=NOW).event_id == "evt_test_1"
    assert verify_stripe(raw, header, [OLD_SECRET], now=NOW).event_id == "evt_test_1"
    assert _reject_code(raw, header, ["whsec_unrelated"]) == "invalid_signature"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"id": "evt_1", "type": ', "invalid_json"),
        (b'{"id": "evt_1", "amount": NaN}', "invalid_json"),
        (b"[1, 2, 3]", "not_an_object"),
        (b'"evt_1"', "not_an_object"),
        (b"null", "not_an_object"),
        (b'{"type": "payment_intent.succeeded"}', "missing_event_id"),
        (b'{"id": "", "type": "payment_intent.succeeded"}', "missing_event_id"),
        (b'{"id": 12, "type": "payment_intent.succeeded"}', "missing_event_id"),
    ],
)
def test_signed_but_unusable_bodies(raw: bytes, code: str) -> None:
    assert _reject_code(raw, sign_stripe(raw, SECRET, NOW)) == code


def test_deeply_nested_json_is_refused_not_crashed() -> None:
    raw = b"[" * 100_000 + b"]" * 100_000
    assert _reject_code(raw, sign_stripe(raw, SECRET, NOW)) == "invalid_json"


def test_non_utf8_body_is_refused() -> None:
    raw = b'{"id": "evt_\xff"}'
    assert _reject_code(raw, f"t={NOW},v1=" + "0" * 64) == "invalid_signature"


def test_floats_are_parsed_as_decimal() -> None:
    raw = b'{"id": "evt_1", "type": "x", "amount": 10.10}'
    envelope = verify_stripe(raw, sign_stripe(raw, SECRET, NOW), [SECRET], now=NOW)
    assert envelope.payload["amount"] == Decimal("10.10")


def test_no_configured_secret_is_a_deployment_error() -> None:
    raw = _event_body()
    with pytest.raises(ValueError):
        verify_stripe(raw, sign_stripe(raw, SECRET, NOW), [], now=NOW)
    with pytest.raises(ValueError):
        verify_stripe(raw, sign_stripe(raw, SECRET, NOW), ["  "], now=NOW)
