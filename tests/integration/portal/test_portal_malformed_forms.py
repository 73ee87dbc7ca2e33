"""A portal form whose body cannot be read (a broken multipart part header, found by a customer's walk of
`paygate up`, README "Customer portal") is a 400 `invalid_form` like any other bad input, never a 500: the
contract's "no request makes a 5xx" holds for the customer's forms too, and the page says it in the portal's
own sentence. Over real HTTP against a test-started stack of the real services."""

from __future__ import annotations

import html as html_lib
import json
import re

from portal_helpers import HTML, SAME_ORIGIN, csrf, open_portal, page, paid_session

from support.stack import ServiceStack
from webhook_gateway.entrypoints.portal_views import customer_message

FORMS = (
    "/access/reveal",
    "/access/key/settings",
    "/access/key/roll",
    "/access/key/revoke",
    "/access/support",
    "/access/receipts/code",
    "/access/receipts/verify",
)


def _broken_multipart(csrf_token: str) -> tuple[bytes, dict[str, str]]:
    """A good CSRF part, then a part whose header line is not a header: aiohttp cannot parse the form."""
    body = (
        b'--b\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
        + csrf_token.encode()
        + b"\r\n--b\r\nnot a header line\r\n\r\nx\r\n--b--\r\n"
    )
    return body, {"Content-Type": "multipart/form-data; boundary=b"}


async def test_an_unreadable_form_is_a_400_not_a_500(stack: ServiceStack) -> None:
    assert stack.http is not None
    merchant = await stack.create_merchant()
    paid = await paid_session(stack, merchant)
    cookie = await open_portal(stack, paid.token)
    _status, html = await page(stack, cookie)
    body, content_type = _broken_multipart(csrf(html))
    for path in FORMS:
        headers = {**SAME_ORIGIN, **content_type, "Cookie": cookie, "Accept": "application/json"}
        async with stack.http.post(f"{stack.base_url}{path}", data=body, headers=headers) as response:
            text = await response.text()
            assert response.status == 400, (path, response.status, text)
        assert json.loads(text)["error"]["code"] == "invalid_form", (path, text)
        async with stack.http.post(
            f"{stack.base_url}{path}", data=body, headers={**headers, **HTML}
        ) as response:
            text = await response.text()
            assert response.status == 400, (path, response.status, text)
        assert 'data-code="invalid_form"' in text, path
        shown = re.search(r'id="error-message"[^>]*>(.*?)<', text, re.S)
        assert shown and " ".join(html_lib.unescape(shown.group(1)).split()) == customer_message(
            "invalid_form"
        ), path
    # Nothing was changed by the refused forms: the key is still there to be revealed once.
    _status, html = await page(stack, cookie)
    assert "Reveal my API key" in html
