"""The merchant dashboard as a browser without JavaScript sees it: a client signed in with a secret key."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html import unescape

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


async def get(http: aiohttp.ClientSession, stack: ServiceStack, path: str, expect: int = 200) -> str:
    """A page's HTML, its status checked, redirects not followed."""
    async with http.get(stack.base_url + path, allow_redirects=False) as response:
        text = await response.text()
        assert response.status == expect, (path, response.status, text[:800])
        return text


async def post(
    http: aiohttp.ClientSession, stack: ServiceStack, path: str, form: dict[str, str]
) -> tuple[int, str, str]:
    """(status, Location, body) of one form POST, redirects not followed."""
    async with http.post(stack.base_url + path, data=form, allow_redirects=False) as response:
        return response.status, response.headers.get("Location", ""), await response.text()


def form_of(html: str, action: str) -> dict[str, str]:
    """The fields (hidden and visible inputs with their values) of the form posting to `action`."""
    match = re.search(r'<form[^>]*action="' + re.escape(action) + r'"[^>]*>(.*?)</form>', html, re.S)
    assert match, (action, html[:3000])
    fields: dict[str, str] = {}
    for tag in re.findall(r"<(?:input|select|textarea)[^>]*>", match.group(1)):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name:
            fields[name.group(1)] = unescape(value.group(1)) if value else ""
    return fields
