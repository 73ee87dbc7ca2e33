"""An apply reserved just before a burst began waits the burst out, for at most the busy deferral.

The gateway reserves an inline apply while it is not busy, but the event is stored a few milliseconds later,
when a burst may already be on. It used to start applying anyway: at the start of every burst, 8 applies and
the fulfilment behind them took about a third of the cores from the first replies (a sending window's first
100 ms answered 15-19 % of hello-world's rate with them, 27-33 % without). This test failed before: the apply
ran at once, inside the burst.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from webhook_gateway.adapters.inbox_repository import InboxEvent
from webhook_gateway.service_layer.relay import IngressGauge, InlineApplier, RelaySettings


@dataclass
class TimedProcessor:
    """Stands in for the EventProcessor: records when each event's apply began."""

    settings: RelaySettings
    started: list[float] = field(default_factory=list)

    async def process(self, event: InboxEvent) -> None:
        self.started.append(time.monotonic())


def _applier(defer_s: float) -> tuple[InlineApplier, TimedProcessor, IngressGauge]:
    processor = TimedProcessor(RelaySettings(busy_defer_s=defer_s, lease_s=30))
    gauge = IngressGauge(busy_above=0, hold_s=0.3)
    return InlineApplier(processor, limit=4, gauge=gauge), processor, gauge  # type: ignore[arg-type]


def _event() -> InboxEvent:
    return object()  # type: ignore[return-value]  # the processor never looks inside


async def test_without_a_burst_the_apply_starts_at_once() -> None:
    applier, processor, _ = _applier(defer_s=2.0)
    assert applier.reserve()
    began = time.monotonic()
    applier.start(_event())
    await applier.drain(1.0)
    # At once, not after the 2 s deferral (the bound leaves room for a loaded machine's scheduling).
    assert len(processor.started) == 1 and processor.started[0] - began < 0.5


async def test_an_apply_waits_for_the_burst_to_end() -> None:
    applier, processor, gauge = _applier(defer_s=2.0)
    assert applier.reserve()  # before the burst
    with gauge.answering():  # the burst: a reply in flight, above the bound of 0
        began = time.monotonic()
        applier.start(_event())  # stored while the burst is on
        await asyncio.sleep(0.2)
        assert processor.started == []
    await applier.drain(2.0)  # the burst ends
    assert len(processor.started) == 1
    assert 0.25 <= processor.started[0] - began < 1.5  # held 0.3 s after its last crowded moment, not 2 s


async def test_a_burst_that_goes_on_delays_an_apply_by_the_deferral_at_most() -> None:
    applier, processor, gauge = _applier(defer_s=0.4)
    assert applier.reserve()
    with gauge.answering():
        began = time.monotonic()
        applier.start(_event())
        assert not applier.reserve()  # busy: later events are left to the relay
        await asyncio.sleep(0.2)
        assert processor.started == []
        await applier.drain(1.0)  # still busy
        assert len(processor.started) == 1
        assert 0.35 <= processor.started[0] - began < 0.95
    assert applier._reserved == 0
