"""Refunds and disputes (issue 19, contract §8): the merchant's RefundSession, the provider's answer to it, and
refund and dispute events from providers.

Each use case is one transaction under the session's row lock: read the session and its refunds, let the
pure rules of `domain/refunds.py` decide, then write the refunds, the session's refund facts and, through the
one state-move writer, the move `paid -> refunded` (or a history row for a change without a move) with its
audit row and, for a provider event, its processed-event record. What other services must do (a credit
note per refund, the customer keys suspended, restored or revoked) is done after the commit by
`refund_effects`, which reads what is still to do from these rows, so it happens exactly once each even
across crashes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg

from paygate_runtime.api_objects import dispute_json
from paygate_runtime.audit_actor import clean_actor
from paygate_runtime.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from paygate_runtime.money import Money, max_minor_from_major, parse_amount
from paygate_runtime.proto_convert import money_message
from paygate_runtime.refund_failures import failure_reason_of
from session_service.adapters import refund_repository as refunds_repo
from session_service.adapters import session_repository as repo
from session_service.adapters import state_moves
from session_service.domain.merchant_events import dispute_event
from session_service.domain.payment_events import ApplyOutcome, EventKind, QuarantineReason, decide
from session_service.domain.refunds import (
    DisputeAction,
    Ledger,
    Outcome,
    Refund,
    RefundOrigin,
    RefundReport,
    RefundStatus,
    apply_dispute,
    apply_reports,
    attach_provider_refund,
    request_refund,
)
from session_service.domain.states import SessionStatus
from session_service.service_layer.payment_events import (
    Applied,
    EventCommand,
    PlannedMove,
    payment_event_of,
    snapshot_of,
    validate_command,
)
from session_service.service_layer.sessions import caller_scope, parse_uuid

_MAX_REASON = 500
_TX_HASH = re.compile(r"^0x[0-9a-f]{64}$")
REFUND_KINDS = frozenset({EventKind.REFUNDED, EventKind.DISPUTED})


@dataclass(frozen=True, slots=True)
class RefundRequest:
    merchant_id: str
    mode: str
    session_id: str
    amount: str  # major units; empty: everything still refundable
    reason: str = ""
    idempotency_key: str = ""
    request_fingerprint: str = ""
    via_provider: bool = False
    provider_refund_id: str = ""
    # Web3: the refund tx the gateway verified on the session's chain (see `_chain_tx_hash`).
    chain_tx_hash: str = ""
    # Who asks, as the gateway names it for the audit trail ("merchant_key:<id>"); see paygate_runtime.audit_actor.
    actor: str = ""


@dataclass(frozen=True, slots=True)
class RefundResult:
    refund: Any  # the refunds row that stands for the request
    session: Any  # the session row with its children
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class ProviderRefundReport:
    refund_id: str
    amount: Money | None
    status: str
    paygate_refund_id: str = ""
    # A failed refund's reason (Stripe's failure_reason); empty when none was given.
    failure_reason: str = ""


@dataclass(frozen=True, slots=True)
class DisputeReport:
    dispute_id: str
    action: str
    status: str
    # The disputed amount in the provider's dispute currency (None when the event did not carry it).
    amount: Money | None = None


@dataclass(frozen=True, slots=True)
class RefundEventDetail:
    """What a refund or dispute event adds to a normalised payment event."""

    refunds: tuple[ProviderRefundReport, ...] = ()
    refunded_total: Money | None = None
    dispute: DisputeReport | None = None
    charge_id: str = ""
    # The provider's own time of the event (Stripe's `created`); None when the provider gives none (One.com),
    # and then totals are compared by size. Never the time paygate applied it: a late event is not a new one.
    reported_at: datetime | None = None


def _status(raw: str, field: str) -> RefundStatus:
    try:
        return RefundStatus(raw)
    except ValueError:
        raise InvalidArgument(
            f"invalid_{field}", f"{field} must be pending, succeeded, failed or canceled", field=field
        ) from None


def _failure_reason(raw: str) -> str | None:
    """A provider's failure reason as stored: None when it gave none, `unknown` for a value that is no short
    token (the gateway bounds it already; this holds for any caller, and the table's CHECK agrees)."""
    return failure_reason_of(raw) if raw else None


def _reason(raw: str) -> str:
    if len(raw) > _MAX_REASON:
        raise InvalidArgument("invalid_reason", f"reason is at most {_MAX_REASON} characters", field="reason")
    return raw


async def _session_with_children(conn: asyncpg.Connection, session_id: uuid.UUID) -> Any:
    row = await repo.get_session(conn, session_id)
    assert row is not None
    return row


async def refund_session(
    pool: asyncpg.Pool,
    request: RefundRequest,
    *,
    max_amount_major: int,
    wake: Callable[[], None] = lambda: None,
) -> RefundResult:
    merchant, mode = caller_scope(request.merchant_id, request.mode)
    if not mode:
        raise InvalidArgument("missing_mode", "a refund is asked for in one mode", field="mode")
    sid = parse_uuid(request.session_id, "session_id", not_found="session_not_found")
    reason = _reason(request.reason)
    if len(request.provider_refund_id) > 255 or len(request.idempotency_key) > 255:
        raise InvalidArgument(
            "invalid_provider_refund_id", "at most 255 characters", field="provider_refund_id"
        )
    if request.via_provider and request.provider_refund_id:
        raise InvalidArgument(
            "invalid_provider_refund_id",
            "provider_refund_id names a refund made outside paygate",
            field="provider_refund_id",
        )
    chain_tx = _chain_tx_hash(request)
    who = clean_actor(request.actor, f"merchant:{merchant}")
    key = request.idempotency_key or None
    async with pool.acquire() as conn:
        if key is not None:
            replay = await _replay(conn, merchant, mode, key, request.request_fingerprint, sid)
            if replay is not None:
                return replay
        try:
            async with conn.transaction():
                session = await repo.load_for_caller(conn, merchant, mode, sid, lock=True)
                if session is None:
                    raise NotFound("session_not_found", "no such session")
                earlier = await _chain_refund_check(conn, session, chain_tx)
                if earlier is not None:
                    # The same refund tx again: it stands for the refund it already made (one tx, one refund).
                    return RefundResult(earlier, await _session_with_children(conn, sid), replayed=True)
                amount = None
                if request.amount:
                    amount = parse_amount(
                        request.amount,
                        session["currency"],
                        session["exponent"],
                        max_minor_from_major(max_amount_major, session["exponent"]),
                    ).amount_minor
                ledger = refunds_repo.ledger_of(session, await refunds_repo.session_refunds(conn, sid))
                refund_id = uuid.uuid4()
                outcome = request_refund(
                    ledger,
                    amount,
                    refund_id=refund_id,
                    origin=RefundOrigin.MERCHANT if request.via_provider else RefundOrigin.OUTSIDE,
                    provider_refund_id=chain_tx or request.provider_refund_id or None,
                    reason=reason,
                )
                await _persist(
                    conn,
                    session,
                    outcome,
                    source=f"refund:{refund_id}",
                    actor=who,
                    idempotency_key=key,
                    fingerprint=request.request_fingerprint or None,
                )
        except asyncpg.UniqueViolationError as error:
            if key is None or error.constraint_name != "refunds_idempotency":
                raise
            # A concurrent request with the same key won; answer with its refund.
            replay = await _replay(conn, merchant, mode, key, request.request_fingerprint, sid)
            assert replay is not None
            return replay
        wake()
        refund = await refunds_repo.get_refund(conn, merchant, mode, refund_id)
        return RefundResult(refund, await _session_with_children(conn, sid))


def _chain_tx_hash(request: RefundRequest) -> str:
    """The verified refund tx hash of a web3 refund request (lower-case), or ""; InvalidArgument if malformed
    or combined with what only other providers' refunds have."""
    if not request.chain_tx_hash:
        return ""
    tx = request.chain_tx_hash.strip().lower()
    if not _TX_HASH.match(tx):
        raise InvalidArgument(
            "invalid_tx_hash", "tx_hash must be 0x followed by 64 hex digits", field="tx_hash"
        )
    if request.via_provider or request.provider_refund_id:
        raise InvalidArgument(
            "invalid_tx_hash",
            "a web3 refund is identified by its tx_hash alone",
            field="tx_hash",
        )
    return tx


async def _chain_refund_check(conn: asyncpg.Connection, session: Any, chain_tx: str) -> Any:
    """A web3 refund needs its on-chain tx, and other refunds have none. Returns the refund this tx already
    made for this session (a repeat), or None; FailedPrecondition if it refunded another session."""
    is_web3 = session["provider"] == "web3"
    if is_web3 and not chain_tx:
        raise InvalidArgument(
            "missing_tx_hash",
            "a web3 refund names the refund transaction (tx_hash), which paygate verifies on chain",
            field="tx_hash",
        )
    if not chain_tx:
        return None
    if not is_web3:
        raise InvalidArgument("invalid_tx_hash", "tx_hash is for web3 sessions only", field="tx_hash")
    await refunds_repo.lock_chain_tx(conn, chain_tx)
    earlier = await refunds_repo.find_chain_refund(conn, chain_tx)
    if earlier is None:
        return None
    if earlier["session_id"] != session["id"]:
        raise FailedPrecondition(
            "refund_tx_already_used",
            "this refund transaction is already recorded as the refund of another session",
            field="tx_hash",
        )
    return earlier


async def _replay(
    conn: asyncpg.Connection, merchant: uuid.UUID, mode: str, key: str, fingerprint: str, sid: uuid.UUID
) -> RefundResult | None:
    existing = await refunds_repo.find_by_idempotency_key(conn, merchant, mode, key)
    if existing is None:
        return None
    if (existing["request_fingerprint"] or "") != (fingerprint or "") or existing["session_id"] != sid:
        raise AlreadyExists(
            "idempotency_conflict",
            "this idempotency key was used with a different request",
            field="idempotency_key",
        )
    if existing["replaced_by"] is not None:
        # The request's record was merged into the provider's (`attach_provider_refund`): its first answer was
        # the refund that stands, and a retry answers the same.
        standing = await refunds_repo.get_refund(conn, merchant, mode, existing["replaced_by"])
        existing = standing if standing is not None else existing
    return RefundResult(existing, await _session_with_children(conn, sid), replayed=True)


async def attach(
    pool: asyncpg.Pool,
    merchant_id: str,
    mode: str | None,
    refund_id: str,
    provider_refund_id: str,
    status: str,
    *,
    failure_reason: str = "",
    wake: Callable[[], None] = lambda: None,
) -> RefundResult:
    """The provider's API answered the refund paygate asked it for (`failure_reason`: the error code it refused
    the refund with)."""
    merchant, scope_mode = caller_scope(merchant_id, mode)
    rid = parse_uuid(refund_id, "refund_id", not_found="refund_not_found")
    if not provider_refund_id or len(provider_refund_id) > 255:
        raise InvalidArgument(
            "invalid_provider_refund_id", "provider_refund_id is required", field="provider_refund_id"
        )
    answered = _status(status, "status")
    async with pool.acquire() as conn:
        async with conn.transaction():
            refund = await refunds_repo.get_refund(conn, merchant, scope_mode, rid)
            if refund is None:
                raise NotFound("refund_not_found", "no such refund")
            session = await repo.lock_session(conn, refund["session_id"])
            assert session is not None
            ledger = refunds_repo.ledger_of(session, await refunds_repo.session_refunds(conn, session["id"]))
            outcome, standing = attach_provider_refund(
                ledger, rid, provider_refund_id, answered, _failure_reason(failure_reason)
            )
            if outcome.changed:
                await _persist(conn, session, outcome, source=f"refund:{rid}", actor="gateway")
        wake()
        row = await refunds_repo.get_refund(conn, merchant, scope_mode, standing.id)
        return RefundResult(row, await _session_with_children(conn, session["id"]))


async def _persist(
    conn: asyncpg.Connection,
    session: Any,
    outcome: Outcome,
    *,
    source: str,
    actor: str,
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
    charge_id: str | None = None,
    event: tuple[str, str, str] | None = None,  # (provider, provider event id, provider reference)
    dispute_amount: Money | None = None,
) -> None:
    """Write a decided outcome in the caller's transaction (which holds the session's row lock)."""
    await refunds_repo.save_refunds(
        conn, session, outcome.upserts, idempotency_key=idempotency_key, request_fingerprint=fingerprint
    )
    await refunds_repo.save_ledger_facts(conn, session["id"], outcome.ledger, outcome.key_access, charge_id)
    to_status = SessionStatus.REFUNDED.value if outcome.moves_to_refunded else None
    detail: dict[str, Any] = {"note": outcome.note, "refunds": [_refund_detail(r) for r in outcome.upserts]}
    if outcome.ledger.dispute_status is not None:
        detail["dispute_status"] = outcome.ledger.dispute_status.value
    if outcome.ledger.dispute_kind is not None:
        detail["dispute_kind"] = outcome.ledger.dispute_kind.value
    provider, event_id, reference = event if event else (None, None, None)
    written = await state_moves.write_move(
        conn,
        state_moves.Move(
            session_id=session["id"],
            merchant_id=session["merchant_id"],
            from_status=session["status"],
            to_status=to_status,
            source_event_id=source,
            note=outcome.note,
            # A change of money or dispute is in the session's history even when the status stays.
            history=outcome.changed,
            actor=actor,
            action=_audit_action(outcome, to_status),
            detail=detail,
            provider=provider,
            provider_event_id=event_id,
            outcome=ApplyOutcome.APPLIED.value if provider else None,
            provider_reference=reference or None,
            expected_paid_reference=session["paid_reference"],
            expected_provider=session["provider"],
        ),
    )
    assert written["applied"], "the row is locked by this transaction"
    event_type = dispute_event(outcome.note)
    if event is not None and outcome.ledger.dispute_status is not None and event_type is not None:
        await refunds_repo.emit_event(
            conn,
            session,
            event_type,
            outcome.ledger.dispute_id or "",
            dispute_json(
                dispute_id=outcome.ledger.dispute_id or "",
                session_id=str(session["id"]),
                status=outcome.ledger.dispute_status.value,
                kind=outcome.ledger.dispute_kind.value if outcome.ledger.dispute_kind else None,
                amount=money_message(dispute_amount) if dispute_amount is not None else None,
            ),
        )


def _audit_action(outcome: Outcome, to_status: str | None) -> str | None:
    """The audit row's action: the move, else what changed; None (no audit row) for a recorded no-op.

    A provider's refund report that settles no refund and finds no surplus changed only the provider's running
    total (kept to cap later reports): no money moved, so it is a no-op to the audit trail, as a duplicate
    event is. Audited, it read as a second refund (`GET /v1/audit` shows no detail)."""
    if to_status:
        return f"session_{to_status}"
    if not outcome.changed:
        return None
    if outcome.note == "refund_reported" and not outcome.upserts and not outcome.surplus_minor:
        return None
    return outcome.note


def _refund_detail(refund: Refund) -> dict[str, Any]:
    return {
        "id": str(refund.id),
        "amount_minor": str(refund.amount_minor),
        "credited_minor": str(refund.credited_minor),
        "status": refund.status.value,
        "origin": refund.origin.value,
        "provider_refund_id": refund.provider_refund_id,
        # Only a failed refund's entry names why (entries of other refunds keep their former shape).
        **({"failure_reason": refund.failure_reason} if refund.failure_reason else {}),
    }


# ---------------------------------------------------------------------------------------------- events
async def apply_refund_event(
    pool: asyncpg.Pool,
    command: EventCommand,
    detail: RefundEventDetail,
    *,
    wake: Callable[[], None] = lambda: None,
) -> Applied:
    """A provider's refund or dispute event. Idempotent on (provider, event id); the refund it reports is
    idempotent on the provider's refund id. An event for a session that was never paid, of another mode or
    provider, is quarantined as before (recorded_for_review / mode_mismatch / provider_mismatch)."""
    # A refund or dispute may name only the charge of the payment (contract §4): that is a reference too.
    validate_command(replace(command, provider_reference=command.provider_reference or detail.charge_id))
    event = payment_event_of(command)
    async with pool.acquire() as conn:
        for _ in range(2):
            try:
                async with conn.transaction():
                    applied = await _apply_event(conn, command, event, detail)
                break
            except asyncpg.UniqueViolationError:
                # The same event (or the same refund) committed under another delivery meanwhile: decide again
                # on what it wrote.
                continue
        else:
            raise FailedPrecondition("refund_event_conflict", "the event kept racing another delivery")
    wake()
    return applied


async def _apply_event(
    conn: asyncpg.Connection, command: EventCommand, event: Any, detail: RefundEventDetail
) -> Applied:
    sid = await _resolve(conn, command, detail)
    session = await repo.lock_session(conn, sid)
    if session is None:
        raise NotFound("session_not_found", "no such session")
    prior = await repo.processed_event(conn, command.provider, command.provider_event_id)
    if prior is not None:
        return Applied(
            ApplyOutcome.DUPLICATE,
            ApplyOutcome(prior["outcome"]),
            dict(await _session_with_children(conn, sid)),
            prior["quarantine_id"],
        )
    snapshot = snapshot_of(session)
    decision = decide(snapshot, event)
    was_paid = snapshot.status in (SessionStatus.PAID, SessionStatus.REFUNDED)
    if (
        decision.quarantine not in (QuarantineReason.REFUNDED, QuarantineReason.DISPUTED)
        or not was_paid
        or not _describes_itself(command, detail)
    ):
        # Another mode, another provider, a session that was never paid, or an event that does not say which
        # refund or dispute it is about: the merchant looks at it (never dropped).
        return await _quarantine(conn, session, command, decision)
    foreign = _foreign_money(command, detail, session)
    if foreign is not None:
        # A refund in another currency cannot be credited: the merchant sees it, once per provider refund.
        return await _quarantine_refunds(conn, session, command, detail, foreign)
    rows = await refunds_repo.session_refunds(conn, sid)
    ledger = refunds_repo.ledger_of(session, rows)
    if command.kind is EventKind.REFUNDED:
        # What the quarantine already shows of a refund surplus, so a report opens only what is new.
        ledger = replace(ledger, surplus_quarantined_minor=await refunds_repo.quarantined_surplus(conn, sid))
    outcome = _decide_event(ledger, session, command, detail)
    await _persist(
        conn,
        session,
        outcome,
        source=f"{command.provider}:{command.provider_event_id}",
        actor=f"provider:{command.provider}",
        charge_id=detail.charge_id or None,
        event=(command.provider, command.provider_event_id, command.provider_reference),
        dispute_amount=detail.dispute.amount if detail.dispute is not None else None,
    )
    for failed in outcome.failed_after_success:
        await _quarantine_failed_refund(conn, session, command, failed)
    if outcome.surplus_minor:
        await _quarantine_refund_surplus(conn, session, command, ledger, outcome)
    return Applied(ApplyOutcome.APPLIED, None, dict(await _session_with_children(conn, sid)), None)


def _foreign_money(command: EventCommand, detail: RefundEventDetail, session: Any) -> Money | None:
    """The money a refund event reports in another currency than the session's (what the merchant's entry
    shows: the listed refunds' sum, else the provider's total), or None when it is in the session's currency."""
    if command.kind is not EventKind.REFUNDED:
        return None
    amounts = [r.amount for r in detail.refunds if r.amount is not None]
    foreign = [m for m in amounts if m.currency != session["currency"]]
    if foreign:
        return Money(sum(m.amount_minor for m in foreign), foreign[0].currency, foreign[0].exponent)
    total = detail.refunded_total
    if total is not None and total.currency != session["currency"]:
        return total
    return None


def _refund_keys(detail: RefundEventDetail, foreign: Money) -> list[str]:
    """What one quarantined refund event is about: its provider refund ids, or its total when it lists none."""
    keys = [r.refund_id for r in detail.refunds if r.refund_id]
    return keys or [f"total:{foreign.amount_minor}:{foreign.currency}"]


async def _quarantine_refunds(
    conn: asyncpg.Connection, session: Any, command: EventCommand, detail: RefundEventDetail, foreign: Money
) -> Applied:
    """Quarantine (`refund_currency_mismatch`) the refunds of an event in another currency, each provider
    refund once: an event whose refunds all have an entry already is the recorded no-op
    `already_quarantined`, naming that entry."""
    keys = _refund_keys(detail, foreign)
    known = await refunds_repo.quarantined_refunds(conn, session["id"], command.provider, keys)
    new = [k for k in keys if k not in known]
    reason = QuarantineReason.REFUND_CURRENCY_MISMATCH.value
    quarantine_id: uuid.UUID = uuid.uuid4() if new else known[keys[0]]
    outcome = ApplyOutcome.AMOUNT_MISMATCH if new else ApplyOutcome.ALREADY_QUARANTINED
    written = await state_moves.write_move(
        conn,
        state_moves.Move(
            session_id=session["id"],
            merchant_id=session["merchant_id"],
            from_status=session["status"],
            to_status=None,
            source_event_id=f"{command.provider}:{command.provider_event_id}",
            note=reason if new else "already_quarantined",
            history=False,
            actor=f"provider:{command.provider}",
            action="event_quarantined" if new else None,
            detail={
                "event": f"{command.provider}:{command.provider_event_id}",
                "outcome": outcome.value,
                "note": reason,
                "type": command.provider_event_type,
                "amount": foreign.display(),
                "refunds": keys,
            },
            provider=command.provider,
            provider_event_id=command.provider_event_id,
            outcome=outcome.value,
            provider_reference=command.provider_reference or None,
            quarantine_id=quarantine_id,
            quarantine_reason=reason if new else None,
            quarantine_amount=foreign if new else None,
            quarantine_mode=command.mode.value if command.mode else session["mode"],
            expected_paid_reference=session["paid_reference"],
            expected_provider=session["provider"],
        ),
    )
    assert written["applied"], "the row is locked by this transaction"
    if new:
        await refunds_repo.record_quarantined_refunds(
            conn, session["id"], command.provider, new, quarantine_id
        )
    after = dict(await _session_with_children(conn, session["id"]))
    return Applied(outcome, None, after, quarantine_id)


async def _quarantine_failed_refund(
    conn: asyncpg.Connection, session: Any, command: EventCommand, failed: Refund
) -> None:
    """A refund that had succeeded failed: the money did not go back. Its credit note (a legal document) stands;
    the merchant is told in quarantine (`refund_failed`), the note naming the credit note when one was issued.

    The number is read again now that this transaction has written the refund row, not taken from the read
    the decision used: a credit note recorded in between (the worker's `record_credit_note`, which takes the
    same row) has committed by now and is seen, and one recorded later waits for this commit, finds the
    refund failed and names itself in this entry."""
    number = await refunds_repo.credit_note_number(conn, failed.id)
    await refunds_repo.open_quarantine(
        conn,
        session,
        reason=QuarantineReason.REFUND_FAILED.value,
        note=refunds_repo.failed_refund_note(failed.provider_refund_id or str(failed.id), number),
        provider=command.provider,
        provider_event_id=command.provider_event_id,
        provider_reference=command.provider_reference or None,
        amount_minor=failed.amount_minor,
        mode=command.mode.value if command.mode else session["mode"],
        refund_id=failed.id,
    )


async def _quarantine_refund_surplus(
    conn: asyncpg.Connection, session: Any, command: EventCommand, before: Ledger, outcome: Outcome
) -> None:
    """The provider reported more refunded than the price: the refunds credit the price, and the money beyond it
    is shown to the merchant in one `refund_exceeds_price` entry, in this transaction. The entry holds only
    the surplus no earlier entry shows (the entries add up to the highest surplus reported, domain rule
    `refund_surplus_minor`); its high-water key in `quarantined_refunds` settles two reports that race."""
    currency, exponent = session["currency"], session["exponent"]
    shown_before = before.surplus_quarantined_minor
    refund_ids = [
        r.provider_refund_id or str(r.id) for r in outcome.upserts if r.status is RefundStatus.SUCCEEDED
    ]
    entry = await refunds_repo.open_quarantine(
        conn,
        session,
        reason=QuarantineReason.REFUND_EXCEEDS_PRICE.value,
        note=refunds_repo.refund_surplus_note(
            refund_ids,
            Money(outcome.surplus_minor, currency, exponent),
            Money(outcome.ledger.amount_minor, currency, exponent),
            Money(shown_before, currency, exponent) if shown_before else None,
        ),
        provider=command.provider,
        provider_event_id=command.provider_event_id,
        provider_reference=command.provider_reference or None,
        amount_minor=outcome.surplus_minor,
        surplus_minor=outcome.surplus_minor,
        mode=command.mode.value if command.mode else session["mode"],
    )
    await refunds_repo.record_quarantined_refunds(
        conn,
        session["id"],
        command.provider,
        [f"exceeds_price:{outcome.ledger.surplus_quarantined_minor}"],
        entry,
    )


def _describes_itself(command: EventCommand, detail: RefundEventDetail) -> bool:
    if command.kind is EventKind.DISPUTED:
        return detail.dispute is not None and bool(detail.dispute.dispute_id)
    return bool(detail.refunds) or detail.refunded_total is not None


def _decide_event(ledger: Any, session: Any, command: EventCommand, detail: RefundEventDetail) -> Outcome:
    if command.kind is EventKind.DISPUTED:
        if detail.dispute is None:
            raise InvalidArgument(
                "missing_dispute", "a dispute event must carry its dispute", field="dispute"
            )
        try:
            action = DisputeAction(detail.dispute.action)
        except ValueError:
            raise InvalidArgument(
                "invalid_dispute_action", "unknown dispute action", field="dispute"
            ) from None
        return apply_dispute(
            ledger, action, dispute_id=detail.dispute.dispute_id, provider_status=detail.dispute.status
        )
    reports = tuple(_report(r, session) for r in detail.refunds)
    total = _in_session_units(detail.refunded_total, session) if detail.refunded_total is not None else None
    if not reports and total is None:
        raise InvalidArgument("missing_refund_id", "a refund event must name its refund", field="refunds")
    return apply_reports(ledger, reports, provider_total_minor=total, reported_at=detail.reported_at)


def _in_session_units(money: Money, session: Any) -> int:
    """An amount the provider reported, in the session's own minor units (it must be the same currency)."""
    if money.currency != session["currency"]:
        raise InvalidArgument(
            "refund_currency_mismatch",
            f"a refund in {money.currency} cannot refund a {session['currency']} session",
            field="amount",
        )
    try:
        return money.rescaled(session["exponent"]).amount_minor
    except ValueError:
        raise InvalidArgument(
            "refund_amount_too_precise",
            "the refunded amount has more digits than the currency",
            field="amount",
        ) from None


def _report(report: ProviderRefundReport, session: Any) -> RefundReport:
    if not report.refund_id or len(report.refund_id) > 255:
        raise InvalidArgument("invalid_refund_id", "a reported refund needs its id", field="refunds")
    paygate_id = None
    if report.paygate_refund_id:
        try:
            paygate_id = uuid.UUID(report.paygate_refund_id)
        except ValueError:
            paygate_id = None
    return RefundReport(
        provider_refund_id=report.refund_id,
        amount_minor=_in_session_units(report.amount, session) if report.amount is not None else 0,
        status=_status(report.status, "refund_status"),
        paygate_refund_id=paygate_id,
        failure_reason=_failure_reason(report.failure_reason),
    )


async def _resolve(conn: asyncpg.Connection, command: EventCommand, detail: RefundEventDetail) -> uuid.UUID:
    if command.session_id:
        try:
            return uuid.UUID(command.session_id)
        except ValueError:
            raise NotFound("session_not_found", "no such session") from None
    found = await refunds_repo.find_session_for_payment(
        conn, command.provider, command.provider_reference, detail.charge_id
    )
    if found is None:
        raise NotFound("session_not_found", "no session is known for the payment this event names")
    return found


async def _quarantine(
    conn: asyncpg.Connection, session: Any, command: EventCommand, decision: Any
) -> Applied:
    planned = PlannedMove(session, command, decision, uuid.uuid4() if decision.quarantine else None)
    written = await state_moves.write_move(conn, planned.move())
    assert written["applied"], "the row is locked by this transaction"
    after = dict(await _session_with_children(conn, session["id"]))
    return Applied(decision.outcome, None, after, planned.quarantine_id)
