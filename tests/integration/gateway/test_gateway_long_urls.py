"""A request URL longer than the gateway takes is refused cleanly: 414 `uri_too_long` in the API's error
shape, and no traceback in the log (a browser visit with a pasted-in link, or a scanner, is not an error of
ours). Sent over a raw socket: the request line is exactly what the test writes."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from support.stack import ServiceStack


async def _raw_get(stack: ServiceStack, target: str) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 GET of `target` over a fresh connection: (status, headers, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.ports["gateway"])
    try:
        writer.write(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/html\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize("url_chars", [9_000, 20_000])
async def test_an_over_long_url_is_a_clean_414_without_a_traceback(
    stack: ServiceStack, caplog: pytest.LogCaptureFixture, url_chars: int
) -> None:
    target = "/checkout?session=" + "a" * (url_chars - len("/checkout?session="))
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        status, headers, body = await _raw_get(stack, target)
        await asyncio.sleep(0.2)  # whatever the server logs about the request has been logged
    assert status == 414, (status, body[:200])
    assert headers["content-type"].startswith("application/json"), headers
    error = json.loads(body)["error"]
    assert error["code"] == "uri_too_long" and error["message"], error
    tracebacks = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not tracebacks, [(r.name, r.levelname, r.getMessage()) for r in tracebacks]
    # The gateway still answers on a new connection.
    status, _headers, _body = await _raw_get(stack, "/healthz")
    assert status == 200


async def test_a_url_at_the_old_limit_still_reaches_its_route(stack: ServiceStack) -> None:
    """8 KB of URL is still served as before (here: the checkout page's 404 for a session id it cannot read)."""
    target = "/checkout?session=" + "a" * (8_000 - len("/checkout?session="))
    status, headers, _body = await _raw_get(stack, target)
    assert status == 404 and headers["content-type"].startswith("text/html")


async def test_a_giant_request_line_is_refused_without_a_traceback(
    stack: ServiceStack, caplog: pytest.LogCaptureFixture
) -> None:
    """Past what the server reads of a request line at all, aiohttp answers before any route or middleware
    runs; the refusal is still a 4xx, and the log gets one line without a traceback (or the query string)."""
    secret_query = "token=" + "t" * 200_000
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        status, _headers, _body = await _raw_get(stack, f"/access?{secret_query}")
        await asyncio.sleep(0.2)
    assert 400 <= status < 500, status
    tracebacks = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not tracebacks, [(r.name, r.levelname, r.getMessage()[:200]) for r in tracebacks]
    assert not [r for r in caplog.records if "tttttttttt" in r.getMessage()]
