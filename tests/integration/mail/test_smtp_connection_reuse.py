"""Connection reuse for the customer mail (issue 16), against real aiosmtpd servers started here.

- Several mails travel over one connection (the server counts its connections), a pool never opens more than its
  size, and a connection is replaced after its mail budget or idle time.
- A connection the server dropped while idle is replaced, and the mail sent once on the fresh one; a connection
  lost after DATA began is never resent (the outbox's retry decides).
- STARTTLS and AUTH hold on every reused connection; a server without STARTTLS gets nothing, credentials included.
- The local hostname for EHLO is looked up once per process, not per mail.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from paygate_runtime import smtp
from paygate_runtime.config import Env
from paygate_runtime.smtp import SmtpConnectionPool, SmtpSettings, load_smtp_settings
from session_service.adapters.mailer import SmtpMailer
from support import polling
from support.certs import TestCA
from support.stack import free_port

USERNAME = "paygate-mailer"
PASSWORD = "s3cret-Sm7p-pa55word"


@dataclass
class _Server:
    """aiosmtpd handler: counts connections (one aiosmtpd session object each) and can misbehave on demand."""

    messages: list[EmailMessage] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[Any] = field(default_factory=list)  # kept alive so their ids stay distinct
    logins: list[bool] = field(default_factory=list)
    mails: int = 0
    drop_at_mail: set[int] = field(default_factory=set)  # close the connection instead of answering MAIL #n
    reply_421_at_mail: set[int] = field(default_factory=set)  # answer MAIL #n with 421 and close
    drop_in_data: bool = False  # take the message, then close without a reply

    @property
    def connections(self) -> int:
        return len({id(session) for session in self.sessions})

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            USERNAME.encode(),
            PASSWORD.encode(),
        )
        self.logins.append(ok)
        return AuthResult(success=ok)

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.mails += 1
        if session not in self.sessions:
            self.sessions.append(session)
        if self.mails in self.drop_at_mail:
            server.transport.close()
            return "250 OK"  # never reaches the client
        if self.mails in self.reply_421_at_mail:
            server._loop.call_soon(server.transport.close)
            return "421 closing transmission channel"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.deliveries.append(
            {"tls": session.ssl is not None, "authenticated": session.authenticated, "to": envelope.rcpt_tos}
        )
        self.messages.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))  # type: ignore[arg-type]
        if self.drop_in_data:
            server.transport.close()
        return "250 OK"


def _start(server: _Server, **kwargs: Any) -> tuple[Controller, int]:
    port = free_port()
    # server_hostname: aiosmtpd would call socket.getfqdn per connection, muddling the client's count below.
    controller = Controller(server, hostname="127.0.0.1", port=port, server_hostname="mx.test", **kwargs)
    controller.start()
    return controller, port


@pytest.fixture
def smtp_ca(tmp_path: Any) -> TestCA:
    return TestCA(tmp_path / "smtp-ca", name="smtp-test-ca")


@pytest.fixture
def tls_server(smtp_ca: TestCA) -> Iterator[tuple[_Server, SmtpSettings]]:
    """STARTTLS required before MAIL, AUTH required after it; settings as the session service would load them."""
    issued = smtp_ca.issue("smtp", server=True, client=False)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(issued.cert_file, issued.key_file)
    server = _Server()
    controller, port = _start(
        server,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=server.authenticate,
    )
    settings = load_smtp_settings(
        Env(
            {
                "PAYGATE_SMTP_HOST": "127.0.0.1",
                "PAYGATE_SMTP_PORT": str(port),
                "PAYGATE_MAIL_FROM": "billing@shop.example",
                "PAYGATE_SMTP_USERNAME": USERNAME,
                "PAYGATE_SMTP_PASSWORD": PASSWORD,
                "PAYGATE_SMTP_TLS_CA_FILE": str(smtp_ca.ca_file),
            }
        )
    )
    assert settings is not None and settings.connections == 8
    try:
        yield server, settings
    finally:
        controller.stop()


def _plain(**kwargs: Any) -> tuple[_Server, Controller, SmtpSettings]:
    server = _Server()
    controller, port = _start(server, **kwargs)
    settings = SmtpSettings(host="127.0.0.1", port=port, sender="billing@shop.example")
    return server, controller, settings


@pytest.fixture
def plain_server() -> Iterator[tuple[_Server, SmtpSettings]]:
    server, controller, settings = _plain()
    try:
        yield server, settings
    finally:
        controller.stop()


def _mail(n: int) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "billing@shop.example"
    message["To"] = f"buyer{n}@example.com"
    message["Subject"] = f"Your purchase {n}"
    message.set_content(f"mail {n}\n")
    return message


async def test_several_mails_over_one_starttls_authenticated_connection(
    tls_server: tuple[_Server, SmtpSettings],
) -> None:
    server, settings = tls_server
    mailer = SmtpMailer(settings)
    for n in range(5):
        await mailer.send(_mail(n))
    await mailer.aclose()
    assert server.connections == 1
    assert server.logins == [True]  # authenticated once, and every mail on that authenticated TLS session
    assert server.deliveries == [
        {"tls": True, "authenticated": True, "to": [f"buyer{n}@example.com"]} for n in range(5)
    ]
    assert [m["Subject"] for m in server.messages] == [f"Your purchase {n}" for n in range(5)]


async def test_concurrent_sends_share_at_most_pool_size_connections(
    tls_server: tuple[_Server, SmtpSettings],
) -> None:
    server, settings = tls_server
    pool = SmtpConnectionPool(replace(settings, connections=2))
    await asyncio.gather(*(pool.send(_mail(n)) for n in range(12)))
    await pool.aclose()
    assert len(server.deliveries) == 12 and all(d["tls"] and d["authenticated"] for d in server.deliveries)
    assert sorted(d["to"][0] for d in server.deliveries) == sorted(f"buyer{n}@example.com" for n in range(12))
    assert 1 <= server.connections <= 2 and pool.connections_opened == server.connections


async def test_a_send_waits_for_a_free_connection_no_longer_than_the_timeout(
    plain_server: tuple[_Server, SmtpSettings],
) -> None:
    """Queued mail must not outwait the outbox's lease behind a stuck connection: it fails (the outbox retries)."""
    server, settings = plain_server
    pool = SmtpConnectionPool(replace(settings, connections=1, timeout_s=0.3))
    await pool._slots.acquire()  # the only connection is busy (a send stuck on a slow server)
    with pytest.raises(aiosmtplib.SMTPTimeoutError):
        await pool.send(_mail(0))
    pool._slots.release()
    await pool.send(_mail(1))
    await pool.aclose()
    assert [m["Subject"] for m in server.messages] == ["Your purchase 1"]


async def test_reused_connections_still_refuse_a_server_without_starttls(
    plain_server: tuple[_Server, SmtpSettings],
) -> None:
    server, settings = plain_server
    with_credentials = replace(
        settings, username=USERNAME, password=smtp.Password(PASSWORD), starttls=smtp.StartTls.REQUIRED
    )
    pool = SmtpConnectionPool(with_credentials)
    for n in range(3):
        with pytest.raises(aiosmtplib.SMTPException) as caught:
            await pool.send(_mail(n))
        assert PASSWORD not in str(caught.value)
    assert server.messages == [] and server.logins == [] and server.mails == 0


async def test_a_connection_is_replaced_after_its_mail_budget(
    plain_server: tuple[_Server, SmtpSettings],
) -> None:
    server, settings = plain_server
    pool = SmtpConnectionPool(replace(settings, mails_per_connection=2))
    for n in range(5):
        await pool.send(_mail(n))
    await pool.aclose()
    assert len(server.messages) == 5 and server.connections == 3


async def test_an_idle_connection_is_closed_and_the_next_mail_opens_a_fresh_one(
    plain_server: tuple[_Server, SmtpSettings],
) -> None:
    server, settings = plain_server
    pool = SmtpConnectionPool(replace(settings, idle_s=0.2))
    await pool.send(_mail(0))
    await polling.eventually(lambda: _no_idle(pool), timeout=10, interval=0.05)  # the reaper QUIT it
    await pool.send(_mail(1))
    await pool.aclose()
    assert len(server.messages) == 2 and server.connections == 2


async def _no_idle(pool: SmtpConnectionPool) -> bool:
    return not pool._idle and not pool._closing


async def test_reconnects_after_the_server_closed_an_idle_connection() -> None:
    """aiosmtpd's own idle timeout (421 and close) ends the connection between two mails."""
    server, controller, settings = _plain(timeout=0.3)
    try:
        pool = SmtpConnectionPool(settings)
        await pool.send(_mail(0))
        await asyncio.sleep(1.0)
        await pool.send(_mail(1))
        await pool.aclose()
    finally:
        controller.stop()
    assert len(server.messages) == 2 and server.connections == 2


@pytest.mark.parametrize("how", ["drop_at_mail", "reply_421_at_mail"])
async def test_a_dropped_reused_connection_is_retried_once_before_data(
    plain_server: tuple[_Server, SmtpSettings], how: str
) -> None:
    """The client still believes the connection open (the race an idle timeout leaves): the server drops it at
    MAIL, nothing of the message was taken, so the mail goes once more on a fresh connection."""
    server, settings = plain_server
    getattr(server, how).add(2)
    pool = SmtpConnectionPool(settings)
    await pool.send(_mail(0))
    await pool.send(_mail(1))
    await pool.aclose()
    assert [m["Subject"] for m in server.messages] == ["Your purchase 0", "Your purchase 1"]
    assert server.connections == 2 and server.mails == 3


async def test_a_fresh_connection_dropped_before_data_is_not_retried(
    plain_server: tuple[_Server, SmtpSettings],
) -> None:
    server, settings = plain_server
    server.drop_at_mail.add(1)
    pool = SmtpConnectionPool(settings)
    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await pool.send(_mail(0))
    assert (
        server.messages == [] and server.mails == 1
    )  # an error on a new connection is the caller's, as today


async def test_a_connection_lost_after_data_began_is_never_resent(
    plain_server: tuple[_Server, SmtpSettings],
) -> None:
    server, settings = plain_server
    pool = SmtpConnectionPool(settings)
    await pool.send(_mail(0))
    server.drop_in_data = True
    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await pool.send(_mail(1))
    assert [m["Subject"] for m in server.messages] == ["Your purchase 0", "Your purchase 1"]
    assert server.mails == 2  # the server may have the mail: no second MAIL, the outbox decides
    server.drop_in_data = False
    await pool.send(_mail(2))  # and the broken connection was not put back
    await pool.aclose()
    assert server.connections == 2


async def test_the_local_hostname_is_looked_up_once_not_per_mail(
    tls_server: tuple[_Server, SmtpSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, settings = tls_server
    calls: list[float] = []

    def getfqdn(name: str = "") -> str:
        calls.append(time.monotonic())
        return "paygate-test.example"

    monkeypatch.setattr(socket, "getfqdn", getfqdn)
    monkeypatch.setattr(smtp, "_local_hostname", None)
    monkeypatch.setattr(smtp, "_hostname_lookup", None)
    pool = SmtpConnectionPool(replace(settings, mails_per_connection=3))
    await asyncio.gather(*(pool.send(_mail(n)) for n in range(8)))  # concurrent first connections too
    for n in range(8, 14):
        await pool.send(_mail(n))
    await smtp.send_message(settings, _mail(99))  # the one-connection path (portal contact form) as well
    await pool.aclose()
    assert len(server.deliveries) == 15
    assert server.connections >= 5  # several connections were opened...
    assert len(calls) == 1  # ...and one lookup served them all
