"""`credit_note_amount`: a refund's credit note first uses the credit on paper no standing refund accounts for, so
the notes add up to the money that went back (domain/refunds.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from session_service.domain.refunds import credit_note_amount


@pytest.mark.parametrize(
    ("credited", "covered", "on_paper", "note"),
    [
        (2000, 0, 0, 2000),  # the first refund: its own note
        (2000, 1000, 1000, 2000),  # earlier refunds all standing: nothing on paper is unused
        (2000, 0, 2000, 0),  # the same money again after the first refund failed: the standing note covers it
        (5000, 0, 2000, 3000),  # a full refund after a failed 20.00: the rest only
        (1000, 0, 2000, 0),  # less than the unused credit: none of its own, the rest stays unused
        (2000, 3000, 1000, 2000),  # notes skipped for a voided invoice: covered beyond paper uses nothing
    ],
)
def test_the_note_credits_what_no_standing_note_does(
    credited: int, covered: int, on_paper: int, note: int
) -> None:
    assert credit_note_amount(credited, covered_minor=covered, on_paper_minor=on_paper) == note


def test_negative_amounts_are_refused() -> None:
    with pytest.raises(ValueError):
        credit_note_amount(-1, covered_minor=0, on_paper_minor=0)


@given(st.lists(st.tuples(st.integers(1, 10_000), st.booleans()), min_size=1, max_size=12))
def test_notes_never_credit_less_than_stands_nor_more_than_failures_explain(
    refunds: list[tuple[int, bool]],
) -> None:
    """Refunds settled one after the other, each failing right after its note or standing: the notes on paper
    always cover what stands, exceed it only by what failed refunds credited, and equal it while none failed."""
    on_paper = covered = failed = 0
    for credited, fails in refunds:
        note = credit_note_amount(credited, covered_minor=covered, on_paper_minor=on_paper)
        assert 0 <= note <= credited
        on_paper += note
        if fails:
            failed += credited
        else:
            covered += credited
        assert covered <= on_paper <= covered + failed
        if failed == 0:
            assert on_paper == covered
