"""What a customer reads when the portal refuses something: a short sentence of the portal's own for each
stable code, never a service's raw error text, a code or a form field's internal name; the HTTP status is
kept, and the code stays machine-readable in a data attribute (and in the JSON answer for API clients)."""

from __future__ import annotations

import html as html_lib
import re
from html.parser import HTMLParser

from portal_helpers import HTML, csrf, open_portal, page, paid_session, post_form, reveal

from support.stack import ServiceStack
from webhook_gateway.entrypoints.portal_views import customer_message


class _VisibleText(HTMLParser):
    """The text a reader sees: no tags, attributes, style or head."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script", "head"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "head"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(page_html: str) -> str:
    parser = _VisibleText()
    parser.feed(page_html)
    return " ".join(" ".join(parser.parts).split())


def element_text(page_html: str, element_id: str) -> str:
    match = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*>(.*?)</\1>', page_html, re.S)
    assert match, f"#{element_id} not in the page"
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", "", match.group(2))).split())


async def test_error_pages_show_a_sentence_not_a_code(stack: ServiceStack) -> None:
    assert stack.http is not None
    cases = (
        ("/access?token=not.a.token", 401, "token_invalid"),
        ("/access", 401, "no_portal_session"),
        ("/access/receipt.pdf", 401, "no_portal_session"),
    )
    for path, status, code in cases:
        async with stack.http.get(f"{stack.base_url}{path}", headers=HTML) as response:
            text = await response.text()
            assert response.status == status, (path, response.status)
        seen = visible_text(text)
        assert code not in seen and "Error code" not in seen, (path, seen)
        assert element_text(text, "error-message") == customer_message(code), path
        assert f'data-code="{code}"' in text, path  # still there for support and tests, not for reading


async def test_a_service_refusal_in_a_form_is_told_in_the_portals_words(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    paid = await paid_session(stack, merchant, scopes=["read", "write"])
    cookie = await open_portal(stack, paid.token)
    await reveal(stack, cookie)
    _status, html = await page(stack, cookie)
    token = csrf(html)
    cases = (
        # widened beyond the merchant's grant: refused by the keys service, with its own wording
        ([("scopes_form", "1"), ("scope", "read"), ("scope", "admin")], "scope_not_granted", "scopes"),
        # a CIDR with host bits set: refused by the keys service
        ([("ip_allowlist", "10.0.0.1/8")], "invalid_ip_allowlist", "ip_allowlist"),
        # a wrong current key for a roll
        ([("current_key", "acme_test_wrong")], "current_key_mismatch", "current_key"),
    )
    for fields, code, field in cases:
        path = "/access/key/roll" if field == "current_key" else "/access/key/settings"
        status, body = await post_form(stack, cookie, path, [("csrf_token", token), *fields])
        assert status == 400 and body["error"]["code"] == code, body  # the API client's answer is unchanged
        service_text = body["error"]["message"]
        status, text = await post_form(stack, cookie, path, [("csrf_token", token), *fields], html=True)
        assert status == 400, (code, status)
        shown = element_text(text, "form-error")
        assert shown == customer_message(code), (code, shown)
        seen = visible_text(text)
        assert service_text not in seen, (code, service_text)
        assert code not in seen and f"{field}:" not in seen, (code, seen)
        assert f'data-code="{code}"' in text and f'data-field="{field}"' in text


async def test_an_unknown_code_gets_the_generic_sentence() -> None:
    generic = customer_message("some_code_the_portal_has_never_seen")
    assert generic and "some_code" not in generic
    assert customer_message("") == generic
