"""The provider checkout coordinator (webhook_gateway.service_layer.provider_checkouts) and its pure rules
(checkout_rules), against an in-memory provider and session service: at most one provider page per session,
recorded before it is shown, closed when nothing of ours points to it, and closed first on a merchant expiry."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2
from webhook_gateway.adapters.payment_providers import CreatedPayment, ProviderPayment
from webhook_gateway.adapters.provider_errors import ProviderError
from webhook_gateway.service_layer import checkout_rules as rules
from webhook_gateway.service_layer.provider_checkouts import ProviderCheckouts

CREATED = session_pb2.SESSION_STATUS_CREATED
EXPIRED = session_pb2.SESSION_STATUS_EXPIRED
SID = "5b4cbb0e-1c8f-4b5e-9a55-9c1f0a0d2b11"


def session(**fields: Any) -> session_pb2.Session:
    base: dict[str, Any] = {
        "id": SID,
        "merchant_id": "m1",
        "mode": common_pb2.MODE_TEST,
        "status": CREATED,
        "provider": "stripe",
    }
    return session_pb2.Session(**{**base, **fields})


def rpc_error(status: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(status, grpc.aio.Metadata(), grpc.aio.Metadata(), "")


class FakeProvider:
    name = "stripe"

    def __init__(self) -> None:
        self.created: list[str] = []
        self.cancelled: list[str] = []
        self.create_error: ProviderError | None = None
        self.cancel_error: ProviderError | None = None

    def available(self, mode: str) -> bool:
        return True

    async def create_payment(self, s: session_pb2.Session) -> CreatedPayment:
        if self.create_error is not None:
            raise self.create_error
        self.created.append(s.id)
        return CreatedPayment(payment_id=f"cs_{len(self.created)}", checkout_url="https://pay.example/cs")

    async def cancel_payment(self, mode: str, payment_id: str) -> ProviderPayment:
        if self.cancel_error is not None:
            raise self.cancel_error
        self.cancelled.append(payment_id)
        return ProviderPayment(payment_id, "expired", True, {})

    async def close(self) -> None:
        pass


class FakeSessions:
    """The session service's stub, just the RPCs the coordinator calls."""

    def __init__(self, stored: session_pb2.Session) -> None:
        self.stored = stored
        self.set_error: grpc.aio.AioRpcError | None = None
        self.expired = 0

    async def SetProviderCheckout(self, r: session_pb2.SetProviderCheckoutRequest) -> session_pb2.Session:
        if self.set_error is not None:
            raise self.set_error
        self.stored.provider_session_id = r.provider_session_id
        self.stored.provider_checkout_url = r.provider_checkout_url
        return self.stored

    async def GetSession(self, r: session_pb2.GetSessionRequest) -> session_pb2.Session:
        if r.session_id != self.stored.id:
            raise rpc_error(grpc.StatusCode.NOT_FOUND)
        return self.stored

    async def ExpireSession(self, r: session_pb2.ExpireSessionRequest) -> session_pb2.Session:
        self.expired += 1
        self.stored.status = EXPIRED
        return self.stored


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def coordinator(provider: FakeProvider, clock: Clock | None = None) -> ProviderCheckouts:
    return ProviderCheckouts({"stripe": provider}, clock=clock or Clock())


# ---- the pure rules ---------------------------------------------------------------------------------------


def test_a_page_is_wanted_only_for_an_open_session_without_one() -> None:
    assert rules.wants_page(session(), has_provider=True)
    assert not rules.wants_page(session(), has_provider=False)
    assert not rules.wants_page(session(provider_session_id="cs_1"), has_provider=True)
    assert not rules.wants_page(session(status=EXPIRED), has_provider=True)


def test_a_refusal_pauses_longer_than_an_outage() -> None:
    outage = ProviderError("provider_unavailable", "down", transient=True)
    refused = ProviderError("provider_rejected", "no", transient=False)
    assert rules.still_paused(0.0, outage, rules.RETRY_PAUSE_S - 0.1)
    assert not rules.still_paused(0.0, outage, rules.RETRY_PAUSE_S)
    assert rules.still_paused(0.0, refused, rules.RETRY_PAUSE_S + 1)
    assert not rules.still_paused(0.0, refused, rules.REFUSED_PAUSE_S)


def test_an_expiry_refusal_is_retryable_only_when_the_provider_was_unreachable() -> None:
    paid = rules.expire_refusal(ProviderError(rules.PAID_AT_PROVIDER, "paid", transient=True))
    assert (paid.code, paid.retryable) == (rules.PAID_AT_PROVIDER, False)
    down = rules.expire_refusal(ProviderError("provider_unavailable", "down", transient=True))
    assert down.retryable and down.message.endswith("the session was not expired")
    refused = rules.expire_refusal(ProviderError("provider_rejected", "no", transient=False))
    assert not refused.retryable


def test_a_page_made_for_a_session_that_closed_meanwhile_is_closed() -> None:
    assert rules.closed_while_creating(EXPIRED)
    assert rules.closed_while_creating(session_pb2.SESSION_STATUS_FAILED)
    assert not rules.closed_while_creating(CREATED)


# ---- the coordinator --------------------------------------------------------------------------------------


async def test_ensure_creates_and_records_one_page() -> None:
    provider = FakeProvider()
    sessions = FakeSessions(session())
    flows = coordinator(provider)
    recorded, problem = await flows.ensure(sessions, session())
    assert problem is None and recorded.provider_session_id == "cs_1"
    again, problem = await flows.ensure(sessions, recorded)
    assert problem is None and again is recorded and provider.created == [SID]


async def test_a_failure_is_reported_and_page_views_pause_before_calling_again() -> None:
    provider = FakeProvider()
    provider.create_error = ProviderError("provider_unavailable", "down", transient=True)
    clock = Clock()
    flows = coordinator(provider, clock)
    sessions = FakeSessions(session())
    _, problem = await flows.ensure(sessions, session(), pause_after_failure=True)
    assert problem is provider.create_error
    provider.create_error = None
    _, paused = await flows.ensure(sessions, session(), pause_after_failure=True)
    assert paused is not None and provider.created == []  # within the pause: the provider is not called
    clock.now += rules.RETRY_PAUSE_S
    recorded, problem = await flows.ensure(sessions, session(), pause_after_failure=True)
    assert problem is None and recorded.provider_session_id == "cs_1"


async def test_an_unrecorded_page_is_not_shown() -> None:
    provider = FakeProvider()
    sessions = FakeSessions(session())
    sessions.set_error = rpc_error(grpc.StatusCode.UNAVAILABLE)
    unchanged, problem = await coordinator(provider).ensure(sessions, session())
    assert problem is not None and problem.code == "provider_unavailable" and problem.transient
    assert not unchanged.provider_checkout_url


async def test_when_another_replica_recorded_first_ours_is_closed_and_theirs_kept() -> None:
    provider = FakeProvider()
    sessions = FakeSessions(session(provider_session_id="cs_theirs"))
    sessions.set_error = rpc_error(grpc.StatusCode.FAILED_PRECONDITION)
    current, problem = await coordinator(provider).ensure(sessions, session())
    assert problem is None and current.provider_session_id == "cs_theirs"
    assert provider.cancelled == ["cs_1"]


async def test_a_session_that_closed_while_its_page_was_made_gets_the_page_closed() -> None:
    provider = FakeProvider()
    sessions = FakeSessions(session(status=EXPIRED))
    recorded, _ = await coordinator(provider).ensure(sessions, session())
    assert recorded.status == EXPIRED and provider.cancelled == ["cs_1"]


async def test_expire_closes_the_provider_page_first() -> None:
    provider = FakeProvider()
    sessions = FakeSessions(session(provider_session_id="cs_9"))
    expired = await coordinator(provider).expire(sessions, SID, "m1", common_pb2.MODE_TEST)
    assert expired.status == EXPIRED and provider.cancelled == ["cs_9"] and sessions.expired == 1


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (ProviderError(rules.PAID_AT_PROVIDER, "already paid", transient=False), False),
        (ProviderError("provider_unavailable", "timeout", transient=True), True),
    ],
)
async def test_expire_is_refused_and_ours_stays_open_when_the_page_cannot_be_closed(
    error: ProviderError, retryable: bool
) -> None:
    provider = FakeProvider()
    provider.cancel_error = error
    sessions = FakeSessions(session(provider_session_id="cs_9"))
    with pytest.raises(rules.ExpireRefused) as refused:
        await coordinator(provider).expire(sessions, SID, "m1", common_pb2.MODE_TEST)
    assert (refused.value.code, refused.value.retryable) == (error.code, retryable)
    assert sessions.expired == 0 and sessions.stored.status == CREATED


async def test_expire_of_an_unknown_session_raises_the_session_services_error() -> None:
    sessions = FakeSessions(session())
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await coordinator(FakeProvider()).expire(sessions, "other", "m1")
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


# ---- a card session's rails (contract §6a) ------------------------------------------------------------------


class FakePayments:
    """provider_payments in memory: what the coordinator records and reads back."""

    def __init__(self) -> None:
        self.rows: list[Any] = []

    async def record(self, *, provider: str, payment_id: str, session_id: str, **_: Any) -> None:
        if not any((r.provider, r.payment_id) == (provider, payment_id) for r in self.rows):
            self.rows.append(_Row(provider, payment_id, session_id))

    async def for_session(self, session_id: str) -> list[Any]:
        return [r for r in self.rows if r.session_id == session_id]

    async def mark_canceled(self, provider: str, payment_id: str) -> None:
        for row in self.rows:
            if (row.provider, row.payment_id) == (provider, payment_id):
                row.canceled_at = "now"


class _Row:
    def __init__(self, provider: str, payment_id: str, session_id: str) -> None:
        self.provider, self.payment_id, self.session_id = provider, payment_id, session_id
        self.state, self.canceled_at, self.mode = "open", None, "test"


class ReadableProvider(FakeProvider):
    def __init__(self, name: str = "stripe") -> None:
        super().__init__()
        self.name = name
        self.reads: list[str] = []
        self.final = False

    async def read_payment(self, mode: str, payment_id: str) -> ProviderPayment:
        self.reads.append(payment_id)
        url = None if self.final else "https://pay.example/cs"
        return ProviderPayment(payment_id, "open", self.final, {}, url)


def card_flows(provider: ReadableProvider) -> tuple[ProviderCheckouts, FakePayments]:
    payments = FakePayments()
    return ProviderCheckouts({provider.name: provider}, payments, clock=Clock()), payments


def test_a_rail_refusal_names_the_sessions_state_first_then_its_rail() -> None:
    assert rules.rail_refusal(session(provider="card"), "onecom") is None
    assert rules.rail_refusal(session(provider="onecom"), "onecom") is None
    for status, code in (
        (session_pb2.SESSION_STATUS_PENDING, "session_pending"),
        (session_pb2.SESSION_STATUS_PAID, "session_paid"),
        (session_pb2.SESSION_STATUS_FAILED, "session_failed"),
        (EXPIRED, "session_expired"),
        (session_pb2.SESSION_STATUS_REFUNDED, "session_refunded"),
    ):
        refusal = rules.rail_refusal(session(provider="web3", status=status), "stripe")
        assert refusal is not None and (refusal.status, refusal.code) == (409, code)
    web3 = rules.rail_refusal(session(provider="web3"), "stripe")
    assert web3 is not None and web3.code == "not_a_card_session"
    bound = rules.rail_refusal(session(provider="stripe"), "onecom")
    assert bound is not None and bound.code == "provider_bound" and "Stripe" in bound.message


async def test_a_card_rails_payment_is_made_once_recorded_first_and_found_again() -> None:
    provider = ReadableProvider()
    flows, payments = card_flows(provider)
    sessions = FakeSessions(session(provider="card"))
    first = await flows.pay_with(sessions, session(provider="card"), "stripe")
    assert first.problem is None and first.url == "https://pay.example/cs"
    assert [(r.provider, r.payment_id) for r in payments.rows] == [("stripe", "cs_1")]
    again = await flows.pay_with(sessions, session(provider="card"), "stripe")
    assert again.url == first.url and provider.created == [SID] and provider.reads == ["cs_1"]
    # Nothing is recorded on the session itself: either rail may still pay it.
    assert not sessions.stored.provider_session_id
    provider.final = True
    closed = await flows.pay_with(sessions, session(provider="card"), "stripe")
    assert closed.url is None and closed.problem is not None
    assert closed.problem.code == "provider_payment_closed"


async def test_a_card_payment_made_while_the_session_closed_or_bound_elsewhere_is_closed() -> None:
    for stored in (session(provider="card", status=EXPIRED), session(provider="onecom")):
        provider = ReadableProvider()
        flows, _ = card_flows(provider)
        result = await flows.pay_with(FakeSessions(stored), session(provider="card"), "stripe")
        assert result.session is stored and provider.cancelled == ["cs_1"]
        assert rules.rail_refusal(result.session, "stripe") is not None


async def test_expire_of_a_card_session_closes_each_recorded_payment_first() -> None:
    provider = ReadableProvider()
    flows, payments = card_flows(provider)
    sessions = FakeSessions(session(provider="card"))
    await flows.pay_with(sessions, session(provider="card"), "stripe")
    provider.cancel_error = ProviderError(rules.PAID_AT_PROVIDER, "paid", transient=False)
    with pytest.raises(rules.ExpireRefused):
        await flows.expire(sessions, SID, "m1", common_pb2.MODE_TEST)
    assert sessions.expired == 0
    provider.cancel_error = None
    expired = await flows.expire(sessions, SID, "m1", common_pb2.MODE_TEST)
    assert expired.status == EXPIRED and provider.cancelled == ["cs_1"]
    assert payments.rows[0].canceled_at is not None
