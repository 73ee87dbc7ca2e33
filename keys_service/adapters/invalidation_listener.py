"""Cross-replica cache invalidation through Postgres LISTEN/NOTIFY.

The replica that revokes or rolls a key sends `pg_notify` inside the same transaction, so the notification
is delivered exactly when (and only if) the change commits. Every replica keeps one dedicated connection
LISTENing (not a pooled one: a pooled connection is reset and shared, and would drop the LISTEN).

Notifications sent while a listener is disconnected are lost for good, so the whole cache is cleared on
every (re)connect and on every disconnect, and `listening` is False in between: the verifier then does not
fill the cache at all and reads every key from the database. The cache's own 1 s age bound covers the rest
(a notification that is slow to arrive).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from keys_service.domain.verify_cache import VerifyCache
from paygate_runtime.tasks import wait_event

log = logging.getLogger(__name__)

CHANNEL = "paygate_keys_invalidated"
CLEAR_ALL = "*"


async def notify_invalidated(conn: asyncpg.Connection, key_id: str) -> None:
    """Announce a changed key to every replica; call inside the transaction that changes it."""
    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, key_id)


class InvalidationListener:
    def __init__(
        self,
        dsn: str,
        cache: VerifyCache,
        *,
        ping_interval: float = 5.0,
        max_backoff: float = 5.0,
    ) -> None:
        self.dsn = dsn
        self.cache = cache
        self.ping_interval = ping_interval
        self.max_backoff = max_backoff
        self.listening = False
        self.connects = 0
        self.received = 0
        self._connection: asyncpg.Connection | None = None

    @property
    def backend_pid(self) -> int | None:
        conn = self._connection
        return None if conn is None or conn.is_closed() else conn.get_server_pid()

    def _on_notification(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.received += 1
        if payload == CLEAR_ALL:
            self.cache.clear()
        else:
            self.cache.invalidate(payload)

    async def run(self) -> None:
        """Listen forever, reconnecting with backoff; cancel to stop."""
        delay = 0.05
        while True:
            try:
                await self._listen_once()
                delay = 0.05
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning(
                    "keys invalidation listener lost its connection", extra={"error": type(error).__name__}
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff)

    async def _listen_once(self) -> None:
        conn = await asyncpg.connect(
            self.dsn, server_settings={"application_name": "paygate-keys-listener"}, timeout=5
        )
        lost = asyncio.Event()
        self._connection = conn
        try:
            conn.add_termination_listener(lambda _c: lost.set())
            await conn.add_listener(CHANNEL, self._on_notification)
            # Whatever was announced while nobody listened is unknown: start from an empty cache.
            self.cache.clear()
            self.listening = True
            self.connects += 1
            while not lost.is_set() and not conn.is_closed():
                if await wait_event(lost, self.ping_interval):
                    break
                # A half-open TCP connection never reports its end; a round trip finds out.
                await conn.fetchval("SELECT 1", timeout=2)
        finally:
            self.listening = False
            self.cache.clear()
            self._connection = None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=1)
            if not conn.is_closed():
                conn.terminate()
