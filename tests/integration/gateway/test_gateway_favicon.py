"""The gateway's favicon: browsers ask every host for /favicon.ico; the customer pages link /favicon.svg. Both
answer without auth, with long cache headers, so a browser visit leaves no 404 behind."""

from __future__ import annotations

import re

from support.stack import ServiceStack


async def test_favicon_svg_and_ico_are_served_without_auth_and_cached(stack: ServiceStack) -> None:
    assert stack.http is not None
    for path in ("/favicon.svg", "/favicon.ico"):
        async with stack.http.get(f"{stack.base_url}{path}") as response:
            body = await response.read()
            assert response.status in (200, 204), (path, response.status)
            cache = response.headers.get("Cache-Control", "")
            max_age = re.search(r"max-age=(\d+)", cache)
            assert "public" in cache and max_age and int(max_age.group(1)) >= 86_400, (path, cache)
            if response.status == 200:
                assert response.content_type == "image/svg+xml", (path, response.content_type)
                assert body.startswith(b"<svg") and len(body) < 2_048, body[:80]
                assert response.headers["X-Content-Type-Options"] == "nosniff"
    # HEAD too (a browser's revalidation): same answer, no body.
    async with stack.http.head(f"{stack.base_url}/favicon.ico") as response:
        assert response.status in (200, 204)


async def test_customer_pages_link_the_favicon(stack: ServiceStack) -> None:
    assert stack.http is not None
    pages = (
        "/checkout?session=00000000-0000-0000-0000-000000000000",  # the checkout's error page
        "/access",  # the portal's 401 page
    )
    for path in pages:
        async with stack.http.get(f"{stack.base_url}{path}", headers={"Accept": "text/html"}) as response:
            html = await response.text()
        assert '<link rel="icon" href="/favicon.svg" type="image/svg+xml">' in html, path
    merchant = await stack.create_merchant()
    status, created = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": "5.00", "currency": "EUR", "provider": "onecom"},
        headers=merchant.headers,
    )
    assert status == 201, created
    async with stack.http.get(f"{stack.base_url}{created['url']}") as response:
        assert response.status == 200
        assert '<link rel="icon" href="/favicon.svg" type="image/svg+xml">' in await response.text()
