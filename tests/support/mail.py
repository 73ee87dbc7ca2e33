"""A local SMTP sink (the one `paygate up` uses) for tests that read back what the services mailed."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from paygate_dev.smtp_sink import SmtpSink
from support.stack import free_port, make_test_secrets


@contextlib.asynccontextmanager
async def running_smtp_sink(directory: Path) -> AsyncIterator[SmtpSink]:
    """A sink on a free loopback port writing every message into `directory`; stopped on exit."""
    sink = SmtpSink(directory, port=free_port())
    await sink.start()
    try:
        yield sink
    finally:
        await sink.stop()


def portal_stack_env(smtp_port: int) -> dict[str, str]:
    """The environment of a stack whose portal contact form mails through the sink on `smtp_port`."""
    return {
        "PAYGATE_PUBLIC_URL": "http://127.0.0.1:8080",
        "PAYGATE_LOG_LEVEL": "WARNING",
        "PAYGATE_SMTP_HOST": "127.0.0.1",
        "PAYGATE_SMTP_PORT": str(smtp_port),
        "PAYGATE_MAIL_FROM": "paygate@example.test",
        **make_test_secrets(),
    }
