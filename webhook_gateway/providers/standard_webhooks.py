"""Standard Webhooks (One.com, the web3 notifier): verification with the `standardwebhooks` library.

`standardwebhooks.Webhook.verify` is not called directly: it reads the wall clock with a fixed 5 min
window, takes one secret, and raises bare ValueError / binascii.Error / UnicodeDecodeError on a signature
token without a comma, bad base64 or a non-UTF-8 body. The library still decodes the `whsec_` secret and
computes the signature (`Webhook.sign`); this module adds an injectable clock, a tolerance in both
directions, several secrets for rotation, and a stable rejection code for every bad input.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final

import standardwebhooks

from paygate_runtime.money.currencies import reported_exponent
from webhook_gateway.providers.errors import WebhookRejected
from webhook_gateway.providers.normalized import (
    EventKind,
    IgnoreReason,
    MoneyBack,
    NormalizedEvent,
    RefundInfo,
    VerifiedEnvelope,
)
from webhook_gateway.providers.payload import (
    MalformedPayload,
    canonical_session_id,
    checked_event_id,
    currency_code,
    event_type_of,
    non_negative_int,
    optional_str,
    parse_json_object,
    required_dict,
)

DEFAULT_TOLERANCE_SECONDS: Final[int] = 300
ONECOM_PROVIDER: Final[str] = "onecom"
ONECOM_EVENT_KINDS: Final[dict[str, EventKind]] = {
    "payment.succeeded": "succeeded",
    "payment.pending": "pending",
    "payment.failed": "failed",
    # Contract §8: a refund at One.com, by refund_id (the same refund twice is one).
    "payment.refunded": "refunded",
}
WEB3_HINT_TYPE: Final[str] = "transaction.detected"

_TIMESTAMP_RE: Final[re.Pattern[str]] = re.compile(r"[0-9]{1,11}")
_TX_HASH_RE: Final[re.Pattern[str]] = re.compile(r"0x[0-9a-fA-F]{64}")


@lru_cache(maxsize=32)
def _webhook(secret: str) -> standardwebhooks.Webhook:
    # Decoding the base64 secret on every delivery is wasted work on the hot path.
    try:
        return standardwebhooks.Webhook(secret)
    except (standardwebhooks.webhooks.EmptyWebhookSecretError, binascii.Error, RuntimeError) as exc:
        raise ValueError(f"invalid Standard Webhooks secret: {type(exc).__name__}") from None


def validate_standard_secret(secret: str) -> None:
    """Raise ValueError unless `secret` is a `whsec_<base64>` secret of 24 to 64 bytes (check at startup)."""
    key_length = len(_webhook(secret)._whsecret)  # the library exposes the decoded key only this way
    if not 24 <= key_length <= 64:
        raise ValueError(f"a Standard Webhooks secret must decode to 24..64 bytes, not {key_length}")


def _passed_signatures(header: str) -> list[bytes]:
    signatures = []
    for token in header.split():
        version, comma, encoded = token.partition(",")
        if version != "v1" or not comma:
            continue  # other schemes (v1a asymmetric) are not ours to check
        try:
            signatures.append(base64.b64decode(encoded, validate=True))
        # binascii.Error, or non-ASCII text, which b64decode refuses with a bare ValueError.
        except ValueError:
            continue
    return signatures


MODES: Final[tuple[str, str]] = ("test", "live")


def secrets_by_mode(secrets: Sequence[str] | Mapping[str, Sequence[str]]) -> dict[str, Sequence[str]]:
    """Per-mode secret lists; a plain list is the test mode's (the unsuffixed variables mean test)."""
    if isinstance(secrets, Mapping):
        unknown = set(secrets) - set(MODES)
        if unknown:
            raise ValueError(f"unknown webhook secret modes {sorted(unknown)}")
        return {mode: list(secrets.get(mode) or ()) for mode in MODES}
    return {"test": list(secrets), "live": []}


def verify_standard(
    raw: bytes,
    headers: Mapping[str, str],
    secrets: Sequence[str] | Mapping[str, Sequence[str]],
    now: int,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> VerifiedEnvelope:
    """Verify a Standard Webhooks delivery against any of `secrets` and parse it.

    `secrets` is one list per mode ({"test": [...], "live": [...]}), or a plain list meaning test. The
    envelope's `mode` is the mode of the secret that verified it: One.com and web3 bodies carry no mode, so
    which secret signed an event is the only trustworthy word on whether it is real money (contract §6a).
    The event id is the `webhook-id` header. Header names are matched case-insensitively.
    Raises WebhookRejected; ValueError if no usable secret is configured.
    """
    by_mode = secrets_by_mode(secrets)
    if not any(by_mode.values()):
        raise ValueError("no Standard Webhooks secret configured")
    webhooks = [(mode, _webhook(secret)) for mode in MODES for secret in by_mode[mode]]
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id", "").strip()
    msg_timestamp = lowered.get("webhook-timestamp", "").strip()
    msg_signature = lowered.get("webhook-signature", "").strip()
    if not msg_signature:
        raise WebhookRejected("missing_signature", "the webhook-signature header is missing")
    if not msg_id or not msg_timestamp:
        raise WebhookRejected("missing_signature", "webhook-id and webhook-timestamp are required")
    if not _TIMESTAMP_RE.fullmatch(msg_timestamp):
        raise WebhookRejected("invalid_signature", "webhook-timestamp must be unix seconds")
    timestamp = int(msg_timestamp)
    # Checked before the signature, as the library does; it also keeps datetime() within its range.
    if timestamp < now - tolerance:
        raise WebhookRejected("timestamp_out_of_tolerance", f"the signature is more than {tolerance} s old")
    if timestamp > now + tolerance:
        raise WebhookRejected(
            "timestamp_out_of_tolerance", f"the signature is more than {tolerance} s in the future"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejected("invalid_signature", "the body is not UTF-8: it was not signed") from None
    # Checked before signing: the signed content is UTF-8, and an id that cannot be encoded (aiohttp hands a
    # header's non-UTF-8 bytes over as lone surrogates) would fail inside the library, not as a refusal.
    event_id = checked_event_id(msg_id, "webhook-id")

    passed = _passed_signatures(msg_signature)
    if not passed:
        raise WebhookRejected("invalid_signature", "webhook-signature has no v1 signature")
    signed_at = datetime.fromtimestamp(timestamp, UTC)
    verified_mode: str | None = None
    for mode, webhook in webhooks:
        expected = base64.b64decode(webhook.sign(msg_id, signed_at, text).partition(",")[2])
        if any(hmac.compare_digest(expected, signature) for signature in passed):
            verified_mode = mode
            break
    else:
        raise WebhookRejected("invalid_signature", "no webhook-signature v1 value matches the body")

    payload = parse_json_object(text)
    return VerifiedEnvelope(
        event_id=event_id,
        event_type=event_type_of(payload),
        payload=payload,
        raw=raw,
        signed_at=timestamp,
        mode=verified_mode,
    )


def normalize_onecom(
    envelope: VerifiedEnvelope, *, iso_exponent: Callable[[str], int] = reported_exponent
) -> NormalizedEvent:
    """Say what a verified One.com event means; never raises for a verified envelope.

    `amount_minor` in the body is already in ISO minor units; it is reported only for payment.succeeded.
    One.com's body has no event time, so `occurred_at` is None.
    """
    common: dict[str, Any] = {
        "provider": ONECOM_PROVIDER,
        "event_id": envelope.event_id,
        "event_type": envelope.event_type,
        # The body carries no mode: the secret that verified the event decided it.
        "livemode": None if envelope.mode is None else envelope.mode == "live",
        "occurred_at": None,
        "session_id": None,
        "provider_reference": None,
        "amount_minor": None,
        "currency": None,
        "exponent": None,
    }
    kind = ONECOM_EVENT_KINDS.get(envelope.event_type)
    if kind is None:
        return NormalizedEvent(kind=None, ignore_reason="unknown_type", **common)
    try:
        data = required_dict(envelope.payload.get("data"), "data")
        reference = optional_str(data.get("transaction_id"), "data.transaction_id")
        currency = currency_code(data.get("currency"), "data.currency")
        amount = non_negative_int(data.get("amount_minor"), "data.amount_minor", allow_digit_string=True)
        if kind in ("succeeded", "refunded") and (amount is None or currency is None):
            raise MalformedPayload(f"{envelope.event_type} needs data.amount_minor and data.currency")
        exponent = iso_exponent(currency) if currency is not None else None
        money_back = None
        if kind == "refunded":
            refund_id = optional_str(data.get("refund_id"), "data.refund_id")
            if amount is None or amount <= 0:
                raise MalformedPayload("payment.refunded needs a positive amount_minor")
            # Without its refund_id the refund cannot be credited (a redelivery could not be told from a
            # second refund), but money went back: it goes on, naming no refund, and the session service
            # quarantines it for the merchant instead of it staying an ignored inbox row nobody sees.
            money_back = MoneyBack(refunds=(RefundInfo(refund_id, amount, "succeeded"),) if refund_id else ())
    except (MalformedPayload, ValueError, LookupError):
        return NormalizedEvent(kind=None, ignore_reason="malformed_payload", **common)

    session_id = canonical_session_id(data.get("session_id"))
    common.update(
        session_id=session_id,
        provider_reference=reference,
        amount_minor=amount if kind in ("succeeded", "refunded") else None,
        currency=currency,
        exponent=exponent,
    )
    # A refund names the payment it returns; the session service finds the session that payment paid.
    if session_id is None and not (kind == "refunded" and reference):
        return NormalizedEvent(kind=None, ignore_reason="no_session_reference", **common)
    return NormalizedEvent(kind=kind, ignore_reason=None, money_back=money_back, **common)


@dataclass(frozen=True, slots=True)
class Web3Hint:
    """A notifier's claim that a transaction may pay a session; only `tx_hash` is trusted, after checking.

    `ignore_reason` is set (and the other fields may be None) when the hint cannot be used.
    """

    event_id: str
    chain_id: int | None
    tx_hash: str | None
    session_id: str | None
    ignore_reason: IgnoreReason | None = None

    @property
    def ignored(self) -> bool:
        return self.ignore_reason is not None


def parse_web3_hint(envelope: VerifiedEnvelope) -> Web3Hint:
    """Read a verified `transaction.detected` body; the tx hash is returned lower-cased."""
    if envelope.event_type != WEB3_HINT_TYPE:
        return Web3Hint(envelope.event_id, None, None, None, ignore_reason="unknown_type")
    data = envelope.payload.get("data")
    if not isinstance(data, dict):
        return Web3Hint(envelope.event_id, None, None, None, ignore_reason="malformed_payload")
    try:
        chain_id = non_negative_int(data.get("chain_id"), "data.chain_id", allow_digit_string=True)
    except MalformedPayload:
        chain_id = None
    tx_hash = data.get("tx_hash")
    session_id = canonical_session_id(data.get("session_id"))
    if not chain_id or not isinstance(tx_hash, str) or not _TX_HASH_RE.fullmatch(tx_hash):
        return Web3Hint(envelope.event_id, None, None, session_id, ignore_reason="malformed_payload")
    return Web3Hint(envelope.event_id, chain_id, tx_hash.lower(), session_id)
