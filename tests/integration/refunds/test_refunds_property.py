"""Property over the real services (contract §8): whatever mix of merchant refunds, provider refund reports and
provider totals arrives, the credit notes billing issued for a session add up to exactly the session's
`amount_refunded`, never more than it cost, and the session is `refunded` exactly when all of it went back."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from support import polling
from support.refund_flows import (
    applied,
    charge_refunded,
    credited_sum,
    paid_session,
    refund,
    refund_object,
    send_stripe,
    session_json,
    stripe_envelope,
)
from support.stack import ServiceStack

PRICE = 10000  # 100.00 EUR

_step = st.one_of(
    st.tuples(st.just("outside"), st.integers(1, PRICE // 2)),
    st.tuples(
        st.just("report"),
        st.integers(0, 3),
        st.integers(1, PRICE // 2),
        st.sampled_from(["succeeded", "pending", "failed"]),
    ),
    st.tuples(st.just("total"), st.integers(0, PRICE)),
)


def _sequences(count: int) -> list[list[tuple[Any, ...]]]:
    """`count` random refund sequences, drawn by hypothesis (derandomized, so a failure reproduces)."""
    drawn: list[list[tuple[Any, ...]]] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(_step, min_size=1, max_size=6))
    def collect(steps: list[tuple[Any, ...]]) -> None:
        drawn.append(steps)

    collect()
    return drawn[:count]


async def test_credit_notes_always_add_up_to_the_refunded_sum(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    for number, steps in enumerate(_sequences(6)):
        paid = await paid_session(stack, merchant, "100.00")
        for step in steps:
            if step[0] == "outside":
                status, body = await refund(stack, merchant, paid.id, {"amount": f"{step[1] / 100:.2f}"})
                assert status in (202, 400, 409), body
                continue
            if step[0] == "report":
                obj = refund_object(
                    f"re_{number}_{step[1]}", step[2], paid.payment_intent, paid.charge, step[3]
                )
                event = stripe_envelope("refund.updated", obj)
            else:
                event = charge_refunded(paid.payment_intent, paid.charge, PRICE, [], step[1])
            await send_stripe(stack, event)
            assert await applied(stack, "stripe", event["id"]) == "applied"

        async def settled() -> dict[str, Any] | None:
            session = await session_json(stack, merchant, paid.id)
            credited = [r for r in session["refunds"] if r["credited_minor"] > 0]
            return session if all(r["credit_note_number"] for r in credited) else None

        session = await polling.eventually(settled, timeout=20, what=f"credit notes of sequence {steps}")
        refunded = session["amount_refunded_minor"]
        assert await credited_sum(stack, merchant, paid.id) == refunded, steps
        assert sum(r["credited_minor"] for r in session["refunds"]) == refunded
        assert 0 <= refunded <= PRICE
        assert (session["status"] == "refunded") == (refunded == PRICE), (steps, session["status"], refunded)
