"""Sending mail over SMTP with aiosmtplib. No host configured means mail is switched off, not an error.

The settings (host, STARTTLS policy, credentials, CA bundle) and the sending itself are shared with the gateway's
portal contact form: paygate_runtime.smtp. The outbox sends many mails per dispatcher pass, so the mailer keeps a
few authenticated connections open and reuses them (SmtpConnectionPool, issue 16) instead of one per mail.
"""

from __future__ import annotations

from email.message import EmailMessage

from paygate_runtime.smtp import RawMail, SmtpConnectionPool, SmtpSettings

__all__ = ["SmtpMailer", "SmtpSettings"]


class SmtpMailer:
    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.pool = SmtpConnectionPool(settings)

    @property
    def sender(self) -> str:
        return self.settings.sender

    async def send(self, message: EmailMessage | RawMail) -> None:
        """An EmailMessage, or a mail already rendered to its bytes (the customer's access mail). Raises aiosmtplib.SMTPException or OSError when the server is unreachable or refuses, or when
        STARTTLS is required and the server does not offer it (nothing is sent then)."""
        await self.pool.send(message)

    async def aclose(self) -> None:
        """Close the open connections politely (QUIT); the mailer stays usable and reconnects if asked."""
        await self.pool.aclose()
