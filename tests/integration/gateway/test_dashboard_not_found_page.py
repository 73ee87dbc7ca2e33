"""An unknown address under /dashboard/ is a page for a person: HTML in the dashboard's layout, status 404, with
a way back to the dashboard. The JSON API's unknown paths keep answering JSON."""

from __future__ import annotations

import aiohttp

from support.stack import ServiceStack

UNKNOWN = ("/dashboard/nope", "/dashboard/sessions/a/b/c", "/dashboard/static/a/b.css", "/dashboard/Keys")


def _is_html_404(status: int, headers: dict[str, str], page: str) -> None:
    assert status == 404, page
    assert headers["Content-Type"].startswith("text/html"), headers
    assert '"error"' not in page and "no such route" not in page
    assert "<!doctype html>" in page.lower() and 'href="/dashboard"' in page
    assert "Page not found" in page
    # The same hardening as every dashboard page.
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-store"


async def test_unknown_dashboard_paths_get_an_html_404_page(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant(name="Northwind Labs")
    # unsafe: the jar keeps cookies of an IP-address host (the test gateway is 127.0.0.1).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        # Signed out: the bare layout, a link back to the dashboard (its sign-in).
        for path in UNKNOWN:
            async with http.get(stack.base_url + path, allow_redirects=False) as response:
                _is_html_404(response.status, dict(response.headers), await response.text())

        async with http.post(
            f"{stack.base_url}/dashboard/sign-in",
            data={"secret_key": merchant.api_key},
            allow_redirects=False,
        ) as response:
            assert response.status == 303
        # Signed in: the dashboard's own layout (navigation, merchant, mode) around the message.
        for path in UNKNOWN:
            async with http.get(stack.base_url + path, allow_redirects=False) as response:
                page = await response.text()
                _is_html_404(response.status, dict(response.headers), page)
                assert 'aria-label="Dashboard"' in page and "Northwind Labs" in page
                assert 'id="mode-badge"' in page
        async with http.post(f"{stack.base_url}/dashboard/nope", data={}, allow_redirects=False) as response:
            _is_html_404(response.status, dict(response.headers), await response.text())
        # The session goes on.
        async with http.get(f"{stack.base_url}/dashboard", allow_redirects=False) as response:
            assert response.status == 200


async def test_api_paths_keep_their_json_404(stack: ServiceStack) -> None:
    for path in ("/v1/nope", "/v1/sessions/x/nope", "/nope", "/dashboards"):
        status, body = await stack.request("GET", path)
        assert status == 404, (path, body)
        assert body == {"error": {"code": "not_found", "message": "no such route"}}, (path, body)
