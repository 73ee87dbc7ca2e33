"""Provider-neutral shapes that the webhook gateway stores and forwards to the session service."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

EventKind = Literal["pending", "succeeded", "failed", "attempt_failed", "expired", "refunded", "disputed"]
EVENT_KINDS: Final[frozenset[str]] = frozenset(
    {"pending", "succeeded", "failed", "attempt_failed", "expired", "refunded", "disputed"}
)

IgnoreReason = Literal[
    "unknown_type", "no_session_reference", "malformed_payload", "unsupported_payment_status"
]
IGNORE_REASONS: Final[frozenset[str]] = frozenset(
    {"unknown_type", "no_session_reference", "malformed_payload", "unsupported_payment_status"}
)

# Kinds whose amount is money that actually moved; only these are compared with the session's amount.
MONEY_RECEIVED_KINDS: Final[frozenset[str]] = frozenset({"succeeded"})


@dataclass(frozen=True, slots=True)
class VerifiedEnvelope:
    """A delivery whose signature and timestamp checked out and whose body is a JSON object.

    `payload` was parsed from `raw` after verification, with floats as Decimal so that no amount ever
    passes through a binary float. `raw` is kept byte for byte: it is what the inbox stores and replays.
    """

    event_id: str
    event_type: str
    payload: dict[str, Any] = field(repr=False)
    raw: bytes = field(repr=False)
    # The signed timestamp (unix seconds) of this delivery attempt; None when built by hand.
    signed_at: int | None = None
    # "test" or "live": the mode whose webhook secret verified it (Standard Webhooks providers, which carry
    # no mode in their bodies); None when the body says it itself (Stripe's livemode) or it is unknown.
    mode: str | None = None


@dataclass(frozen=True, slots=True)
class RefundInfo:
    """One refund a provider event reports (contract §8); the amount in ISO minor units of the event's
    currency (its `exponent`)."""

    refund_id: str
    amount_minor: int
    status: str  # pending, succeeded, failed or canceled
    # paygate's own refund id, when the provider echoes it back (refund metadata).
    paygate_refund_id: str | None = None
    # Why a failed refund failed (Stripe's failure_reason, bounded by paygate_runtime.refund_failures); None
    # for any other status, and when the provider gave none.
    failure_reason: str | None = None


@dataclass(frozen=True, slots=True)
class MoneyBack:
    """What a refund or dispute event says beyond its kind (contract §8)."""

    refunds: tuple[RefundInfo, ...] = ()
    # The provider's running total refunded for the payment (Stripe's amount_refunded), when reported.
    refunded_total_minor: int | None = None
    dispute_id: str | None = None
    dispute_action: str | None = None  # created, closed, funds_withdrawn, funds_reinstated, updated
    dispute_status: str | None = None  # the provider's own status (won, lost, ...)
    # The charge the event names (refunds and disputes may name only the charge).
    charge_id: str | None = None


@dataclass(frozen=True, slots=True)
class NormalizedEvent:
    """What a provider event means for a paygate session.

    `kind` is None exactly when the event is to be stored as `ignored`; `ignore_reason` then says why.
    `amount_minor` is in ISO 4217 minor units of `currency` (exponent `exponent`), already converted from the
    provider's own units. It is set for `succeeded` (money received), `refunded` (amount refunded so far) and
    `disputed` (amount disputed), and None otherwise: a pending event's amount proves nothing.
    """

    provider: str
    event_id: str
    event_type: str
    kind: EventKind | None
    session_id: str | None
    provider_reference: str | None
    amount_minor: int | None
    currency: str | None
    livemode: bool | None
    occurred_at: datetime | None
    ignore_reason: IgnoreReason | None
    exponent: int | None = None
    # Set for `refunded` and `disputed` events (contract §8).
    money_back: MoneyBack | None = None

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {self.kind!r}")
        if (self.kind is None) == (self.ignore_reason is None):
            raise ValueError("exactly one of kind and ignore_reason must be set")
        if self.ignore_reason is not None and self.ignore_reason not in IGNORE_REASONS:
            raise ValueError(f"unknown ignore reason {self.ignore_reason!r}")
        amount = self.amount_minor
        if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int) or amount < 0):
            raise ValueError("amount_minor must be a non-negative int")
        if self.amount_minor is not None and (self.currency is None or self.exponent is None):
            raise ValueError("an amount needs its currency and exponent")

    @property
    def ignored(self) -> bool:
        return self.kind is None

    @property
    def reports_money_received(self) -> bool:
        return self.kind in MONEY_RECEIVED_KINDS
