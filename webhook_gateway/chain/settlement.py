"""What the gateway should tell the session service about one web3 session, given its ledger. Pure.

`plan_settlement` folds the recorded deposits (ledger.evaluate_deposits does the arithmetic) together with
what was already decided (the confirmation claim, deposits reported on their own) and the session's state
into a `SettlementPlan`: which stage events to send, which money goes to quarantine on its own, and which
alerts to raise. The caller (web3_service) does the I/O and may plan again after the session moved.

Money rules:
- `seen` (pending) once any on-time deposit exists; `confirmed` (succeeded) once the confirmed on-time total
  reaches the price. Its amount is that total, fixed once in a claim so that retries never change it.
- Only money that arrived after the session was created counts (`before_session`): the watcher and the
  webhook never record an earlier transfer for it.
- Native coin: contract wallets pay through internal calls that no tx's `to` shows. Where the node offers
  traces, those calls are recorded as transfers like any other. Where it does not, the confirmed total is
  also read as the deposit address's balance at the confirmed height (capped at the last block before
  expiry) MINUS its balance at the session's start block, so money the address held before never counts.
- Late money (mined after expiry, judged by block time) and extra money (confirmed after the claim) are each
  sent as their own `succeeded` event with a per-transfer id; on a closed session the session service
  quarantines them as `payment_on_closed_session`. They are only sent once confirmed, so a reorg cannot take
  back money that was already put in front of the merchant, and late money waits while the session is still
  open (`created` is expired first; `pending` waits for its outcome).
- Money in another asset than the session's (ETH to a token session, another of the merchant's tokens to an
  ETH session) never counts towards it. Once confirmed, each such transfer is sent as its own `succeeded`
  event in its own currency (`wrong_asset`), which the session service quarantines as a currency mismatch
  (or as money on a closed session), once per transfer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Final

from paygate_runtime.money.assets import NATIVE_COIN, NATIVE_DECIMALS
from webhook_gateway.chain.deposits_repository import Confirmation, DepositRow, TransferKey
from webhook_gateway.chain.ledger import (
    ALERT_REORGED_AFTER_PAID,
    LedgerView,
    Stage,
    deposit_confirmations,
    evaluate_deposits,
    stage_event_id,
)

OPEN_STATUSES: Final = frozenset({"created", "pending"})
# refunded (contract §8): money after a full refund is reported (late/extra) and quarantined, never kept silently.
CLOSED_STATUSES: Final = frozenset({"paid", "expired", "failed", "refunded"})
# A session in these states may still be made paid by a `succeeded` event (expired: the session service
# quarantines on-time money that it hears of after expiry as `paid_before_expiry`, for the merchant to accept).
CLAIMABLE_STATUSES: Final = frozenset({"created", "pending", "expired"})


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """The facts about a web3 session that settlement needs (read from the session service)."""

    session_id: str
    merchant_id: str
    mode: str | None
    status: str  # created, pending, paid, failed, expired
    amount_minor: int
    currency: str
    exponent: int
    chain_id: int
    deposit_address: str
    token: str | None
    min_confirmations: int
    expires_at: int | None  # unix seconds
    # When the session was created (unix seconds, with fractions); None only in tests of other rules.
    created_at: float | None = None

    @property
    def native(self) -> bool:
        return self.token is None


def before_session(info: SessionInfo, block_timestamp: int, skew_s: int) -> bool:
    """Whether money in a block stamped `block_timestamp` arrived before `info`'s session existed, and so is
    not the session's (the address may be one a merchant's wallet used before). A block stamped in the
    second the session was created still counts (block times are whole seconds), and so do blocks up to
    `skew_s` seconds earlier: a proposer's slot can start a little before a tx it includes was sent."""
    if info.created_at is None:
        return False
    return block_timestamp + skew_s < int(info.created_at)


@dataclass(frozen=True, slots=True)
class NativeBalances:
    """For native-coin sessions: the deposit address's on-time balances (wei).

    `confirmed` is read at `confirmed_block` (the confirmed height, or the last block before expiry when the
    chain has passed it), `seen` at the head (capped the same way). `confirmed_block_timestamp` is the time
    of `confirmed_block`.
    """

    confirmed: int
    seen: int
    confirmed_block: int
    confirmed_block_timestamp: int


@dataclass(frozen=True, slots=True)
class MoneyEvent:
    """A `succeeded` event for one transfer sent on its own (late, extra or wrong-asset money)."""

    event_id: str
    key: TransferKey
    reported_as: str  # "late", "extra" or "wrong_asset"
    amount_minor: int
    provider_reference: str
    occurred_at: int
    # The transfer's asset when it is not the session's own (wrong_asset); None: the session's currency.
    currency: str | None = None
    exponent: int | None = None


@dataclass(frozen=True, slots=True)
class SeenEvent:
    event_id: str
    provider_reference: str
    occurred_at: int


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    amount_minor: int
    confirmed_height: int
    provider_reference: str
    occurred_at: int
    included: tuple[TransferKey, ...]


@dataclass(frozen=True, slots=True)
class Alert:
    code: str
    detail: str
    reference: str
    # The money concerned (the session's minor units), when there is some.
    amount_minor: int | None = None


@dataclass(frozen=True, slots=True)
class SettlementPlan:
    view: LedgerView
    confirmed_total: int
    seen: SeenEvent | None = None
    claim: ClaimRequest | None = None
    # Send (or re-send) the `confirmed` event of the existing or newly claimed confirmation.
    send_confirmed: bool = False
    # The session is still `created` but only late money arrived: expire it before reporting the money.
    expire_first: bool = False
    late: tuple[MoneyEvent, ...] = ()
    extra: tuple[MoneyEvent, ...] = ()
    wrong_asset: tuple[MoneyEvent, ...] = ()
    alerts: tuple[Alert, ...] = field(default=())


def transfer_reference(row: DepositRow) -> str:
    """The payment reference of one transfer: its tx hash, plus the log index for a token transfer."""
    return row.tx_hash if row.log_index < 0 else f"{row.tx_hash}#{row.log_index}"


def transfer_event_id(session_id: str, kind: str, row: DepositRow) -> str:
    return f"web3:{session_id}:{kind}:{row.tx_hash}:{row.log_index}"


def confirmed_height_of(head: int, min_confirmations: int) -> int:
    return head - max(1, min_confirmations) + 1


def plan_settlement(
    info: SessionInfo,
    rows: Sequence[DepositRow],
    *,
    head: int,
    confirmation: Confirmation | None,
    balances: NativeBalances | None = None,
) -> SettlementPlan:
    """Decide what to send for `info` now. Deterministic: the same inputs, in any order, give the same plan."""
    rows = sorted(rows, key=_chain_order)
    foreign = [row for row in rows if not is_own_asset(info, row)]
    rows = [row for row in rows if is_own_asset(info, row)]
    if confirmation is None:
        # Before any claim, money already sent on its own (the extra money of a session the merchant
        # expired early) is in quarantine: a later claim must not count it a second time.
        balances = _less_reported(balances, rows)
        rows = [row for row in rows if row.reported_as is None]
    view = evaluate_deposits(
        info.session_id,
        [row.as_deposit() for row in rows],
        head=head,
        min_confirmations=info.min_confirmations,
        amount_minor=info.amount_minor,
        expires_at=info.expires_at,
        already_paid=confirmation is not None,
    )
    height = confirmed_height_of(head, info.min_confirmations)
    by_key = {row.key: row for row in rows}
    counted = [by_key[(info.chain_id, d.tx_hash, d.log_index)] for d in view.counted]
    confirmed = [by_key[(info.chain_id, d.tx_hash, d.log_index)] for d in view.confirmed]

    confirmed_total = view.confirmed_total
    balance_seen = 0
    if info.native and balances is not None:
        confirmed_total = max(confirmed_total, balances.confirmed)
        balance_seen = balances.seen

    seen: SeenEvent | None = None
    if info.status == "created" and (counted or balance_seen > 0):
        first = counted[0] if counted else None
        seen = SeenEvent(
            event_id=stage_event_id(info.session_id, Stage.SEEN),
            provider_reference=transfer_reference(first) if first else info.deposit_address.lower(),
            occurred_at=first.block_timestamp
            if first
            else (balances.confirmed_block_timestamp if balances else 0),
        )

    claim: ClaimRequest | None = None
    effective = confirmation
    if confirmation is None and info.status in CLAIMABLE_STATUSES and confirmed_total >= info.amount_minor:
        reference, occurred_at = _crossing(confirmed, info.amount_minor)
        if reference is None:
            # Paid by balance alone (internal transfers): no single tx to name.
            reference = info.deposit_address.lower()
            occurred_at = balances.confirmed_block_timestamp if balances else 0
        if info.native and balances is not None:
            # Deposits at or below the block the balance was read at are inside the counted total.
            height = min(height, balances.confirmed_block)
        claim = ClaimRequest(
            amount_minor=confirmed_total,
            confirmed_height=height,
            provider_reference=reference,
            occurred_at=occurred_at,
            included=tuple(row.key for row in confirmed),
        )
        effective = Confirmation(
            session_id=info.session_id,
            chain_id=info.chain_id,
            amount_minor=confirmed_total,
            confirmed_height=height,
            provider_reference=reference,
            occurred_at=occurred_at,
            applied_outcome=None,
        )
    send_confirmed = effective is not None and effective.applied_outcome is None

    included = _included(info, rows, effective, claim)
    extra: list[MoneyEvent] = []
    # After the claim, money outside it is extra. A closed session that was never claimed (short money the
    # gateway noticed only after expiry, or a session paid by the merchant's override) reports its on-time
    # money the same way: it is never silently kept.
    if effective is not None or info.status in CLOSED_STATUSES:
        late_keys = {(info.chain_id, d.tx_hash, d.log_index) for d in view.late}
        for row in rows:
            if (
                row.canonical
                and row.reported_as is None
                and row.key not in included
                and row.key not in late_keys
                and deposit_confirmations(row.as_deposit(), head) >= info.min_confirmations
            ):
                extra.append(_money_event(info, row, "extra"))

    late_ready = [
        by_key[(info.chain_id, d.tx_hash, d.log_index)]
        for d in view.late
        if deposit_confirmations(d, head) >= info.min_confirmations
    ]
    late_ready = [row for row in late_ready if row.reported_as is None and row.key not in included]
    expire_first = False
    late: list[MoneyEvent] = []
    if late_ready:
        if info.status == "created" and not counted and balance_seen == 0 and claim is None:
            expire_first = True
        elif info.status in CLOSED_STATUSES:
            late = [_money_event(info, row, "late") for row in late_ready]

    alerts: list[Alert] = []
    if confirmation is not None and confirmed_total < info.amount_minor:
        for row in rows:
            if not row.canonical and row.key in included:
                alerts.append(
                    Alert(
                        code=ALERT_REORGED_AFTER_PAID,
                        detail=(
                            f"deposit {transfer_reference(row)} of {row.amount_minor} minor units left the "
                            f"canonical chain after the session was paid; confirmed total is now "
                            f"{confirmed_total} of {info.amount_minor}"
                        ),
                        reference=row.tx_hash,
                        amount_minor=row.amount_minor,
                    )
                )
    return SettlementPlan(
        view=view,
        confirmed_total=confirmed_total,
        seen=seen,
        claim=claim,
        send_confirmed=send_confirmed,
        expire_first=expire_first,
        late=tuple(late),
        extra=tuple(extra),
        wrong_asset=tuple(_wrong_asset_events(info, foreign, head)),
        alerts=tuple(_unique_alerts(alerts)),
    )


def is_own_asset(info: SessionInfo, row: DepositRow) -> bool:
    """Whether a recorded transfer is in the session's own asset (the only money that counts for it)."""
    return same_token(row.token, info.token)


def same_token(a: str | None, b: str | None) -> bool:
    """Whether two assets are the same: both the native coin (None), or one token contract in any case."""
    return (a or "").lower() == (b or "").lower()


def _wrong_asset_events(info: SessionInfo, foreign: Sequence[DepositRow], head: int) -> list[MoneyEvent]:
    """Each confirmed, canonical transfer in another asset, not yet reported: sent on its own in its own
    currency. Only confirmed money is reported (as a right-asset payment is only paid once confirmed)."""
    events = []
    for row in foreign:
        if (
            not row.canonical
            or row.reported_as is not None
            or deposit_confirmations(row.as_deposit(), head) < info.min_confirmations
        ):
            continue
        currency, exponent = row.currency, row.exponent
        if row.token is None:
            currency, exponent = NATIVE_COIN, NATIVE_DECIMALS
        if currency is None or exponent is None:
            continue  # a token transfer is recorded with its asset; an older row cannot be labelled
        events.append(replace(_money_event(info, row, "wrong_asset"), currency=currency, exponent=exponent))
    return events


def _less_reported(balances: NativeBalances | None, rows: Sequence[DepositRow]) -> NativeBalances | None:
    """`balances` without the transfers already reported on their own that the confirmed balance holds."""
    if balances is None:
        return None
    reported = sum(
        row.amount_minor
        for row in rows
        if row.reported_as is not None and row.canonical and row.block_number <= balances.confirmed_block
    )
    return replace(balances, confirmed=max(0, balances.confirmed - reported))


def _crossing(confirmed: Sequence[DepositRow], amount_minor: int) -> tuple[str | None, int]:
    """The transfer whose arrival made the confirmed total reach the price (in chain order)."""
    running = 0
    for row in sorted(confirmed, key=_chain_order):
        running += row.amount_minor
        if running >= amount_minor:
            return transfer_reference(row), row.block_timestamp
    return None, 0


def _chain_order(row: DepositRow) -> tuple[int, int, str]:
    # Two native transfers in one block share log index -1: the tx hash breaks the tie, for determinism.
    return (row.block_number, row.log_index, row.tx_hash)


def _included(
    info: SessionInfo,
    rows: Sequence[DepositRow],
    confirmation: Confirmation | None,
    claim: ClaimRequest | None,
) -> set[TransferKey]:
    """The transfers inside the confirmed total: claimed ones, and for the native coin every deposit at or
    below the claim's height (the balance read there held them, recorded or not)."""
    if confirmation is None:
        return set()
    keys = {row.key for row in rows if row.claimed}
    if claim is not None:
        keys.update(claim.included)
    if info.native:
        keys.update(row.key for row in rows if row.block_number <= confirmation.confirmed_height)
    return keys


def _money_event(info: SessionInfo, row: DepositRow, kind: str) -> MoneyEvent:
    return MoneyEvent(
        event_id=transfer_event_id(info.session_id, kind, row),
        key=row.key,
        reported_as=kind,
        amount_minor=row.amount_minor,
        provider_reference=transfer_reference(row),
        occurred_at=row.block_timestamp,
    )


def _unique_alerts(alerts: list[Alert]) -> list[Alert]:
    seen: set[tuple[str, str]] = set()
    unique = []
    for alert in alerts:
        if (alert.code, alert.reference) not in seen:
            seen.add((alert.code, alert.reference))
            unique.append(alert)
    return unique
