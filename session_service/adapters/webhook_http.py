"""The HTTP client that POSTs merchant events, hardened against being pointed at paygate's own network.

- Names are resolved at delivery time by `CheckedResolver`, which hands aiohttp only addresses that
  `address_allowed` accepts; aiohttp connects to exactly those (no second lookup), so a name that answers a
  public address when checked and a private one a moment later (DNS rebinding) cannot slip through. The DNS
  cache is off: every delivery is checked against the name's current answer.
- A literal IP in the URL never reaches a resolver (aiohttp connects to it directly), so it is checked here
  before the request.
- Redirects are not followed (a 3xx is a failed attempt), proxies from the environment are ignored, cookies
  are not kept, and at most MAX_RESPONSE_BODY bytes of an answer are read.
- The secret is never logged: only signatures leave this module, in the request's headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from session_service.domain.merchant_events import MAX_RESPONSE_BODY, address_allowed, allowed_addresses

Lookup = Callable[[str, int], Awaitable[list[str]]]


class AddressRefused(OSError):
    """The endpoint's host resolves only to addresses paygate must not connect to."""


async def system_lookup(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class CheckedResolver(AbstractResolver):
    def __init__(self, *, allow_loopback: bool, lookup: Lookup = system_lookup) -> None:
        self.allow_loopback = allow_loopback
        self.lookup = lookup

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await self.lookup(host, port)
        ok, refused = allowed_addresses(addresses, allow_loopback=self.allow_loopback)
        if not ok:
            raise AddressRefused(
                f"address_not_allowed: {host} resolves to {', '.join(refused[:4]) or 'nothing'}"
            )
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in ok
        ]

    async def close(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class PostResult:
    status_code: int | None
    error: str | None
    latency_ms: int
    body: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookHttpClient:
    """Two sessions: one that may reach loopback (test endpoints, when PAYGATE_ALLOW_LOOPBACK_WEBHOOKS is on)
    and one that never does. Each keeps connections alive per endpoint host."""

    def __init__(self, *, timeout_s: float, max_connections: int, lookup: Lookup = system_lookup) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._lookup = lookup
        self._max = max_connections
        self._sessions: dict[bool, aiohttp.ClientSession] = {}

    def _session(self, allow_loopback: bool) -> aiohttp.ClientSession:
        session = self._sessions.get(allow_loopback)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                resolver=CheckedResolver(allow_loopback=allow_loopback, lookup=self._lookup),
                use_dns_cache=False,
                limit=self._max,
                limit_per_host=0,
            )
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=self.timeout,
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
            )
            self._sessions[allow_loopback] = session
        return session

    async def post(
        self, url: str, body: bytes, headers: dict[str, str], *, allow_loopback: bool
    ) -> PostResult:
        started = time.perf_counter()

        def elapsed() -> int:
            return int((time.perf_counter() - started) * 1000)

        host = urlsplit(url).hostname or ""
        try:
            literal: Any = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None and not address_allowed(literal, allow_loopback=allow_loopback):
            return PostResult(None, f"address_not_allowed: {host}", elapsed(), None)
        try:
            async with self._session(allow_loopback).post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                chunks = bytearray()
                while len(chunks) < MAX_RESPONSE_BODY:
                    chunk = await response.content.read(MAX_RESPONSE_BODY - len(chunks))
                    if not chunk:
                        break
                    chunks.extend(chunk)
                text = bytes(chunks[:MAX_RESPONSE_BODY]).decode("utf-8", "replace")
                status = response.status
                error = None if 200 <= status < 300 else f"http_{status}"
                return PostResult(status, error, elapsed(), text)
        except TimeoutError:
            return PostResult(None, f"timeout after {self.timeout.total:g} s", elapsed(), None)
        except aiohttp.ClientConnectorError as exc:
            refused = _refusal(exc)
            return PostResult(None, refused or f"connect_failed: {exc.os_error}"[:300], elapsed(), None)
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            refused = _refusal(exc)
            return PostResult(None, refused or f"{type(exc).__name__}: {exc}"[:300], elapsed(), None)

    async def close(self) -> None:
        for session in self._sessions.values():
            with contextlib.suppress(Exception):
                await session.close()
        self._sessions.clear()


def _refusal(exc: BaseException) -> str | None:
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return None
        if isinstance(seen, AddressRefused):
            return str(seen)[:300]
        inner = getattr(seen, "os_error", None)
        seen = (
            inner
            if isinstance(inner, BaseException) and inner is not seen
            else (seen.__cause__ or seen.__context__)
        )
    return None
