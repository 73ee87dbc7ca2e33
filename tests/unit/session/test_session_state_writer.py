"""The one state-move writer (issue 15 item 5) refuses an illegal move before it reaches the database."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

import pytest

from paygate_runtime.errors import FailedPrecondition
from session_service.adapters import state_moves
from session_service.adapters.state_moves import Move, check_move
from session_service.domain.states import OVERRIDES, TRANSITIONS, SessionStatus, can_move

S = SessionStatus


class _NoDatabase:
    """A connection that must never be used: any statement fails the test."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        self.statements.append(sql)
        raise AssertionError("an illegal move reached the database")

    async def fetch(self, sql: str, *args: Any) -> Any:
        self.statements.append(sql)
        raise AssertionError("an illegal sweep reached the database")


def _move(source: S, target: S | None, *, provider: str | None = "stripe", override: bool = False) -> Move:
    return Move(
        session_id=uuid.uuid4(),
        merchant_id=uuid.uuid4(),
        from_status=source.value,
        to_status=target.value if target else None,
        source_event_id="test",
        note="test",
        history=True,
        actor="test",
        action="test",
        detail={},
        expected_provider=provider,
        override=override,
    )


@pytest.mark.parametrize(("source", "target"), list(itertools.product(SessionStatus, repeat=2)))
def test_the_writer_allows_exactly_the_table(source: S, target: S) -> None:
    move = _move(source, target, provider="web3")
    if can_move(source, target, "web3"):
        check_move(move)
    else:
        with pytest.raises(FailedPrecondition) as caught:
            check_move(move)
        assert caught.value.code == "invalid_transition"


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (S.PAID, S.PENDING),
        (S.REFUNDED, S.PAID),
        (S.EXPIRED, S.PAID),
        (S.CREATED, S.REFUNDED),
        (S.FAILED, S.PAID),
    ],
)
def test_write_move_refuses_without_touching_the_database(source: S, target: S) -> None:
    conn = _NoDatabase()
    with pytest.raises(FailedPrecondition):
        asyncio.run(state_moves.write_move(conn, _move(source, target)))  # type: ignore[arg-type]
    assert conn.statements == []


def test_one_illegal_move_stops_the_whole_group() -> None:
    conn = _NoDatabase()
    moves = [_move(S.CREATED, S.PAID), _move(S.PAID, S.EXPIRED), _move(S.CREATED, S.PENDING)]
    with pytest.raises(FailedPrecondition):
        asyncio.run(state_moves.write_moves(conn, moves))  # type: ignore[arg-type]
    assert conn.statements == []


def test_provider_only_moves_need_their_provider() -> None:
    check_move(_move(S.PENDING, S.EXPIRED, provider="web3"))
    for provider in ("stripe", "onecom", "card", None):
        with pytest.raises(FailedPrecondition):
            check_move(_move(S.PENDING, S.EXPIRED, provider=provider))
    # The sweep form checks its batch before reading anything.
    conn = _NoDatabase()
    with pytest.raises(FailedPrecondition):
        asyncio.run(
            state_moves.expire_due(
                conn,  # type: ignore[arg-type]
                from_status=S.PENDING,
                provider="stripe",
                batch=10,
                source_event_id="sweeper:test",
                note="test",
                detail={},
            )
        )
    assert conn.statements == []


def test_the_override_is_checked_against_overrides_only() -> None:
    assert (S.EXPIRED, S.PAID) in OVERRIDES and (S.EXPIRED, S.PAID) not in TRANSITIONS
    check_move(_move(S.EXPIRED, S.PAID, override=True))
    with pytest.raises(FailedPrecondition):
        check_move(_move(S.EXPIRED, S.PAID))  # as a normal move it does not exist
    for source, target in [(S.FAILED, S.PAID), (S.CREATED, S.PAID), (S.PAID, S.REFUNDED)]:
        with pytest.raises(FailedPrecondition):
            check_move(_move(source, target, override=True))


def test_a_recorded_no_move_always_passes() -> None:
    for status in SessionStatus:
        check_move(_move(status, None))
