from __future__ import annotations

import uuid

import pytest

from paygate_dev.devtools.signing import encode_body, new_standard_webhook_secret, sign_standard
from paygate_dev.devtools.stripe_fixtures import build_onecom_event, build_web3_hint
from webhook_gateway.providers.errors import WebhookRejected
from webhook_gateway.providers.normalized import VerifiedEnvelope
from webhook_gateway.providers.standard_webhooks import (
    normalize_onecom,
    parse_web3_hint,
    validate_standard_secret,
    verify_standard,
)

NOW = 1_750_000_000
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OLD_SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
SESSION = str(uuid.uuid4())


def _body(event_type: str = "payment.succeeded", amount: int | str = 9999, currency: str = "eur") -> bytes:
    return encode_body(build_onecom_event(event_type, SESSION, amount, currency, transaction_id="txn_1"))


def _reject_code(raw: bytes, headers: dict[str, str], secrets: list[str] | None = None) -> str:
    with pytest.raises(WebhookRejected) as caught:
        verify_standard(raw, headers, secrets or [SECRET], now=NOW)
    return caught.value.code


def test_valid_delivery_uses_webhook_id_as_event_id() -> None:
    raw = _body()
    envelope = verify_standard(raw, sign_standard(raw, "msg_1", SECRET, NOW), [SECRET], now=NOW)
    assert (envelope.event_id, envelope.event_type, envelope.signed_at) == ("msg_1", "payment.succeeded", NOW)
    assert envelope.payload["data"]["session_id"] == SESSION


def test_header_names_are_case_insensitive() -> None:
    raw = _body()
    headers = {name.upper(): value for name, value in sign_standard(raw, "msg_1", SECRET, NOW).items()}
    assert verify_standard(raw, headers, [SECRET], now=NOW).event_id == "msg_1"


def test_wrong_secret() -> None:
    raw = _body()
    assert (
        _reject_code(raw, sign_standard(raw, "msg_1", new_standard_webhook_secret(), NOW))
        == "invalid_signature"
    )


def test_changed_body() -> None:
    raw = _body()
    headers = sign_standard(raw, "msg_1", SECRET, NOW)
    assert _reject_code(raw.replace(b"9999", b"1"), headers) == "invalid_signature"


def test_changed_message_id_breaks_the_signature() -> None:
    raw = _body()
    headers = sign_standard(raw, "msg_1", SECRET, NOW) | {"webhook-id": "msg_2"}
    assert _reject_code(raw, headers) == "invalid_signature"


@pytest.mark.parametrize("missing", ["webhook-signature", "webhook-id", "webhook-timestamp"])
def test_missing_headers(missing: str) -> None:
    raw = _body()
    headers = sign_standard(raw, "msg_1", SECRET, NOW)
    del headers[missing]
    assert _reject_code(raw, headers) == "missing_signature"


@pytest.mark.parametrize("signature", ["v1", "v1,", "v1,not base64!", "v2,AAAA", "garbage", "v1a,AAAA"])
def test_malformed_signature_values_are_refused_not_crashed(signature: str) -> None:
    raw = _body()
    headers = sign_standard(raw, "msg_1", SECRET, NOW) | {"webhook-signature": signature}
    assert _reject_code(raw, headers) == "invalid_signature"


# aiohttp hands a header's non-UTF-8 bytes over as lone surrogates ("\udce9" for a Latin-1 0xE9): such a
# header must be refused as the caller's fault (400), not mistaken for a missing secret (503).
@pytest.mark.parametrize("signature", ["v1,\udce9\udce9", "v1,\u00e9AAA", "v1,\u0661\u0662\u0663\u0664"])
def test_non_ascii_signature_values_are_refused_not_crashed(signature: str) -> None:
    raw = _body()
    headers = sign_standard(raw, "msg_1", SECRET, NOW) | {"webhook-signature": signature}
    assert _reject_code(raw, headers) == "invalid_signature"


@pytest.mark.parametrize("msg_id", ["msg_\udce9", "msg_\ud800"])
def test_unencodable_message_id_is_refused_not_crashed(msg_id: str) -> None:
    raw = _body()
    headers = sign_standard(raw, "msg_1", SECRET, NOW) | {"webhook-id": msg_id}
    assert _reject_code(raw, headers) == "missing_event_id"


@pytest.mark.parametrize("timestamp", ["1.75e9", "abc", "-1750000000", "1750000000.5"])
def test_malformed_timestamps(timestamp: str) -> None:
    raw = _body()
    headers = sign_standard(raw, "msg_1", SECRET, NOW) | {"webhook-timestamp": timestamp}
    assert _reject_code(raw, headers) == "invalid_signature"


@pytest.mark.parametrize("offset", [-600, 600, -301, 301])
def test_timestamp_out_of_tolerance_in_both_directions(offset: int) -> None:
    raw = _body()
    assert (
        _reject_code(raw, sign_standard(raw, "msg_1", SECRET, NOW + offset)) == "timestamp_out_of_tolerance"
    )


def test_far_future_timestamp_is_refused_not_crashed() -> None:
    raw = _body()
    headers = sign_standard(raw, "msg_1", SECRET, NOW) | {"webhook-timestamp": "99999999999"}
    assert _reject_code(raw, headers) == "timestamp_out_of_tolerance"


def test_rotation_with_two_secrets_and_two_signatures() -> None:
    raw = _body()
    old_only = sign_standard(raw, "msg_1", OLD_SECRET, NOW)
    both = sign_standard(raw, "msg_1", OLD_SECRET, NOW, also_sign_with=[SECRET])
    assert len(both["webhook-signature"].split(" ")) == 2
    assert verify_standard(raw, old_only, [SECRET, OLD_SECRET], now=NOW).event_id == "msg_1"
    assert verify_standard(raw, both, [SECRET], now=NOW).event_id == "msg_1"
    assert _reject_code(raw, old_only, [SECRET]) == "invalid_signature"


@pytest.mark.parametrize(
    ("raw", "code"), [(b"{not json", "invalid_json"), (b"[]", "not_an_object"), (b"42", "not_an_object")]
)
def test_signed_but_unusable_bodies(raw: bytes, code: str) -> None:
    assert _reject_code(raw, sign_standard(raw, "msg_1", SECRET, NOW)) == code


def test_secret_validation() -> None:
    validate_standard_secret(new_standard_webhook_secret())
    for bad in ["", "whsec_", "whsec_c2hvcnQ="]:
        with pytest.raises(ValueError):
            validate_standard_secret(bad)


def _envelope(body: dict[str, object], event_id: str = "msg_9") -> VerifiedEnvelope:
    return VerifiedEnvelope(event_id, str(body.get("type", "")), body, encode_body(body))


@pytest.mark.parametrize(
    ("event_type", "kind", "amount"),
    [
        ("payment.succeeded", "succeeded", 9999),
        ("payment.pending", "pending", None),
        ("payment.failed", "failed", None),
    ],
)
def test_onecom_event_types(event_type: str, kind: str, amount: int | None) -> None:
    normalized = normalize_onecom(_envelope(build_onecom_event(event_type, SESSION, 9999, "eur", "txn_7")))
    assert normalized.kind == kind
    assert (normalized.provider, normalized.event_id, normalized.event_type) == (
        "onecom",
        "msg_9",
        event_type,
    )
    assert (normalized.session_id, normalized.provider_reference) == (SESSION, "txn_7")
    assert (normalized.amount_minor, normalized.currency) == (amount, "EUR")


def test_onecom_amount_as_digit_string() -> None:
    normalized = normalize_onecom(
        _envelope(build_onecom_event("payment.succeeded", SESSION, "123456", "JPY"))
    )
    assert (normalized.amount_minor, normalized.exponent) == (123456, 0)


@pytest.mark.parametrize("amount", [99.99, -5, "-5", "12.50", "1e3", True, None, "", [1]])
def test_onecom_bad_amounts_are_stored_as_malformed(amount: object) -> None:
    raw = encode_body(build_onecom_event("payment.succeeded", SESSION, 1, "EUR")).replace(
        b'"amount_minor":1', b'"amount_minor":' + encode_body({"a": amount})[5:-1]
    )
    envelope = verify_standard(raw, sign_standard(raw, "msg_1", SECRET, NOW), [SECRET], now=NOW)
    normalized = normalize_onecom(envelope)
    assert normalized.kind is None
    assert normalized.ignore_reason == "malformed_payload"


def test_onecom_unknown_type_and_missing_session() -> None:
    assert (
        normalize_onecom(_envelope({"type": "payment.captured", "data": {}})).ignore_reason == "unknown_type"
    )
    body = build_onecom_event("payment.succeeded", SESSION, 100, "EUR")
    del body["data"]["session_id"]
    assert normalize_onecom(_envelope(body)).ignore_reason == "no_session_reference"
    assert (
        normalize_onecom(_envelope({"type": "payment.failed", "data": "x"})).ignore_reason
        == "malformed_payload"
    )


def test_web3_hint() -> None:
    tx = "0x" + "AB" * 32
    hint = parse_web3_hint(_envelope(build_web3_hint(31337, tx, SESSION)))
    assert not hint.ignored
    assert (hint.chain_id, hint.tx_hash, hint.session_id) == (31337, tx.lower(), SESSION)


@pytest.mark.parametrize(
    "body",
    [
        {"type": "transaction.detected", "data": {"chain_id": 1, "tx_hash": "0x1234"}},
        {"type": "transaction.detected", "data": {"chain_id": 0, "tx_hash": "0x" + "a" * 64}},
        {"type": "transaction.detected", "data": {"chain_id": 1.5, "tx_hash": "0x" + "a" * 64}},
        {"type": "transaction.detected", "data": None},
    ],
)
def test_web3_hint_malformed(body: dict[str, object]) -> None:
    assert parse_web3_hint(_envelope(body)).ignore_reason == "malformed_payload"


def test_web3_hint_unknown_type() -> None:
    assert parse_web3_hint(_envelope({"type": "block.mined", "data": {}})).ignore_reason == "unknown_type"
