"""A form whose multipart body cannot be read (a part whose header line is not a header) is a 400, never a 500,
on every page that takes a form: the checkout's two forms and the dashboard's, as the portal's already were
(tests/integration/portal/test_portal_malformed_forms.py). aiohttp raises its own HttpProcessingError for such a
body, which the checkout's guard did not catch and the dashboard did not guard at all. Over real HTTP against a
test-started stack of the real services."""

from __future__ import annotations

from support.dashboard import signed_in
from support.stack import ServiceStack

BROKEN = b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\ny\r\n--b\r\nnot a header line\r\n\r\nx\r\n--b--\r\n'


def _headers(stack: ServiceStack) -> dict[str, str]:
    return {
        "Content-Type": "multipart/form-data; boundary=b",
        "Sec-Fetch-Site": "same-origin",
        "Origin": stack.base_url,
    }


async def test_the_checkout_forms_refuse_an_unreadable_body_with_a_400(stack: ServiceStack) -> None:
    assert stack.http is not None
    for path in ("/checkout/customer", "/checkout/pay"):
        async with stack.http.post(stack.base_url + path, data=BROKEN, headers=_headers(stack)) as response:
            text = await response.text()
            assert response.status == 400, (path, response.status, text[:300])
            assert "invalid_form" in text, (path, text[:300])


async def test_the_dashboard_forms_refuse_an_unreadable_body_with_a_400(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    assert stack.http is not None
    async with stack.http.post(
        stack.base_url + "/dashboard/sign-in", data=BROKEN, headers=_headers(stack), allow_redirects=False
    ) as response:
        text = await response.text()
        assert response.status == 400, ("/dashboard/sign-in", response.status, text[:300])
    async with signed_in(stack, merchant.api_key) as http:
        for path in ("/dashboard/webhooks", "/dashboard/sign-out"):
            async with http.post(
                stack.base_url + path, data=BROKEN, headers=_headers(stack), allow_redirects=False
            ) as response:
                text = await response.text()
                assert response.status == 400, (path, response.status, text[:300])
        # Still signed in: the refused sign-out changed nothing.
        async with http.get(stack.base_url + "/dashboard", allow_redirects=False) as response:
            assert response.status == 200
