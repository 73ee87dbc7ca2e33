"""README, "The merchant dashboard": 10 failed sign-ins from one client in 15 minutes get 429 for the rest of
the window. The limit holds when the guesses arrive at once: a client that sends many sign-ins in parallel gets
no more than 10 of them checked, and a right key after that is refused too."""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp

from support.stack import ServiceStack

PARALLEL_GUESSES = 30
MAX_FAILURES = 10


async def _sign_in(http: aiohttp.ClientSession, stack: ServiceStack, secret_key: str) -> int:
    async with http.post(
        f"{stack.base_url}/dashboard/sign-in",
        data={"secret_key": secret_key},
        headers={"Origin": stack.base_url},
        allow_redirects=False,
    ) as response:
        await response.read()
        return response.status


async def test_parallel_wrong_sign_ins_are_checked_at_most_ten_times(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant(name="Parallel Guesses Ltd")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        # Well-formed keys, so each guess goes to the keys service (the slow path a guesser would race).
        guesses = [f"sk_test_{'x' * 24}{n:04d}" for n in range(PARALLEL_GUESSES)]
        statuses = Counter(await asyncio.gather(*(_sign_in(http, stack, key) for key in guesses)))
        assert set(statuses) <= {401, 429}, statuses
        assert statuses[401] == MAX_FAILURES, statuses
        # The window is closed for this client: even the right key is refused until it ends.
        assert await _sign_in(http, stack, merchant.api_key) == 429


async def test_a_right_key_inside_the_limit_signs_in_and_clears_the_count(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant(name="Typo Then Right Ltd")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        for n in range(MAX_FAILURES - 1):
            assert await _sign_in(http, stack, f"sk_test_{'y' * 24}{n:04d}") == 401
        assert await _sign_in(http, stack, merchant.api_key) == 303
        # The successful sign-in cleared the failures: another full allowance of mistakes.
        for n in range(MAX_FAILURES):
            assert await _sign_in(http, stack, f"sk_test_{'z' * 24}{n:04d}") == 401
        assert await _sign_in(http, stack, f"sk_test_{'z' * 28}") == 429


async def test_a_right_key_of_the_other_mode_is_no_failed_sign_in(stack: ServiceStack) -> None:
    """ "Switch to live" with a test key is refused (400) without counting against the client's limit."""
    merchant = await stack.create_merchant(name="Mode Switch Ltd")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        for _ in range(MAX_FAILURES + 2):
            async with http.post(
                f"{stack.base_url}/dashboard/sign-in",
                data={"secret_key": merchant.api_key, "mode": "live"},
                headers={"Origin": stack.base_url},
                allow_redirects=False,
            ) as response:
                assert response.status == 400, await response.text()
        assert await _sign_in(http, stack, merchant.api_key) == 303
