"""A local SMTP sink (the one `paygate up` uses) for tests that read back what the services mailed."""

from __future__ import annotations

import contextlib
import email
import email.policy
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

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


class MailInbox:
    """An aiosmtpd handler keeping every message (parsed with the default policy) and its envelope in memory,
    for tests that read back exactly what the services put on the wire."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"


@contextlib.contextmanager
def running_mail_inbox() -> Iterator[tuple[MailInbox, int]]:
    """A MailInbox served on a free loopback port: (the inbox, its port); stopped on exit."""
    inbox = MailInbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def fast_mail_fulfilment_env(port: int) -> dict[str, str]:
    """Stack variables for tests that watch fulfilment and its mail: mail to the inbox on `port`, the outbox
    polled every 100 ms and failed steps retried within 200 ms."""
    return {
        "PAYGATE_SMTP_HOST": "127.0.0.1",
        "PAYGATE_SMTP_PORT": str(port),
        "PAYGATE_MAIL_FROM": "billing@shop.example",
        "PAYGATE_OUTBOX_POLL_MS": "100",
        "PAYGATE_FULFILMENT_BACKOFF_BASE_MS": "50",
        "PAYGATE_FULFILMENT_BACKOFF_CAP_MS": "200",
    }
