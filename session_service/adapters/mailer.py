"""Sending mail over SMTP with aiosmtplib. No host configured means mail is switched off, not an error."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    timeout_s: float = 10.0


class SmtpMailer:
    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    @property
    def sender(self) -> str:
        return self.settings.sender

    async def send(self, message: EmailMessage) -> None:
        """Raises aiosmtplib.SMTPException or OSError when the server is unreachable or refuses."""
        await aiosmtplib.send(
            message,
            hostname=self.settings.host,
            port=self.settings.port,
            timeout=self.settings.timeout_s,
        )
