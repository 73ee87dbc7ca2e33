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


class PaymentStatus(StrEnum):
    NOT_STARTED = "not_started"
    PROCESSING = "processing"
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"


_S = SessionStatus

# (from, to) -> what causes the move. A `pending` session has no way to `expired`: money is in flight
# (a SEPA debit can take days, a chain payment waits for confirmations); only the provider ends it.
TRANSITIONS: dict[tuple[SessionStatus, SessionStatus], str] = {
    (_S.CREATED, _S.PENDING): "`pending` event: a payment is in flight",
    (_S.CREATED, _S.PAID): "`succeeded` event for the full amount or more",
    (_S.PENDING, _S.PAID): "`succeeded` event for the full amount or more",
    (_S.CREATED, _S.FAILED): "`failed` event: the provider's final word",
    (_S.PENDING, _S.FAILED): "`failed` event: the provider's final word",
    (_S.CREATED, _S.EXPIRED): "`expired` event, the sweeper at `expires_at`, or the merchant's ExpireSession",
}

OVERRIDES: dict[tuple[SessionStatus, SessionStatus], str] = {
    (_S.EXPIRED, _S.PAID): "merchant resolves a late payment's quarantine entry as `accepted` (audited)",
}

TERMINAL: frozenset[SessionStatus] = frozenset(
    status for status in SessionStatus if not any(source == status for source, _ in TRANSITIONS)
)

_PAYMENT_STATUS = {
    _S.CREATED: PaymentStatus.NOT_STARTED,
    _S.PENDING: PaymentStatus.PROCESSING,
    _S.PAID: PaymentStatus.PAID,
    _S.FAILED: PaymentStatus.FAILED,
    _S.EXPIRED: PaymentStatus.EXPIRED,
}


def can_move(source: SessionStatus, target: SessionStatus) -> bool:
    """True when a provider event, the sweeper or the merchant may move `source` to `target`."""
    return (source, target) in TRANSITIONS


def can_override(source: SessionStatus, target: SessionStatus) -> bool:
    """True only for the audited quarantine override (expired -> paid)."""
    return (source, target) in OVERRIDES


def next_statuses(source: SessionStatus) -> frozenset[SessionStatus]:
    return frozenset(target for origin, target in TRANSITIONS if origin == source)


def is_terminal(status: SessionStatus) -> bool:
    return status in TERMINAL


def require_move(source: SessionStatus, target: SessionStatus) -> None:
    """Defence in depth for the storage layer: refuse a move the table does not allow."""
    if not can_move(source, target):
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
    lines += ["", f"Terminal states: {terminal}. No other move exists; nothing moves backwards."]
    return "\n".join(lines) + "\n"
