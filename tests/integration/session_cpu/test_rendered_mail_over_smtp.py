"""A rendered customer mail over a real SMTP server (aiosmtpd): the server receives exactly the rendered bytes,
with the envelope and MAIL options send_message would have used, over a reused connection of the pool; an
internationalised address asks for SMTPUTF8, and a server without it gets nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller

from paygate_runtime.smtp import SmtpConnectionPool, SmtpSettings, StartTls
from session_service.adapters.mailer import SmtpMailer
from session_service.domain.customer_mail import AccessMail, render_access_mail
from support.stack import free_port


@dataclass
class _Received:
    mails: list[dict[str, Any]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(
            {
                "from": envelope.mail_from,
                "to": envelope.rcpt_tos,
                "options": list(envelope.mail_options),
                "data": envelope.original_content,
                "session": id(session),
            }
        )
        return "250 OK"


def _server(**kwargs: Any) -> Iterator[tuple[_Received, SmtpSettings]]:
    received = _Received()
    port = free_port()
    controller = Controller(received, hostname="127.0.0.1", port=port, server_hostname="mx.test", **kwargs)
    controller.start()
    try:
        yield received, SmtpSettings("127.0.0.1", port, "billing@pay.example", starttls=StartTls.OFF)
    finally:
        controller.stop()


@pytest.fixture
def server() -> Iterator[tuple[_Received, SmtpSettings]]:
    yield from _server(enable_SMTPUTF8=True)


@pytest.fixture
def ascii_only_server() -> Iterator[tuple[_Received, SmtpSettings]]:
    yield from _server(enable_SMTPUTF8=False)


def _mail(n: int, to: str = "buyer@example.com") -> AccessMail:
    return AccessMail(
        f"session-{n}", to, "Bäckerei Müller", f"INV-{n}", "49,90 €", f"https://pay.example/a/{n}"
    )


async def test_the_server_receives_the_rendered_bytes_on_one_connection(
    server: tuple[_Received, SmtpSettings],
) -> None:
    received, settings = server
    mailer = SmtpMailer(settings)
    rendered = [render_access_mail(_mail(n), settings.sender) for n in range(3)]
    try:
        for mail in rendered:
            await mailer.send(mail)
    finally:
        await mailer.aclose()
    assert [m["data"] for m in received.mails] == [mail.data for mail in rendered]
    assert {m["from"] for m in received.mails} == {"billing@pay.example"}
    assert [m["to"] for m in received.mails] == [["buyer@example.com"]] * 3
    # As send_message did: BODY=8BITMIME when offered, no SMTPUTF8 for ASCII addresses.
    assert all("BODY=8BITMIME" in m["options"] and "SMTPUTF8" not in m["options"] for m in received.mails)
    assert len({m["session"] for m in received.mails}) == 1  # one reused connection
    assert mailer.pool.connections_opened == 1


async def test_an_internationalised_address_asks_for_smtputf8(server: tuple[_Received, SmtpSettings]) -> None:
    received, settings = server
    pool = SmtpConnectionPool(settings)
    mail = render_access_mail(_mail(1, to="käufer@beispiel.de"), settings.sender)
    try:
        await pool.send(mail)
    finally:
        await pool.aclose()
    assert received.mails[0]["to"] == ["käufer@beispiel.de"]
    assert "SMTPUTF8" in received.mails[0]["options"]
    assert received.mails[0]["data"] == mail.data


async def test_a_server_without_smtputf8_gets_nothing(
    ascii_only_server: tuple[_Received, SmtpSettings],
) -> None:
    received, settings = ascii_only_server
    pool = SmtpConnectionPool(settings)
    try:
        with pytest.raises(aiosmtplib.SMTPNotSupported):
            await pool.send(render_access_mail(_mail(1, to="käufer@beispiel.de"), settings.sender))
    finally:
        await pool.aclose()
    assert received.mails == []
