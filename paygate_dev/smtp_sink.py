"""A local SMTP sink for `paygate up`: every message the stack sends is saved as a .eml file.

Nothing leaves the machine; a person (or a test) reads the customer mail under $PAYGATE_HOME/mail/. The
aiosmtpd server runs in its own thread (aiosmtpd's Controller), so it never competes with `up`'s loop.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class MailFolderHandler:
    """aiosmtpd handler: writes each message's raw bytes to `<folder>/<time>-<id>.eml` (mode 0600)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode()
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.eml"
        tmp = self.folder / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        # Rename last, so a reader never sees half a message.
        tmp.replace(self.folder / name)
        return "250 Message accepted for delivery"


class SmtpSink:
    def __init__(self, folder: Path, host: str = "127.0.0.1", port: int = 2525) -> None:
        self.folder = folder
        self.controller = Controller(MailFolderHandler(folder), hostname=host, port=port)

    @property
    def port(self) -> int:
        return self.controller.port

    async def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self.controller.start)

    async def stop(self) -> None:
        await asyncio.to_thread(self.controller.stop)


async def start_smtp_sink(stack: Any) -> None:
    """STARTUP hook of `paygate up`: the sink listens on stack.plan.smtp_port (services get it as
    PAYGATE_SMTP_HOST/PORT) and is stopped with the rest of the stack."""
    sink = SmtpSink(stack.plan.home / "mail", port=stack.plan.smtp_port)
    await sink.start()
    stack.side.append(sink)
