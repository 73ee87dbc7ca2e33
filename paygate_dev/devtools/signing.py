"""Sign webhook deliveries exactly as the providers do, for tests, `paygate trigger` and benchmarks."""

from __future__ import annotations

import base64
import json
import secrets as random_secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import standardwebhooks
import stripe


def encode_body(body: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, the bytes that get signed and sent."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign_stripe(raw: bytes, secret: str, timestamp: int, *, also_sign_with: Sequence[str] = ()) -> str:
    """The `Stripe-Signature` header for `raw`: `t=<timestamp>,v1=<hex>`, one v1 per secret.

    Stripe sends one v1 per active endpoint secret while a secret is being rolled; `also_sign_with`
    reproduces that.
    """
    text = raw.decode("utf-8")
    header = stripe.WebhookSignature.generate_signature_header(text, secret, timestamp=timestamp)
    for extra in also_sign_with:
        extra_header = stripe.WebhookSignature.generate_signature_header(text, extra, timestamp=timestamp)
        header += "," + extra_header.split(",", 1)[1]
    return header


def sign_standard(
    raw: bytes, msg_id: str, secret: str, timestamp: int, *, also_sign_with: Sequence[str] = ()
) -> dict[str, str]:
    """The three Standard Webhooks headers for `raw`, with one space-separated `v1,` value per secret."""
    text = raw.decode("utf-8")
    signed_at = datetime.fromtimestamp(timestamp, UTC)
    signatures = [
        standardwebhooks.Webhook(each).sign(msg_id, signed_at, text) for each in (secret, *also_sign_with)
    ]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
    }


def stripe_delivery(event: dict[str, Any], secret: str, timestamp: int) -> tuple[bytes, dict[str, str]]:
    """Body and headers of a signed Stripe webhook POST."""
    raw = encode_body(event)
    return raw, {"Stripe-Signature": sign_stripe(raw, secret, timestamp), "Content-Type": "application/json"}


def standard_delivery(
    body: dict[str, Any], secret: str, timestamp: int, msg_id: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """Body and headers of a signed Standard Webhooks POST; a fresh `msg_...` id unless one is given."""
    raw = encode_body(body)
    headers = sign_standard(raw, msg_id or new_message_id(), secret, timestamp)
    headers["Content-Type"] = "application/json"
    return raw, headers


def new_message_id() -> str:
    return "msg_" + random_secrets.token_hex(12)


def new_stripe_webhook_secret() -> str:
    """A secret in the shape Stripe shows for an endpoint (`whsec_` and 32 random characters)."""
    return "whsec_" + random_secrets.token_hex(16)


def new_standard_webhook_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(random_secrets.token_bytes(32)).decode("ascii")
