"""Customer mail and the portal contact form over SMTP with STARTTLS and AUTH (issue 14), against real aiosmtpd
servers: one that offers STARTTLS with a test CA's certificate and demands AUTH, one that offers neither.

- With credentials, mail arrives over TLS and authenticated.
- With STARTTLS required (the default once a username is set) and a server without it, nothing is sent: the
  session service's outbox keeps the mail and records the error, retrying later.
- The password never appears in a log line, an outbox error or a settings repr.
"""

from __future__ import annotations

import email
import email.policy
import logging
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2
from paygate_runtime.config import ConfigError, Env
from paygate_runtime.smtp import StartTls, load_smtp_settings
from support import polling
from support.certs import TestCA
from support.stack import ServiceStack, free_port
from webhook_gateway.entrypoints import portal_support

USERNAME = "paygate-mailer"
PASSWORD = "s3cret-Sm7p-pa55word"  # distinctive, so a leak is easy to find


@dataclass
class _Inbox:
    """aiosmtpd handler and authenticator: keeps each message with whether it came over TLS and as whom."""

    messages: list[EmailMessage] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            USERNAME.encode(),
            PASSWORD.encode(),
        )
        self.logins.append((mechanism, ok))
        return AuthResult(success=ok)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.deliveries.append(
            {"tls": session.ssl is not None, "authenticated": session.authenticated, "to": envelope.rcpt_tos}
        )
        self.messages.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def smtp_ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path / "smtp-ca", name="smtp-test-ca")


@pytest.fixture
def tls_server(smtp_ca: TestCA) -> Iterator[tuple[_Inbox, int]]:
    """STARTTLS offered and required before MAIL, AUTH required (and only after STARTTLS)."""
    issued = smtp_ca.issue("smtp", server=True, client=False)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(issued.cert_file, issued.key_file)
    inbox = _Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=inbox.authenticate,
    )
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def plain_server() -> Iterator[tuple[_Inbox, int]]:
    """No STARTTLS, no AUTH: a server (or a man in the middle stripping STARTTLS) that takes mail in clear."""
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def _smtp_env(port: int, ca: TestCA | None, **extra: str) -> dict[str, str]:
    env = {
        "PAYGATE_SMTP_HOST": "127.0.0.1",
        "PAYGATE_SMTP_PORT": str(port),
        "PAYGATE_MAIL_FROM": "billing@shop.example",
        "PAYGATE_SMTP_USERNAME": USERNAME,
        "PAYGATE_SMTP_PASSWORD": PASSWORD,
    }
    if ca is not None:
        env["PAYGATE_SMTP_TLS_CA_FILE"] = str(ca.ca_file)
    return {**env, **extra}


# --- settings -------------------------------------------------------------------------------------------------


def test_starttls_defaults_and_refusals() -> None:
    assert load_smtp_settings(Env({"PAYGATE_SMTP_HOST": "mx"})).starttls is StartTls.OPPORTUNISTIC  # type: ignore[union-attr]
    with_user = load_smtp_settings(Env(_smtp_env(25, None)))
    assert with_user is not None and with_user.starttls is StartTls.REQUIRED
    assert PASSWORD not in repr(with_user) and PASSWORD not in str(with_user.password)
    for bad, variable in [
        ({"PAYGATE_SMTP_STARTTLS": "off"}, "PAYGATE_SMTP_STARTTLS"),
        ({"PAYGATE_SMTP_STARTTLS": "opportunistic"}, "PAYGATE_SMTP_STARTTLS"),
        ({"PAYGATE_SMTP_STARTTLS": "sometimes"}, "PAYGATE_SMTP_STARTTLS"),
        ({"PAYGATE_SMTP_PASSWORD": ""}, "PAYGATE_SMTP_PASSWORD"),
        ({"PAYGATE_SMTP_USERNAME": ""}, "PAYGATE_SMTP_USERNAME"),
        ({"PAYGATE_SMTP_PASSWORD": PASSWORD + "\r\nRSET"}, "PAYGATE_SMTP_PASSWORD"),
        ({"PAYGATE_SMTP_TLS_CA_FILE": "/nonexistent/ca.pem"}, "PAYGATE_SMTP_TLS_CA_FILE"),
    ]:
        with pytest.raises(ConfigError) as caught:
            load_smtp_settings(Env(_smtp_env(25, None, **bad)))
        assert caught.value.variable == variable, bad
        assert PASSWORD not in str(caught.value)


# --- the portal contact form ----------------------------------------------------------------------------------


def _support_message(settings: portal_support.SupportMailSettings) -> EmailMessage:
    return portal_support.build_message(
        settings,
        to="support@shop.example",
        session_reference="cs_ref_1",
        invoice_number=None,
        text="Where is my key?",
        reply_to=None,
    )


async def test_contact_form_mail_goes_over_starttls_with_auth(
    tls_server: tuple[_Inbox, int], smtp_ca: TestCA, caplog: pytest.LogCaptureFixture
) -> None:
    inbox, port = tls_server
    settings = portal_support.load_settings(Env(_smtp_env(port, smtp_ca)))
    assert settings is not None
    with caplog.at_level(logging.DEBUG):
        await portal_support.send(settings, _support_message(settings))
    assert inbox.deliveries == [{"tls": True, "authenticated": True, "to": ["support@shop.example"]}]
    assert inbox.logins and all(ok for _, ok in inbox.logins)
    assert PASSWORD not in caplog.text


async def test_contact_form_refuses_a_server_without_starttls(plain_server: tuple[_Inbox, int]) -> None:
    inbox, port = plain_server
    settings = portal_support.load_settings(Env(_smtp_env(port, None)))
    assert settings is not None
    with pytest.raises(aiosmtplib.SMTPException) as caught:
        await portal_support.send(settings, _support_message(settings))
    assert PASSWORD not in str(caught.value)
    assert inbox.messages == [] and inbox.logins == []


async def test_server_certificate_must_verify(tls_server: tuple[_Inbox, int], tmp_path: Path) -> None:
    inbox, port = tls_server
    other = TestCA(tmp_path / "other", name="other-ca")
    settings = portal_support.load_settings(Env(_smtp_env(port, other)))
    assert settings is not None
    with pytest.raises((aiosmtplib.SMTPException, ssl.SSLError)):
        await portal_support.send(settings, _support_message(settings))
    assert inbox.messages == [] and inbox.logins == []


# --- the session service's customer mail (outbox) -------------------------------------------------------------


async def _paid(stack: ServiceStack) -> str:
    merchant = await stack.create_merchant("Acme Widgets", "acme")
    created = await stack.session.CreateSession(
        session_pb2.CreateSessionRequest(
            merchant_id=merchant.id,
            amount="49.90",
            mode=common_pb2.MODE_TEST,
            customer_email="buyer@example.com",
        ),
        timeout=10,
    )
    request = session_pb2.ApplyPaymentEventRequest(
        session_id=created.session.id,
        provider="onecom",
        provider_event_id=f"evt_mail_{time.time_ns()}",
        kind=session_pb2.EVENT_KIND_SUCCEEDED,
        provider_reference="pi_1",
    )
    request.amount.CopyFrom(common_pb2.Money(amount_minor="4990", currency="EUR", exponent=2))
    await stack.session.ApplyPaymentEvent(request, timeout=10)
    return created.session.id


async def _mail_row(stack: ServiceStack) -> Any:
    conn = await stack.db.admin()
    try:
        return await conn.fetchrow(
            "SELECT status, attempts, last_error FROM session.outbox WHERE kind = 'email'"
        )
    finally:
        await conn.close()


class TestCustomerMailWithAuth:
    @pytest.fixture
    def stack_env(
        self, stack_env: dict[str, str], tls_server: tuple[_Inbox, int], smtp_ca: TestCA
    ) -> dict[str, str]:
        return {**stack_env, **_smtp_env(tls_server[1], smtp_ca), "PAYGATE_OUTBOX_POLL_MS": "100"}

    async def test_customer_mail_arrives_over_starttls_authenticated(
        self, stack: ServiceStack, tls_server: tuple[_Inbox, int], caplog: pytest.LogCaptureFixture
    ) -> None:
        inbox, _ = tls_server
        with caplog.at_level(logging.DEBUG):
            await _paid(stack)

            async def sent() -> bool:
                row = await _mail_row(stack)
                return row is not None and row["status"] == "done"

            await polling.eventually(sent, timeout=30, interval=0.1)
        assert inbox.deliveries == [{"tls": True, "authenticated": True, "to": ["buyer@example.com"]}]
        assert "Acme Widgets" in inbox.messages[0]["Subject"]
        assert PASSWORD not in caplog.text


class TestCustomerMailWithoutStarttls:
    @pytest.fixture
    def stack_env(self, stack_env: dict[str, str], plain_server: tuple[_Inbox, int]) -> dict[str, str]:
        return {
            **stack_env,
            **_smtp_env(plain_server[1], None),
            "PAYGATE_OUTBOX_POLL_MS": "100",
            "PAYGATE_FULFILMENT_BACKOFF_BASE_MS": "50",
            "PAYGATE_FULFILMENT_BACKOFF_CAP_MS": "200",
        }

    async def test_mail_is_not_sent_in_plaintext_and_the_outbox_retries(
        self, stack: ServiceStack, plain_server: tuple[_Inbox, int], caplog: pytest.LogCaptureFixture
    ) -> None:
        inbox, _ = plain_server
        with caplog.at_level(logging.DEBUG):
            await _paid(stack)

            async def retried() -> bool:
                row = await _mail_row(stack)
                return row is not None and row["attempts"] >= 2

            await polling.eventually(retried, timeout=30, interval=0.1)
        row = await _mail_row(stack)
        assert row["status"] != "done"
        assert "STARTTLS" in row["last_error"]
        assert PASSWORD not in row["last_error"]
        assert inbox.messages == [] and inbox.logins == []  # nothing, credentials included, went out in clear
        assert PASSWORD not in caplog.text
