from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from billing_service.domain.credit_notes import (
    REFUND_LINE_PREFIX,
    CreditOrigin,
    build_refund_credit_note,
    credit_origin,
    reason_words,
    settlement,
)
from billing_service.domain.invoices import (
    DocumentKind,
    Invoice,
    InvoiceStatus,
    LineItem,
    Party,
    build_credit_note,
    build_invoice,
    mark_void,
)
from paygate_runtime.errors import FailedPrecondition, InvalidArgument

ISSUED_AT = datetime(2025, 12, 30, 9, 0, tzinfo=UTC)
VOIDED_AT = datetime(2026, 1, 2, 9, 0, tzinfo=UTC)


def _invoice() -> Invoice:
    return build_invoice(
        id="inv-1", merchant_id="m1", mode="test", session_id="s1", amount_minor=11_999, currency="EUR",
        exponent=2, seller=Party(name="Acme"), buyer=Party(name="Jo", email="jo@example.com"), prefix="ACME",
        sequence=41, issued_at=ISSUED_AT, tax_rate_bps=1_900,
        line_items=[LineItem("Plan", 2, 5_000), LineItem("Setup", 1, 1_999)],
    )  # fmt: skip


def _credit_note(original: Invoice, **overrides: object) -> Invoice:
    args: dict[str, object] = {"id": "cn-1", "prefix": "ACME", "sequence": 42, "issued_at": VOIDED_AT}
    args.update(overrides)
    return build_credit_note(original, **args)  # type: ignore[arg-type]


def test_credit_note_negates_the_original_exactly_and_references_it() -> None:
    original = _invoice()
    note = _credit_note(original, reason="Duplicate charge")
    assert note.kind == DocumentKind.CREDIT_NOTE
    assert note.is_credit_note
    assert note.credits_invoice_id == "inv-1"
    assert (note.total, note.subtotal, note.tax) == (-original.total, -original.subtotal, -original.tax)
    assert note.subtotal + note.tax == note.total < 0
    assert sum(item.amount for item in note.line_items) == note.total
    assert [i.quantity for i in note.line_items] == [2, 1]
    assert (note.currency, note.exponent, note.tax_rate_bps) == ("EUR", 2, 1_900)
    assert (note.merchant_id, note.mode, note.session_id) == ("m1", "test", "s1")
    assert note.seller == original.seller and note.buyer == original.buyer
    assert note.reason == "Duplicate charge"
    assert note.status == InvoiceStatus.ISSUED


def test_credit_note_is_numbered_in_the_same_sequence_with_its_own_year() -> None:
    note = _credit_note(_invoice())
    assert note.number == "ACME-2026-000042"
    assert note.sequence == 42


def test_mark_void_changes_only_status_and_credit_note_pointer() -> None:
    original = _invoice()
    note = _credit_note(original)
    voided = mark_void(original, note)
    assert voided.status == InvoiceStatus.VOID and voided.is_void
    assert voided.credit_note_id == "cn-1"
    unchanged = {
        f: getattr(original, f)
        for f in original.__dataclass_fields__
        if f not in ("status", "credit_note_id")
    }
    assert unchanged == {f: getattr(voided, f) for f in unchanged}


def test_voiding_twice_is_refused() -> None:
    original = _invoice()
    voided = mark_void(original, _credit_note(original))
    with pytest.raises(FailedPrecondition) as err:
        _credit_note(voided, id="cn-2", sequence=43)
    assert err.value.code == "already_void"


def test_a_credit_note_cannot_be_credited() -> None:
    note = _credit_note(_invoice())
    with pytest.raises(FailedPrecondition) as err:
        _credit_note(note, id="cn-2", sequence=43)
    assert err.value.code == "not_an_invoice"


def test_mark_void_refuses_a_credit_note_for_another_invoice() -> None:
    original = _invoice()
    other_note = _credit_note(original)
    stranger = build_invoice(
        id="inv-2", merchant_id="m1", mode="test", session_id="s2", amount_minor=100, currency="EUR",
        exponent=2, seller=Party(), prefix="ACME", sequence=43, issued_at=ISSUED_AT,
    )  # fmt: skip
    with pytest.raises(FailedPrecondition) as err:
        mark_void(stranger, other_note)
    assert err.value.code == "credit_note_mismatch"


def test_credit_note_validates_its_own_identity() -> None:
    with pytest.raises(InvalidArgument) as err:
        _credit_note(_invoice(), issued_at=datetime(2026, 1, 1))
    assert err.value.code == "invalid_issued_at"
    with pytest.raises(InvalidArgument) as err:
        _credit_note(_invoice(), reason="x" * 501)
    assert err.value.code == "invalid_reason"


def test_a_credit_notes_origin_and_reason_words_come_from_the_stored_document() -> None:
    original = _invoice()
    refund = build_refund_credit_note(
        original, 500, already_credited=0, id="cn-2", prefix="ACME", sequence=43, issued_at=VOIDED_AT,
        reason="refund",
    )  # fmt: skip
    dispute = build_refund_credit_note(
        original, 11_999, already_credited=0, id="cn-3", prefix="ACME", sequence=44, issued_at=VOIDED_AT,
        reason="dispute_lost",
    )  # fmt: skip
    void = _credit_note(original, reason="dispute_lost is not a void's reason, but the lines tell")
    assert [credit_origin(n) for n in (refund, dispute, void)] == [
        CreditOrigin.REFUND,
        CreditOrigin.DISPUTE,
        CreditOrigin.VOID,
    ]
    assert dispute.reason == "dispute_lost"  # stored as the code; only its rendering is words
    assert reason_words("dispute_lost") == "payment disputed by the cardholder and lost"
    assert reason_words("Duplicate charge") == "Duplicate charge"
    assert (settlement(refund).settled, settlement(refund).due) == (-500, 0)
    assert (settlement(void).settled, settlement(void).due) == (0, -11_999)


def test_a_stored_credit_note_is_known_by_its_refund_not_by_its_line() -> None:
    """A void copies the invoice's lines: an invoice whose one line happens to read "Refund of invoice ..." must
    not make its void's credit note look like a refund's once it is read back (refund_id "" for it)."""
    original = dataclasses.replace(
        _invoice(), line_items=(LineItem(f"{REFUND_LINE_PREFIX}ACME-2026-000001", 1, 11_999),)
    )
    void = dataclasses.replace(_credit_note(original, reason="issued in error"), refund_id="")
    assert (
        credit_origin(dataclasses.replace(void, refund_id=None)) is CreditOrigin.REFUND
    )  # in memory: the line
    assert credit_origin(void) is CreditOrigin.VOID
    refund = dataclasses.replace(void, refund_id="5f0c7e4e-8d1b-4d5e-9a65-0f6a1b2c3d4e")
    assert credit_origin(refund) is CreditOrigin.REFUND
