"""The caller's `X-Request-Id` is echoed and carried to the services, but only when it is text a header and gRPC
metadata can carry: an id with a tab or a non-ASCII character once made every route that calls a service a 500
`internal_error` (gRPC refuses such metadata), for a header that only exists to help support. Such an id is
replaced with a fresh random one, as a missing one is."""

from __future__ import annotations

import asyncio

import pytest
from yarl import URL

from support.stack import Merchant, ServiceStack


@pytest.fixture(scope="module")
async def merchant(shared_stack: ServiceStack) -> Merchant:
    return await shared_stack.create_merchant("Request Id Ltd", "requestid")


async def raw_get(base_url: str, path: str, headers: dict[str, str], request_id: bytes) -> tuple[int, str]:
    """GET over a bare socket: HTTP clients refuse to send the header bytes a caller's proxy may well send."""
    url = URL(base_url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    lines = [f"GET {path} HTTP/1.1", f"Host: {url.host}:{url.port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\nX-Request-Id: ").encode() + request_id + b"\r\n\r\n")
    await writer.drain()
    head = (await reader.read()).split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    writer.close()
    echoed = next(
        (line.split(":", 1)[1].strip() for line in head if line.lower().startswith("x-request-id:")), ""
    )
    return int(head[0].split()[1]), echoed


@pytest.mark.parametrize(
    "request_id",
    # (Other control characters never reach paygate: aiohttp's parser answers its own plain 400, see README.)
    [b"ticket\t7", "ticket-\u00e9".encode(), b"ticket-\xe9"],
    ids=["tab", "utf-8", "latin-1"],
)
async def test_an_id_that_metadata_cannot_carry_is_replaced_never_a_500(
    shared_stack: ServiceStack, merchant: Merchant, request_id: bytes
) -> None:
    for path, expected in (("/v1/sessions", 200), ("/v1/sessions/not-a-session", 404)):
        status, echoed = await raw_get(shared_stack.base_url, path, merchant.headers, request_id)
        assert status == expected, (path, status, echoed)
        assert len(echoed) == 32 and all(c in "0123456789abcdef" for c in echoed), (path, echoed)


async def test_a_printable_id_is_still_echoed(shared_stack: ServiceStack, merchant: Merchant) -> None:
    assert shared_stack.http is not None
    async with shared_stack.http.get(
        shared_stack.base_url + "/v1/sessions",
        headers={**merchant.headers, "X-Request-Id": "support ticket #7 (a/b)"},
    ) as reply:
        assert reply.status == 200, await reply.text()
        assert reply.headers.get("X-Request-Id") == "support ticket #7 (a/b)"
