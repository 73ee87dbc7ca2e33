from __future__ import annotations

import itertools

import pytest

from paygate_runtime.errors import FailedPrecondition, InvalidArgument
from session_service.domain.states import (
    AFTER_PAYMENT,
    OVERRIDES,
    TERMINAL,
    TRANSITIONS,
    PaymentStatus,
    SessionStatus,
    can_move,
    can_override,
    is_terminal,
    next_statuses,
    parse_status,
    payment_status,
    require_move,
    transition_table_markdown,
)

S = SessionStatus
ALLOWED = {
    (S.CREATED, S.PENDING),
    (S.CREATED, S.PAID),
    (S.PENDING, S.PAID),
    (S.CREATED, S.FAILED),
    (S.PENDING, S.FAILED),
    (S.CREATED, S.EXPIRED),
    (S.PAID, S.REFUNDED),
}


def test_values_are_the_contract_names() -> None:
    assert [s.value for s in SessionStatus] == ["created", "pending", "paid", "failed", "expired", "refunded"]
    assert [p.value for p in PaymentStatus] == [
        "not_started",
        "processing",
        "paid",
        "failed",
        "expired",
        "refunded",
    ]


@pytest.mark.parametrize(("source", "target"), list(itertools.product(SessionStatus, repeat=2)))
def test_exactly_the_issue_moves_are_allowed(source: SessionStatus, target: SessionStatus) -> None:
    assert can_move(source, target) is ((source, target) in ALLOWED)


def test_terminal_states_are_derived_from_the_table() -> None:
    # Terminal = the payment has ended: no payment event moves the session. Only money going back leaves
    # `paid` (to `refunded`, contract §6), and nothing leaves the others.
    assert {S.PAID, S.FAILED, S.EXPIRED, S.REFUNDED} == TERMINAL
    for status in TERMINAL:
        assert next_statuses(status) <= {target for source, target in AFTER_PAYMENT if source == status}
        assert is_terminal(status)
    assert next_statuses(S.PAID) == {S.REFUNDED}
    assert next_statuses(S.REFUNDED) == frozenset()
    assert not is_terminal(S.CREATED) and not is_terminal(S.PENDING)


def test_pending_never_expires_on_its_own() -> None:
    assert not can_move(S.PENDING, S.EXPIRED)
    assert next_statuses(S.PENDING) == {S.PAID, S.FAILED}


def test_the_only_override_is_expired_to_paid_and_it_is_not_a_normal_move() -> None:
    assert set(OVERRIDES) == {(S.EXPIRED, S.PAID)}
    assert can_override(S.EXPIRED, S.PAID)
    assert not can_move(S.EXPIRED, S.PAID)
    assert not can_override(S.FAILED, S.PAID)


def test_no_move_goes_backwards_or_stays() -> None:
    rank = {S.CREATED: 0, S.PENDING: 1, S.PAID: 2, S.FAILED: 2, S.EXPIRED: 2, S.REFUNDED: 3}
    for source, target in TRANSITIONS:
        assert rank[target] > rank[source]


def test_payment_status_is_derived() -> None:
    assert {s: payment_status(s).value for s in SessionStatus} == {
        S.CREATED: "not_started",
        S.PENDING: "processing",
        S.PAID: "paid",
        S.FAILED: "failed",
        S.EXPIRED: "expired",
        S.REFUNDED: "refunded",
    }


def test_require_move_refuses_with_a_stable_code() -> None:
    require_move(S.CREATED, S.PAID)
    with pytest.raises(FailedPrecondition) as caught:
        require_move(S.PAID, S.PENDING)
    assert caught.value.code == "invalid_transition"


def test_parse_status() -> None:
    assert parse_status("paid") is S.PAID
    assert parse_status("refunded") is S.REFUNDED
    for raw in ("PAID", "", None, "refund", " paid"):
        with pytest.raises(InvalidArgument) as caught:
            parse_status(raw)
        assert caught.value.code == "invalid_status"


def test_markdown_is_rendered_from_the_same_table() -> None:
    markdown = transition_table_markdown()
    rows = [line for line in markdown.splitlines() if line.startswith("| `")]
    assert len(rows) == len(TRANSITIONS) + len(OVERRIDES)
    for source, target in TRANSITIONS:
        assert any(row.startswith(f"| `{source}` | `{target}` |") for row in rows)
    assert "| `expired` | `paid` | override only" in markdown
    assert "Terminal states: `paid`, `failed`, `expired`, `refunded`" in markdown
    assert "| `paid` | `refunded` |" in markdown
