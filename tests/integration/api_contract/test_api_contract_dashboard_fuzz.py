"""The merchant dashboard is HTML for browsers, so it is not in the OpenAPI document; it must still never
answer a 5xx. Every dashboard route gets random query strings and form posts (with and without the page's
CSRF token, on real and made-up ids), signed in with a real merchant key, against a real gateway.

Like the schemathesis run, the HTTP client runs in a worker thread while this test's event loop serves the
stack; the run is derandomized and bounded.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from support.stack import ServiceStack
from webhook_gateway.entrypoints.dashboard_views import ROUTES

EXAMPLES_PER_ROUTE = 25
REQUEST_TIMEOUT_S = 30.0
# Every query and form field name the dashboard reads, and a few it does not.
QUERY_NAMES = ["after", "status", "interval", "kind", "mode", "notice", "error", "hint", "from", "to", "x"]
FORM_NAMES = [
    "decision",
    "grace_period",
    "idempotency_key",
    "note",
    "reason",
    "secret_key",
    "mode",
    "confirm",
]
values = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        ["", "paid", "day", "month", "live", "test", "0", "-1", "99999999999", "2025-01-01",
         "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "²", "\x00", "sk_test_x", "yes"]
    ),
)  # fmt: skip


def _path(template: str, ids: list[str], pick: int) -> str:
    def fill(match: re.Match[str]) -> str:
        return ids[pick % len(ids)] if match.group(1) == "id" else "app.css"

    return re.sub(r"{(\w+)}", fill, template)


def _exercise_route(
    http: requests.Session, base_url: str, method: str, template: str, cookie: dict[str, str], csrf: str,
    ids: list[str],
) -> str | None:  # fmt: skip
    @settings(
        max_examples=EXAMPLES_PER_ROUTE,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(
        query=st.dictionaries(st.sampled_from(QUERY_NAMES), values, max_size=4),
        form=st.dictionaries(st.sampled_from(FORM_NAMES), values, max_size=4),
        with_csrf=st.booleans(),
        pick=st.integers(min_value=0, max_value=10),
    )
    def exercise(query: dict[str, str], form: dict[str, str], with_csrf: bool, pick: int) -> None:
        url = base_url + _path(template, ids, pick)
        data = {**form, **({"csrf_token": csrf} if with_csrf else {})} if method == "POST" else None
        response = http.request(
            method,
            url,
            params=query,
            data=data,
            cookies=cookie,
            allow_redirects=False,
            timeout=REQUEST_TIMEOUT_S,
        )
        assert response.status_code < 500, (
            f"{method} {response.url} {data or ''} -> {response.status_code}: {response.text[:300]}"
        )

    try:
        exercise()
    except AssertionError as failure:
        return str(failure)
    return None


def fuzz_dashboard(base_url: str, cookie: dict[str, str], csrf: str, ids: list[str]) -> list[str]:
    failures: list[str] = []
    with requests.Session() as http:
        for method, template in ROUTES:
            if template == "/dashboard/sign-out":
                continue  # it ends the session the rest of the run needs
            failure = _exercise_route(http, base_url, method, template, cookie, csrf, ids)
            if failure is not None:
                failures.append(failure)
    return failures


async def _sign_in(stack: ServiceStack, secret_key: str) -> tuple[dict[str, str], str]:
    assert stack.http is not None
    async with stack.http.post(
        stack.base_url + "/dashboard/sign-in", data={"secret_key": secret_key}, allow_redirects=False
    ) as response:
        assert response.status in (302, 303), await response.text()
        cookie = {name: morsel.value for name, morsel in response.cookies.items()}
    assert cookie, "no dashboard cookie"
    async with stack.http.get(stack.base_url + "/dashboard/keys", cookies=cookie) as response:
        page = await response.text()
        assert response.status == 200, page
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None, page
    return cookie, match.group(1)


async def test_no_dashboard_request_is_a_server_error(shared_stack: ServiceStack) -> None:
    merchant = await shared_stack.create_merchant("Dash Fuzz", "dashfuzz")
    status, session = await shared_stack.request(
        "POST", "/v1/sessions", json={"amount": "4.00"}, headers=merchant.headers
    )
    assert status == 201, session
    cookie, csrf = await _sign_in(shared_stack, merchant.api_key)
    ids: list[Any] = [session["id"], "not-a-uuid", "00000000-0000-0000-0000-000000000000"]
    failures = await asyncio.to_thread(fuzz_dashboard, shared_stack.base_url, cookie, csrf, ids)
    assert not failures, "\n\n".join(failures)
