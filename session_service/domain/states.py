"""The one-way session state machine.

`TRANSITIONS` is the only place the moves are written down: `can_move` reads it, `TERMINAL` is derived
from it, and `transition_table_markdown()` renders it for the README, so code and docs cannot drift.
`OVERRIDES` holds the single audited exception (a merchant accepting a late payment from quarantine); it is
kept apart so that no provider event can ever take that path.
"""

from __future__ import annotations

from enum import StrEnum

from paygate_runtime.errors import FailedPrecondition, InvalidArgument


class SessionStatus(StrEnum):
    CREATED = "created"
    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"
    # Wave 2 (contract §6, §8): the whole amount went back to the customer (refunds or a lost dispute).
    REFUNDED = "refunded"


class PaymentStatus(StrEnum):
    NOT_STARTED = "not_started"
    PROCESSING = "processing"
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"
    REFUNDED = "refunded"


_S = SessionStatus

# (from, to) -> what causes the move. A card `pending` session has no way to `expired`: money is in flight
# (a SEPA debit can take days) and only the provider ends it. A web3 `pending` session has no provider to
# end it (a dust transfer would pin it forever), so for web3 alone `pending -> expired` exists: the sweeper
# takes it PAYGATE_CHAIN_PENDING_GRACE_S after `expires_at`, or the merchant ends it earlier; its partial
# money is quarantined by the gateway, never lost. `PROVIDER_ONLY` restricts that move to web3.
TRANSITIONS: dict[tuple[SessionStatus, SessionStatus], str] = {
    (_S.CREATED, _S.PENDING): "`pending` event: a payment is in flight",
    (_S.CREATED, _S.PAID): "`succeeded` event for the full amount or more",
    (_S.PENDING, _S.PAID): "`succeeded` event for the full amount or more",
    (_S.CREATED, _S.FAILED): "`failed` event: the provider's final word",
    (_S.PENDING, _S.FAILED): "`failed` event: the provider's final word",
    (_S.CREATED, _S.EXPIRED): "`expired` event, the sweeper at `expires_at`, or the merchant's ExpireSession",
    (_S.PENDING, _S.EXPIRED): (
        "web3 only: the sweeper `PAYGATE_CHAIN_PENDING_GRACE_S` after `expires_at`, or the merchant's "
        "ExpireSession (partial money goes to quarantine)"
    ),
}

# Moves after the payment has ended: money going back. No payment event takes them (`decide` never names
# these targets); only the refund and dispute rules do, through the one state-move writer. So `paid` still
# ends the payment, and `TERMINAL` below counts it as ended.
AFTER_PAYMENT: dict[tuple[SessionStatus, SessionStatus], str] = {
    (_S.PAID, _S.REFUNDED): "the whole amount refunded (any mix of refunds), or a dispute lost",
}
TRANSITIONS.update(AFTER_PAYMENT)

# Moves that exist for one provider only: (from, to) -> the providers that may take them.
PROVIDER_ONLY: dict[tuple[SessionStatus, SessionStatus], frozenset[str]] = {
    (_S.PENDING, _S.EXPIRED): frozenset({"web3"}),
}

OVERRIDES: dict[tuple[SessionStatus, SessionStatus], str] = {
    (_S.EXPIRED, _S.PAID): "merchant resolves a late payment's quarantine entry as `accepted` (audited)",
}

# Statuses that end a session's payment: no payment event moves them (money may still go back from `paid`).
TERMINAL: frozenset[SessionStatus] = frozenset(
    status
    for status in SessionStatus
    if not any(source == status for source, target in TRANSITIONS if (source, target) not in AFTER_PAYMENT)
)

_PAYMENT_STATUS = {
    _S.CREATED: PaymentStatus.NOT_STARTED,
    _S.PENDING: PaymentStatus.PROCESSING,
    _S.PAID: PaymentStatus.PAID,
    _S.FAILED: PaymentStatus.FAILED,
    _S.EXPIRED: PaymentStatus.EXPIRED,
    _S.REFUNDED: PaymentStatus.REFUNDED,
}


def can_move(source: SessionStatus, target: SessionStatus, provider: str | None = None) -> bool:
    """True when a provider event, the sweeper or the merchant may move a session of `provider` from `source`
    to `target`. A provider-only move (see PROVIDER_ONLY) needs its provider named: without one it is refused,
    so a caller that does not say which provider it is talking about can never take it by accident."""
    if (source, target) not in TRANSITIONS:
        return False
    allowed = PROVIDER_ONLY.get((source, target))
    return allowed is None or provider in allowed


def can_override(source: SessionStatus, target: SessionStatus) -> bool:
    """True only for the audited quarantine override (expired -> paid)."""
    return (source, target) in OVERRIDES


def next_statuses(source: SessionStatus, provider: str | None = None) -> frozenset[SessionStatus]:
    return frozenset(
        target for origin, target in TRANSITIONS if origin == source and can_move(origin, target, provider)
    )


def is_terminal(status: SessionStatus) -> bool:
    """True when the session's payment has ended (no payment event moves it any more)."""
    return status in TERMINAL


def require_move(source: SessionStatus, target: SessionStatus, provider: str | None = None) -> None:
    """Defence in depth for the storage layer: refuse a move the table does not allow."""
    if not can_move(source, target, provider):
        raise FailedPrecondition(
            "invalid_transition", f"a {source} session cannot become {target}", field="status"
        )


def payment_status(status: SessionStatus) -> PaymentStatus:
    return _PAYMENT_STATUS[status]


def parse_status(raw: object, *, field: str = "status") -> SessionStatus:
    """Parse a status filter such as `?status=paid`; InvalidArgument `invalid_<field>` otherwise."""
    if isinstance(raw, str):
        try:
            return SessionStatus(raw)
        except ValueError:
            pass
    allowed = ", ".join(status.value for status in SessionStatus)
    raise InvalidArgument(f"invalid_{field}", f"{field} must be one of {allowed}", field=field)


def transition_table_markdown() -> str:
    """The moves as a markdown table, for README.md (generated from the same dicts the code uses)."""
    lines = [
        "| from | to | caused by |",
        "| --- | --- | --- |",
    ]
    lines += [f"| `{source}` | `{target}` | {cause} |" for (source, target), cause in TRANSITIONS.items()]
    lines += [
        f"| `{source}` | `{target}` | override only: {cause} |"
        for (source, target), cause in OVERRIDES.items()
    ]
    terminal = ", ".join(f"`{status}`" for status in SessionStatus if status in TERMINAL)
    after = ", ".join(f"`{source} → {target}`" for source, target in AFTER_PAYMENT)
    lines += [
        "",
        f"Terminal states: {terminal}: no payment event moves them; only money going back moves a session "
        f"after its payment ({after}). No other move exists; nothing moves backwards.",
    ]
    return "\n".join(lines) + "\n"
