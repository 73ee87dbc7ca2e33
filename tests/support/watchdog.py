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
import shutil
import subprocess
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
        # Set once the test database runs: what every connection to it is doing (and waiting for).
        self.database_dsn: str | None = None
        # Runs after the report, before the exit: os._exit skips every finaliser, so servers are stopped here.
        self.before_exit: list[Callable[[], None]] = []
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
            for cleanup in self.before_exit:
                try:
                    cleanup()
                except Exception as error:
                    sys.__stderr__.write(f"hang guard: clean-up failed: {error!r}\n")
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
        if self.database_dsn:
            out.write("\n=== test database connections ===\n")
            out.write(_database_activity(self.database_dsn))
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
        buffer.write(f"--- {task.get_name()}\n")
        buffer.write("".join(_await_chain(task.get_coro())) or "    (no Python frames)\n")
    return buffer.getvalue()


def _await_chain(coro: object) -> list[str]:
    """The whole chain of coroutines a task is suspended in (Task.print_stack shows only the outermost)."""
    lines = []
    for _ in range(50):
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
        if frame is not None:
            lines.append(f"    {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}\n")
        awaited = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
        if awaited is None:
            if coro is not None and frame is None:
                lines.append(f"    awaiting {coro!r}\n")
            break
        coro = awaited
    return lines


def _database_activity(dsn: str) -> str:
    psql = shutil.which("psql")
    if psql is None:
        return "(psql not found)\n"
    query = (
        "SELECT pid, application_name, state, wait_event_type, wait_event, now() - query_start AS running,"
        " left(regexp_replace(query, '\\s+', ' ', 'g'), 160) AS query FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid() ORDER BY query_start"
    )
    try:
        done = subprocess.run(
            [psql, dsn, "-X", "-c", query], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"(psql failed: {error!r})\n"
    return done.stdout + done.stderr
