"""The merchant dashboard as a browser without JavaScript sees it: a client signed in with a secret key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp

from support.stack import ServiceStack


@asynccontextmanager
async def signed_in(stack: ServiceStack, secret_key: str) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client signed in to the dashboard with a merchant secret key (its cookie in the jar)."""
    # unsafe: the jar keeps cookies of an IP-address host (the test gateway is 127.0.0.1).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(
            f"{stack.base_url}/dashboard/sign-in", data={"secret_key": secret_key}, allow_redirects=False
        ) as response:
            assert response.status == 303, await response.text()
        yield http


async def dashboard_page(stack: ServiceStack, secret_key: str, path: str) -> str:
    """One dashboard page's HTML, signed in with `secret_key`."""
    async with (
        signed_in(stack, secret_key) as http,
        http.get(stack.base_url + path, allow_redirects=False) as reply,
    ):
        assert reply.status == 200, reply.status
        return await reply.text()
