"""SMTP settings and sending, shared by the session service's customer mail and the gateway's portal contact form.

Variables (read at start; a bad combination stops the process with exit 2 naming the variable, never a value):

- PAYGATE_SMTP_HOST (unset: mail is off), PAYGATE_SMTP_PORT (25), PAYGATE_MAIL_FROM.
- PAYGATE_SMTP_STARTTLS: `required` (the server must offer STARTTLS, and its certificate must verify, or nothing
  is sent), `opportunistic` (upgrade when the server offers it; a certificate that does not verify is still an
  error) or `off`. Default: `required` when PAYGATE_SMTP_USERNAME is set, else `opportunistic`.
- PAYGATE_SMTP_USERNAME / PAYGATE_SMTP_PASSWORD: AUTH after STARTTLS. Both or neither; with them STARTTLS must
  be `required`, so credentials never cross the network in plaintext. The password is a secret: it is kept out
  of every repr and message, and it travels only inside the TLS session.
- PAYGATE_SMTP_TLS_CA_FILE: PEM bundle that verifies the server's certificate (default: the system's CAs).
- PAYGATE_SMTP_CONNECTIONS (8): most SMTP connections one sender (SmtpConnectionPool) keeps open and sends on
  at once (SMTP carries one mail at a time per connection: raise it for a distant relay, lower it for a server
  that limits connections per client). PAYGATE_SMTP_IDLE_MS (30000): an open connection unused this long is closed (QUIT).
  PAYGATE_SMTP_MAILS_PER_CONNECTION (100): a connection is closed after this many mails and a fresh one opened.

Cost (issue 16): a connection costs a TCP connect, EHLO, STARTTLS (a TLS handshake and a CA bundle load), EHLO
again and AUTH; a mail on an open connection costs MAIL, RCPT and DATA. The session service's outbox sends many
mails per dispatcher pass, so it reuses connections (SmtpConnectionPool); the local hostname for EHLO is looked up
once per process instead of once per connection (aiosmtplib would call socket.getfqdn in a thread each time).
"""

from __future__ import annotations

import asyncio
import enum
import hmac
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Literal, Protocol

import aiosmtplib
from aiosmtplib.typing import Default

from paygate_runtime.config import ConfigError, Env


class StartTls(enum.StrEnum):
    REQUIRED = "required"
    OPPORTUNISTIC = "opportunistic"
    OFF = "off"


class Password:
    """The SMTP password: its repr and str never show it (settings objects end up in tracebacks and logs)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Password):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(Password)  # equal passwords must hash alike; the value itself stays out of any hash table

    def __repr__(self) -> str:
        return "Password(***)"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    timeout_s: float = 10.0
    starttls: StartTls = StartTls.OPPORTUNISTIC
    username: str | None = None
    password: Password | None = field(default=None, repr=False)
    ca_file: Path | None = None
    # Connection reuse (SmtpConnectionPool): how many at once, closed after idle_s unused or mails_per_connection.
    connections: int = 8
    idle_s: float = 30.0
    mails_per_connection: int = 100


def _credential(env: Env, name: str) -> str | None:
    value = env.optional(name)
    if value is None or value == "":
        return None
    # SMTP AUTH sends them base64 encoded in one line; a line break or NUL would corrupt (or split) that line.
    if any(c in value for c in "\r\n\x00"):
        raise ConfigError(name, "must not contain line breaks or NUL characters")
    return value


def load_smtp_settings(env: Env, *, sender_check: bool = True) -> SmtpSettings | None:
    """The SMTP settings, or None when PAYGATE_SMTP_HOST is unset (mail switched off)."""
    host = env.optional("PAYGATE_SMTP_HOST")
    if not host:
        return None
    sender = env.str("PAYGATE_MAIL_FROM", "paygate@localhost")
    if sender_check and "@" not in sender:
        raise ConfigError("PAYGATE_MAIL_FROM", f"must be an email address, got {sender!r}")
    username = _credential(env, "PAYGATE_SMTP_USERNAME")
    password = _credential(env, "PAYGATE_SMTP_PASSWORD")
    if username and not password:
        raise ConfigError("PAYGATE_SMTP_PASSWORD", "must be set when PAYGATE_SMTP_USERNAME is set")
    if password and not username:
        raise ConfigError("PAYGATE_SMTP_USERNAME", "must be set when PAYGATE_SMTP_PASSWORD is set")
    default = StartTls.REQUIRED if username else StartTls.OPPORTUNISTIC
    starttls = StartTls(env.choice("PAYGATE_SMTP_STARTTLS", default.value, {m.value for m in StartTls}))
    if username and starttls is not StartTls.REQUIRED:
        raise ConfigError(
            "PAYGATE_SMTP_STARTTLS",
            f"must be required when PAYGATE_SMTP_USERNAME is set (credentials are never sent in plaintext), "
            f"not {starttls.value}",
        )
    ca_value = env.optional("PAYGATE_SMTP_TLS_CA_FILE")
    ca_file = Path(ca_value) if ca_value else None
    if ca_file is not None:
        if starttls is StartTls.OFF:
            raise ConfigError("PAYGATE_SMTP_TLS_CA_FILE", "is set but PAYGATE_SMTP_STARTTLS is off")
        try:
            ssl.create_default_context(cafile=str(ca_file))
        except (OSError, ssl.SSLError):
            raise ConfigError(
                "PAYGATE_SMTP_TLS_CA_FILE", f"is not a readable PEM CA bundle: {ca_value}"
            ) from None
    return SmtpSettings(
        host=host,
        port=env.port("PAYGATE_SMTP_PORT", 25),
        sender=sender,
        starttls=starttls,
        username=username,
        password=Password(password) if password else None,
        ca_file=ca_file,
        connections=env.int("PAYGATE_SMTP_CONNECTIONS", 8, minimum=1, maximum=64),
        idle_s=env.millis("PAYGATE_SMTP_IDLE_MS", 30_000, minimum=100, maximum=3_600_000),
        mails_per_connection=env.int("PAYGATE_SMTP_MAILS_PER_CONNECTION", 100, minimum=1, maximum=100_000),
    )


# The local hostname for EHLO, looked up once per process. aiosmtplib otherwise calls socket.getfqdn (a DNS
# lookup, in a thread) on every connection; the name does not change while the process runs.
_local_hostname: str | None = None
_hostname_lookup: asyncio.Future[str] | None = None


async def local_hostname() -> str:
    global _local_hostname, _hostname_lookup
    if _local_hostname is not None:
        return _local_hostname
    loop = asyncio.get_running_loop()
    if _hostname_lookup is None or _hostname_lookup.get_loop() is not loop:
        # Concurrent first connections share one lookup rather than each starting its own.
        _hostname_lookup = loop.create_future()
        lookup = _hostname_lookup
        try:
            name = await asyncio.to_thread(socket.getfqdn)
        except BaseException as error:
            _hostname_lookup = None
            lookup.set_exception(error)
            lookup.exception()  # retrieved: waiters (if any) see it; no "never retrieved" warning
            raise
        _local_hostname = name
        lookup.set_result(name)
        return name
    return await asyncio.shield(_hostname_lookup)


class RawMail(Protocol):
    """A message already rendered to the bytes SMTP sends (CRLF lines), with its envelope: sent as it is,
    without send_message's flattening, which re-parses every header of an EmailMessage (issue 16)."""

    @property
    def sender(self) -> str: ...

    @property
    def recipients(self) -> Sequence[str]: ...

    @property
    def data(self) -> bytes: ...

    @property
    def smtputf8(self) -> bool:
        """An address is not ASCII: the server must offer SMTPUTF8."""
        ...


def _start_tls(settings: SmtpSettings) -> bool | None:
    return {StartTls.REQUIRED: True, StartTls.OPPORTUNISTIC: None, StartTls.OFF: False}[settings.starttls]


class _Connection(aiosmtplib.SMTP):
    """One SMTP connection that remembers whether the current mail reached DATA (past that point the server
    may have accepted the message, so it must never be resent on another connection) and how much it was used."""

    def __init__(self, settings: SmtpSettings, hostname: str) -> None:
        super().__init__(
            hostname=settings.host,
            port=settings.port,
            local_hostname=hostname,
            timeout=settings.timeout_s,
            start_tls=_start_tls(settings),
            validate_certs=True,
            cert_bundle=str(settings.ca_file) if settings.ca_file else None,
            username=settings.username,
            password=settings.password.reveal() if settings.password else None,
        )
        self.data_started = False
        self.mails = 0
        self.last_used = time.monotonic()

    async def data(
        self, message: str | bytes, /, *, timeout: float | Literal[Default.token] | None = Default.token
    ) -> aiosmtplib.SMTPResponse:
        self.data_started = True
        return await super().data(message, timeout=timeout)


def _dropped(error: BaseException) -> bool:
    """The server closed the connection (idle timeout, restart, per-connection limit): a disconnect, or 421
    "service not available, closing transmission channel" in place of the reply to MAIL or RCPT."""
    if isinstance(error, aiosmtplib.SMTPServerDisconnected):
        return True
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        return any(refused.code == 421 for refused in error.recipients)
    return isinstance(error, aiosmtplib.SMTPResponseException) and error.code == 421


class SmtpConnectionPool:
    """Sends mail over up to `settings.connections` open, authenticated SMTP connections.

    A connection carries one mail transaction at a time: a send checks one out (opening a new one when none is
    idle), sends, and puts it back. Any error closes that connection; a connection idle for `idle_s` or used
    for `mails_per_connection` mails is closed politely (QUIT). When a reused connection turns out to have been
    dropped by the server before DATA (nothing of the message was accepted), the mail is sent once more on a
    fresh connection; once DATA has begun it never is, the caller's own retry decides, as with one connection
    per mail. Each new connection goes through exactly the STARTTLS and AUTH steps send_message does.

    Several connections rather than one: SMTP has one transaction at a time per connection, so one connection
    serialises the outbox's concurrent sends behind each other's round trips."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._slots = asyncio.Semaphore(settings.connections)
        self._idle: list[_Connection] = []  # most recently used last
        self._reaper: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self.connections_opened = 0

    async def send(self, message: EmailMessage | RawMail) -> None:
        """Send an EmailMessage (flattened as send_message does) or a RawMail's bytes as they are. Raises aiosmtplib.SMTPException or OSError as send_message does, and aiosmtplib.SMTPTimeoutError
        when no connection frees up within the timeout (a slow or unreachable server must not hold queued mail
        past the outbox's lease, which would let another pass send it too)."""
        try:
            await asyncio.wait_for(self._slots.acquire(), self.settings.timeout_s)
        except TimeoutError:
            raise aiosmtplib.SMTPTimeoutError(
                f"no SMTP connection free within {self.settings.timeout_s:g}s"
            ) from None
        try:
            await self._send_checked_out(message)
        finally:
            self._slots.release()

    async def _send_checked_out(self, message: EmailMessage | RawMail) -> None:
        connection = self._take_idle()
        reused = connection is not None
        if connection is None:
            connection = await self._open()
        try:
            await self._send_on(connection, message)
        except BaseException as error:
            connection.close()
            if not (reused and not connection.data_started and _dropped(error)):
                raise
            # The server closed the idle connection before taking any of this message: once more, fresh.
            connection = await self._open()
            try:
                await self._send_on(connection, message)
            except BaseException:
                connection.close()
                raise
        self._put_back(connection)

    async def aclose(self) -> None:
        """QUIT every idle connection (connections in use are closed by their send when it ends)."""
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        idle, self._idle = self._idle, []
        await asyncio.gather(*(_quit(connection) for connection in idle))
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def _take_idle(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if connection.is_connected and now - connection.last_used < self.settings.idle_s:
                return connection
            self._quit_later(connection)
        return None

    async def _open(self) -> _Connection:
        connection = _Connection(self.settings, await local_hostname())
        await connection.connect()  # STARTTLS (per policy, certificate verified) and AUTH happen here
        self.connections_opened += 1
        return connection

    @staticmethod
    async def _send_on(connection: _Connection, message: EmailMessage | RawMail) -> None:
        connection.data_started = False
        if isinstance(message, EmailMessage):
            await connection.send_message(message)
        else:
            await _send_raw(connection, message)
        connection.mails += 1
        connection.last_used = time.monotonic()

    def _put_back(self, connection: _Connection) -> None:
        if connection.mails >= self.settings.mails_per_connection or not connection.is_connected:
            self._quit_later(connection)
            return
        self._idle.append(connection)
        if self._reaper is None:
            self._reaper = asyncio.get_running_loop().call_later(self.settings.idle_s, self._reap)

    def _reap(self) -> None:
        self._reaper = None
        now = time.monotonic()
        keep = []
        for connection in self._idle:
            if now - connection.last_used >= self.settings.idle_s or not connection.is_connected:
                self._quit_later(connection)
            else:
                keep.append(connection)
        self._idle = keep
        if keep:
            wait = max(0.0, min(c.last_used for c in keep) + self.settings.idle_s - now)
            self._reaper = asyncio.get_running_loop().call_later(wait, self._reap)

    def _quit_later(self, connection: _Connection) -> None:
        task = asyncio.get_running_loop().create_task(_quit(connection))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


async def _send_raw(connection: _Connection, mail: RawMail) -> None:
    """The MAIL options send_message would choose, then sendmail with the bytes as they are."""
    await connection._ehlo_or_helo_if_needed()  # the extensions below are known only after EHLO
    options = []
    if mail.smtputf8:
        if not connection.supports_extension("smtputf8"):
            raise aiosmtplib.SMTPNotSupported(
                "An address containing non-ASCII characters was provided, but SMTPUTF8 is not supported "
                "by this server"
            )
        options.append("SMTPUTF8")
    if connection.supports_extension("8BITMIME"):
        options.append("BODY=8BITMIME")
    await connection.sendmail(mail.sender, list(mail.recipients), mail.data, mail_options=options)


async def _quit(connection: _Connection) -> None:
    try:
        if connection.is_connected:
            await asyncio.wait_for(connection.quit(), timeout=connection.timeout)
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        pass  # it is going away either way
    finally:
        connection.close()


async def send_message(settings: SmtpSettings, message: EmailMessage) -> None:
    """Send one message on a connection of its own (for occasional mail, such as the portal contact form).
    Raises aiosmtplib.SMTPException or OSError when the server is unreachable, refuses, does not offer STARTTLS
    while it is required, or its certificate does not verify; the exceptions carry the server's reply, never the
    credentials."""
    await aiosmtplib.send(
        message,
        hostname=settings.host,
        port=settings.port,
        timeout=settings.timeout_s,
        local_hostname=await local_hostname(),
        start_tls=_start_tls(settings),
        validate_certs=True,
        cert_bundle=str(settings.ca_file) if settings.ca_file else None,
        username=settings.username,
        password=settings.password.reveal() if settings.password else None,
    )
