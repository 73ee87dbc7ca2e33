"""Pure deposit-ledger arithmetic for one session: totals, lateness, reorgs and the stage events to send.

No I/O. The gateway loads a session's recorded deposits (with whether each one's block is still on the
canonical chain), asks `evaluate_deposits`, and persists/sends what it returns. Sending the same stage
event twice is harmless: the event ids are per stage, so the session service deduplicates them, while the
upgrade from `seen` to `confirmed` is never mistaken for a duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from paygate_runtime.errors import InvalidArgument


class Stage(Enum):
    SEEN = "seen"
    CONFIRMED = "confirmed"


# The normalised payment status each stage reports to the session service.
STAGE_STATUS = {Stage.SEEN: "pending", Stage.CONFIRMED: "succeeded"}

QUARANTINE_LATE = "payment_on_closed_session"
ALERT_REORGED_AFTER_PAID = "reorged_after_paid"


@dataclass(frozen=True)
class Deposit:
    """One recorded credit to the session's deposit address (ledger key: chain id, tx hash, log index).

    `canonical` is False once the block `block_hash` is no longer on the chain at `block_number`.
    `block_timestamp` and the session's `expires_at` are unix seconds.
    """

    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    block_timestamp: int
    amount_minor: int
    canonical: bool = True


@dataclass(frozen=True)
class StageEvent:
    event_id: str
    stage: Stage
    status: str
    amount_minor: int


@dataclass(frozen=True)
class LedgerView:
    seen_total: int
    confirmed_total: int
    amount_minor: int
    counted: tuple[Deposit, ...]
    confirmed: tuple[Deposit, ...]
    late: tuple[Deposit, ...]
    dropped: tuple[Deposit, ...]
    events: tuple[StageEvent, ...]
    alerts: tuple[str, ...] = field(default=())

    @property
    def paid(self) -> bool:
        return self.confirmed_total >= self.amount_minor

    @property
    def overpaid_minor(self) -> int:
        """What the confirmed, on-time deposits paid beyond the price (0 if not over)."""
        return max(0, self.confirmed_total - self.amount_minor)

    @property
    def outstanding_minor(self) -> int:
        """What is still missing from the confirmed total (0 once paid)."""
        return max(0, self.amount_minor - self.confirmed_total)

    @property
    def reorged_after_paid(self) -> bool:
        return ALERT_REORGED_AFTER_PAID in self.alerts


def stage_event_id(session_id: str, stage: Stage) -> str:
    """`web3:<session>:seen` / `web3:<session>:confirmed`, stable across retries and both detection paths."""
    return f"web3:{session_id}:{stage.value}"


def deposit_confirmations(deposit: Deposit, head: int) -> int:
    return max(0, head - deposit.block_number + 1)


def evaluate_deposits(
    session_id: str,
    deposits: list[Deposit] | tuple[Deposit, ...],
    *,
    head: int,
    min_confirmations: int,
    amount_minor: int,
    expires_at: int | None,
    already_paid: bool = False,
) -> LedgerView:
    """Fold a session's deposits into totals and the stage events that follow from them.

    - Deposits whose block left the canonical chain are `dropped` and count for nothing.
    - Deposits mined after `expires_at` (by their block's timestamp, not when we noticed or confirmed
      them) are `late`: they go to quarantine as `payment_on_closed_session` and never count.
    - `seen` (pending) is due once any counted deposit exists; `confirmed` (succeeded, amount = confirmed
      total) once the deposits with >= `min_confirmations` reach `amount_minor`.
    - If the session was `already_paid` and a reorg has since dropped money so that the confirmed total
      is below the amount, the reorg went deeper than the confirmation depth: alert `reorged_after_paid`.
    """
    if amount_minor <= 0:
        raise InvalidArgument("invalid_amount", "the session amount must be positive", field="amount_minor")
    if min_confirmations < 1:
        raise InvalidArgument(
            "invalid_min_confirmations", "at least one confirmation is required", field="min_confirmations"
        )
    dropped = tuple(d for d in deposits if not d.canonical)
    live = [d for d in deposits if d.canonical]
    late = tuple(d for d in live if _is_late(d, expires_at))
    counted = tuple(d for d in live if not _is_late(d, expires_at))
    confirmed = tuple(d for d in counted if deposit_confirmations(d, head) >= min_confirmations)
    seen_total = sum(d.amount_minor for d in counted)
    confirmed_total = sum(d.amount_minor for d in confirmed)

    events: list[StageEvent] = []
    if counted:
        events.append(_event(session_id, Stage.SEEN, seen_total))
    if confirmed_total >= amount_minor:
        events.append(_event(session_id, Stage.CONFIRMED, confirmed_total))

    alerts: list[str] = []
    if already_paid and dropped and confirmed_total < amount_minor:
        alerts.append(ALERT_REORGED_AFTER_PAID)
    return LedgerView(
        seen_total=seen_total,
        confirmed_total=confirmed_total,
        amount_minor=amount_minor,
        counted=counted,
        confirmed=confirmed,
        late=late,
        dropped=dropped,
        events=tuple(events),
        alerts=tuple(alerts),
    )


def _is_late(deposit: Deposit, expires_at: int | None) -> bool:
    # A block stamped exactly at expiry is still on time: the session was open at that second.
    return expires_at is not None and deposit.block_timestamp > expires_at


def _event(session_id: str, stage: Stage, amount_minor: int) -> StageEvent:
    return StageEvent(
        event_id=stage_event_id(session_id, stage),
        stage=stage,
        status=STAGE_STATUS[stage],
        amount_minor=amount_minor,
    )
