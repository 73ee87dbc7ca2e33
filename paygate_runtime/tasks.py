"""Stopping background tasks within a bound, even when one of them swallows its cancellation.

`task.cancel()` followed by `gather(*tasks)` waits forever for a task that loses its CancelledError. On
Python 3.11 that can happen without any bug of ours: `asyncio.wait_for` returns the inner result instead of
raising when the cancellation and the inner completion land in the same loop iteration, and a `while True`
worker then simply goes round again. A graceful stop must stay bounded, so we cancel again until the tasks end
or the time is up, and name the ones that refused.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

log = logging.getLogger(__name__)


async def cancel_and_wait(tasks: Iterable[asyncio.Task[object]], *, timeout: float = 10.0) -> bool:
    """Cancel `tasks` and wait until they end, re-cancelling stragglers; False if some outlived `timeout`."""
    tasks = list(tasks)
    pending = {task for task in tasks if not task.done()}
    deadline = time.monotonic() + timeout
    while pending:
        for task in pending:
            task.cancel()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            log.error(
                "background tasks did not stop in time",
                extra={"tasks": sorted(t.get_name() for t in pending)},
            )
            return False
        _, pending = await asyncio.wait(pending, timeout=min(0.5, remaining))
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not warn about it at exit
    return True


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait for `event` up to `timeout` seconds; True if it was set.

    Loops that sleep on an event use this rather than `asyncio.wait_for`, whose 3.11 version can swallow a
    cancellation that arrives as the event is set (see the module docstring).
    """
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True
