"""A normalised event as the inbox stores it (column `normalized`), so that the relay applies what the
webhook handler read instead of parsing and normalising the provider's body a second time.

The form is versioned: a row written by another version of this module is not trusted, and the relay
normalises its raw body again (`load_normalized` raises ValueError). Bump VERSION whenever a normaliser reads
a body differently (a fix, a new field): rows stored under the old reading are then read afresh from their
raw body, by the relay and by a merchant's replay alike. Amounts are written as strings of
digits, so that no JSON reader on the way (PostgreSQL's jsonb, another tool) ever rounds one.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final, cast

import msgspec

from webhook_gateway.providers.normalized import (
    EVENT_KINDS,
    IGNORE_REASONS,
    EventKind,
    IgnoreReason,
    MoneyBack,
    NormalizedEvent,
    RefundInfo,
)
from webhook_gateway.providers.payload import storable_text

# 2: a refund carries its failure_reason (a fifth item). Rows of version 1 are read afresh from their raw body,
# so a failed refund stored before it still reaches the session with its reason.
VERSION: Final[int] = 2
# The stored form is written on the reply path. msgspec writes the same compact text as this encoder (no
# spaces, non-ASCII as is) in a fifth of the time; the encoder stays for text msgspec cannot write (an unpaired
# surrogate, which storable_normalized then refuses). Built once: json.dumps with any non-default option
# builds a new encoder on every call.
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _minor(value: int | None) -> str | None:
    return None if value is None else str(value)


def dump_normalized(event: NormalizedEvent) -> str:
    """The stored form of `event` (compact JSON text)."""
    body: dict[str, Any] = {
        "v": VERSION,
        "provider": event.provider,
        "event_id": event.event_id,
        "event_type": event.event_type,
        "kind": event.kind,
        "ignore_reason": event.ignore_reason,
        "session_id": event.session_id,
        "provider_reference": event.provider_reference,
        "amount_minor": _minor(event.amount_minor),
        "currency": event.currency,
        "exponent": event.exponent,
        "livemode": event.livemode,
        "occurred_at": event.occurred_at.isoformat() if event.occurred_at is not None else None,
    }
    back = event.money_back
    if back is not None:
        body["money_back"] = {
            "refunds": [
                [r.refund_id, str(r.amount_minor), r.status, r.paygate_refund_id, r.failure_reason]
                for r in back.refunds
            ],
            "refunded_total_minor": _minor(back.refunded_total_minor),
            "dispute_id": back.dispute_id,
            "dispute_action": back.dispute_action,
            "dispute_status": back.dispute_status,
            "charge_id": back.charge_id,
        }
    try:
        return msgspec.json.encode(body).decode()
    except UnicodeEncodeError:
        return _ENCODER.encode(body)


def storable_normalized(event: NormalizedEvent) -> str | None:
    """`dump_normalized(event)`, or None when PostgreSQL could not store it (a NUL, which jsonb refuses, or
    text UTF-8 cannot encode): one such value would fail the insert of every event committed with it. The
    relay then normalises the raw body, as for rows stored before this column existed."""
    text = dump_normalized(event)
    if "\\u0000" in text or not storable_text(text):
        return None
    return text


def _opt_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"stored normalised event: {key} is not a string")
    return value


def _opt_minor(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.isdigit():
        raise ValueError(f"stored normalised event: {key} is not a string of digits")
    return int(value)


def _opt_int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"stored normalised event: {key} is not an integer")
    return value


def _money_back(body: object) -> MoneyBack | None:
    if body is None:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("refunds"), list):
        raise ValueError("stored normalised event: money_back is not an object with refunds")
    refunds = []
    for item in body["refunds"]:
        if not isinstance(item, list) or len(item) != 5:
            raise ValueError(
                "stored normalised event: a refund is not [id, amount, status, paygate id, reason]"
            )
        refund_id, amount, status, paygate_id, failure_reason = item
        if failure_reason is not None and not isinstance(failure_reason, str):
            raise ValueError("stored normalised event: a refund's failure reason is not a string")
        if not (isinstance(refund_id, str) and isinstance(status, str) and isinstance(amount, str)):
            raise ValueError("stored normalised event: a refund's id, amount or status is not a string")
        if not amount.isdigit() or (paygate_id is not None and not isinstance(paygate_id, str)):
            raise ValueError("stored normalised event: a refund's amount or paygate id is malformed")
        refunds.append(RefundInfo(refund_id, int(amount), status, paygate_id, failure_reason))
    return MoneyBack(
        refunds=tuple(refunds),
        refunded_total_minor=_opt_minor(body, "refunded_total_minor"),
        dispute_id=_opt_str(body, "dispute_id"),
        dispute_action=_opt_str(body, "dispute_action"),
        dispute_status=_opt_str(body, "dispute_status"),
        charge_id=_opt_str(body, "charge_id"),
    )


def load_normalized(text: str) -> NormalizedEvent:
    """The event `dump_normalized` wrote. ValueError for another version or any damage: the caller then
    normalises the stored raw body again."""
    body = json.loads(text)
    if not isinstance(body, dict) or body.get("v") != VERSION:
        raise ValueError("stored normalised event of another version")
    kind = _opt_str(body, "kind")
    if kind is not None and kind not in EVENT_KINDS:
        raise ValueError(f"stored normalised event: unknown kind {kind!r}")
    reason = _opt_str(body, "ignore_reason")
    if reason is not None and reason not in IGNORE_REASONS:
        raise ValueError(f"stored normalised event: unknown ignore reason {reason!r}")
    livemode = body.get("livemode")
    if livemode is not None and not isinstance(livemode, bool):
        raise ValueError("stored normalised event: livemode is not a boolean")
    occurred = _opt_str(body, "occurred_at")
    provider, event_id, event_type = body.get("provider"), body.get("event_id"), body.get("event_type")
    if not (isinstance(provider, str) and isinstance(event_id, str) and isinstance(event_type, str)):
        raise ValueError("stored normalised event: provider, event_id or event_type missing")
    # NormalizedEvent checks the rest (kind xor reason, amounts with their currency and exponent).
    return NormalizedEvent(
        provider=provider,
        event_id=event_id,
        event_type=event_type,
        kind=cast(EventKind | None, kind),
        ignore_reason=cast(IgnoreReason | None, reason),
        session_id=_opt_str(body, "session_id"),
        provider_reference=_opt_str(body, "provider_reference"),
        amount_minor=_opt_minor(body, "amount_minor"),
        currency=_opt_str(body, "currency"),
        exponent=_opt_int(body, "exponent"),
        livemode=livemode,
        occurred_at=datetime.fromisoformat(occurred) if occurred is not None else None,
        money_back=_money_back(body.get("money_back")),
    )
