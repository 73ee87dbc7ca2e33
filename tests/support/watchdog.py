"""A hang guard for the whole suite: a test that runs far past any honest duration ends the run with a report.

The slowest honest test takes about 15 s. A hang (a lock wait, a task that never finishes) would otherwise sit
until CI's own limit and print nothing useful, so after `PAYGATE_TEST_HANG_S` seconds in one test (setup, call
and teardown together) the guard prints every thread's stack and every asyncio task's coroutine stack, then
ends the process with a non-zero exit. A failed run with a stack beats a silent one.
"""

from __future__ import annotations

import asyncio
import faulthandler
import io
import os
import sys
import threading
import time
from collections.abc import Callable


class HangGuard:
    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self._lock = threading.Lock()
        self._current: tuple[str, float] | None = None
        # pytest captures file descriptors 1 and 2 while a test runs; the report must reach the real ones.
        self.release_output: Callable[[], None] = lambda: None
        self._thread = threading.Thread(target=self._watch, name="hang-guard", daemon=True)
        self._thread.start()

    def enter(self, nodeid: str) -> None:
        with self._lock:
            self._current = (nodeid, time.monotonic())

    def leave(self) -> None:
        with self._lock:
            self._current = None

    def _watch(self) -> None:
        while True:
            time.sleep(1.0)
            with self._lock:
                current = self._current
            if current is None or time.monotonic() - current[1] < self.limit_s:
                continue
            self._report(current[0])
            os._exit(3)

    def _report(self, nodeid: str) -> None:
        try:
            self.release_output()
        except Exception as error:
            sys.__stderr__.write(f"hang guard: could not release pytest's capture: {error!r}\n")
        out = sys.__stderr__ or sys.stderr
        out.write(f"\n\n=== hang guard: {nodeid} ran over {self.limit_s:.0f}s; stacks follow ===\n")
        out.flush()
        faulthandler.dump_traceback(file=out, all_threads=True)
        out.write("\n=== asyncio tasks ===\n")
        out.write(_task_stacks())
        out.write(f"=== hang guard: ending the run; the hung test was {nodeid} ===\n")
        out.flush()


def _task_stacks() -> str:
    # Read from another thread, so the set may change under us; a few tries are enough for a report.
    for _ in range(5):
        try:
            registry = getattr(asyncio.tasks, "_all_tasks", None) or getattr(
                asyncio.tasks, "_scheduled_tasks", ()
            )
            tasks = list(registry)
            break
        except RuntimeError:
            time.sleep(0.01)
    else:
        return "(could not list tasks)\n"
    buffer = io.StringIO()
    for task in tasks:
        if task.done():
            continue
        buffer.write(f"--- {task!r}\n")
        try:
            task.print_stack(limit=30, file=buffer)
        except Exception as error:  # a report must never raise
            buffer.write(f"(stack unavailable: {error!r})\n")
    return buffer.getvalue()
