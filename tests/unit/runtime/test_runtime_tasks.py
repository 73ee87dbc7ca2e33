"""Bounded stops: a worker that loses its cancellation once is still stopped, and event waits end on time."""

from __future__ import annotations

import asyncio
import time

from paygate_runtime.tasks import cancel_and_wait, wait_event


async def test_a_task_that_swallows_its_first_cancellation_is_cancelled_again() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed == 1:
                    continue  # what 3.11's wait_for does when a wake-up and the cancel coincide
                raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    started = time.monotonic()
    assert await cancel_and_wait([task], timeout=5) is True
    assert task.cancelled() and swallowed == 2
    assert time.monotonic() - started < 2


async def test_a_task_that_never_stops_is_given_up_after_the_timeout() -> None:
    refuse = True

    async def immortal() -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if not refuse:
                    raise

    task = asyncio.create_task(immortal())
    await asyncio.sleep(0)
    started = time.monotonic()
    assert await cancel_and_wait([task], timeout=0.3) is False
    assert 0.3 <= time.monotonic() - started < 1.5
    assert not task.done()
    refuse = False
    assert await cancel_and_wait([task], timeout=1) is True


async def test_failed_tasks_count_as_stopped() -> None:
    async def broken() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(broken())
    await asyncio.sleep(0)
    assert await cancel_and_wait([task], timeout=1) is True


async def test_wait_event_reports_whether_the_event_was_set() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_event(event, 5) is True


async def test_a_cancel_that_coincides_with_the_wake_up_is_not_lost() -> None:
    event = asyncio.Event()

    async def waiter() -> None:
        while True:
            await wait_event(event, 3600)

    task = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    # Set the event and cancel in the same loop iteration: asyncio.wait_for on 3.11 would return True here
    # and the loop would go round again.
    event.set()
    task.cancel()
    await asyncio.sleep(0.05)
    assert task.cancelled()
