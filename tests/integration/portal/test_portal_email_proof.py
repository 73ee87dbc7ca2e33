"""The portal lists a customer's other purchases only after the visitor proves the purchase's email address.

The address on a purchase is whatever the buyer typed at the merchant's checkout, and the merchant hands the
access link back to that buyer. The link in the customer's own mail carries a proof (`&proof=`, keyed to the
token by the keys service) and opens a proven portal; the merchant's copy, or a forged proof, does not. Before this proof, a buyer who typed another person's address saw that
person's receipts with the merchant (the first test failed on the old portal: 2 documents listed, the
victim's PDF served). Over real HTTP against a test-started stack of the real services, with the SMTP sink
standing in for the mailboxes.
"""

from __future__ import annotations

import asyncpg
from portal_helpers import (
    PaidSession,
    code_mails,
    csrf,
    mail_link,
    mailed_code,
    open_portal,
    open_portal_with,
    page,
    paid_session,
    post_form,
    prove_email,
)

from paygate_dev.smtp_sink import SmtpSink
from support.stack import Merchant, ServiceStack

VICTIM = "ann@example.com"


async def _pdf_status(stack: ServiceStack, cookie: str, invoice_id: str) -> int:
    assert stack.http is not None
    async with stack.http.get(
        f"{stack.base_url}/access/documents/{invoice_id}.pdf", headers={"Cookie": cookie}
    ) as response:
        return response.status


def _proofs(stack: ServiceStack) -> dict[str, float]:
    """paygate_portal_email_proofs_total by result, from the gateway's own registry."""
    registry = stack.gateway.metrics.registry
    results = ("proven_by_mail_link", "code_sent", "proven_by_code", "wrong_code", "too_many_attempts")
    return {
        r: registry.get_sample_value("paygate_portal_email_proofs_total", {"result": r}) or 0.0
        for r in results
    }


async def _invoice_id(stack: ServiceStack, merchant: object, session_id: str) -> str:
    status, body = await stack.request("GET", f"/v1/sessions/{session_id}", headers=merchant.headers)  # type: ignore[attr-defined]
    assert status == 200, body
    return str(body["invoice_id"])


async def _two_purchases(stack: ServiceStack) -> tuple[Merchant, PaidSession]:
    """Two paid purchases of VICTIM with one merchant (10.00 and 20.00 EUR); the merchant and the second."""
    merchant = await stack.create_merchant()
    await paid_session(stack, merchant, customer_email=VICTIM, amount="10.00")
    return merchant, await paid_session(stack, merchant, customer_email=VICTIM, amount="20.00")


async def test_a_purchase_made_with_another_persons_address_shows_only_its_own_documents(
    stack: ServiceStack, smtp_sink: SmtpSink
) -> None:
    merchant = await stack.create_merchant()
    victim = await paid_session(stack, merchant, customer_email=VICTIM, amount="10.00")
    # The attacker buys with the victim's address and opens the link the merchant hands back.
    attacker = await paid_session(stack, merchant, customer_email=VICTIM, amount="30.00")
    cookie = await open_portal(stack, attacker.token)
    _status, html = await page(stack, cookie)
    assert html.count('class="document"') == 1, html
    assert "30.00 EUR" in html and "10.00 EUR" not in html
    assert "Your documents for this purchase" in html and 'id="email-proof-to">a•••@example.com<' in html
    assert await _pdf_status(stack, cookie, await _invoice_id(stack, merchant, victim.id)) == 404
    assert await _pdf_status(stack, cookie, await _invoice_id(stack, merchant, attacker.id)) == 200

    # Asking for a code mails it to the address on the purchase, which the attacker does not read.
    before = _proofs(stack)
    token = csrf(html)
    status, body = await post_form(stack, cookie, "/access/receipts/code", [("csrf_token", token)])
    assert status == 200 and body == {"sent": True, "to": "a•••@example.com"}
    code = await mailed_code(smtp_sink.folder, VICTIM, 1)
    wrong = f"{(int(code) + 1) % 10**8:08d}"
    # A malformed code is refused without spending a try; five wrong ones burn the code.
    status, body = await post_form(
        stack, cookie, "/access/receipts/verify", [("csrf_token", token), ("code", "12ab")]
    )
    assert status == 400 and body["error"] == {
        "code": "invalid_code",
        "message": "enter the 8 digits of the code we mailed you",
        "field": "code",
    }
    for attempt in range(5):
        status, body = await post_form(
            stack, cookie, "/access/receipts/verify", [("csrf_token", token), ("code", wrong)]
        )
        expected = (400, "invalid_code") if attempt < 4 else (429, "too_many_attempts")
        assert (status, body["error"]["code"]) == expected, (attempt, body)
    status, body = await post_form(
        stack, cookie, "/access/receipts/verify", [("csrf_token", token), ("code", code)]
    )
    assert status == 429 and body["error"]["code"] == "too_many_attempts"
    _status, html = await page(stack, cookie)
    assert html.count('class="document"') == 1 and "10.00 EUR" not in html
    # Operators see the guessing: 4 wrong codes, then 2 refusals of the burnt code.
    after = _proofs(stack)
    assert {r: after[r] - before[r] for r in after} == {
        "proven_by_mail_link": 0,
        "code_sent": 1,
        "proven_by_code": 0,
        "wrong_code": 4,
        "too_many_attempts": 2,
    }


async def test_the_mailed_code_shows_every_receipt_in_that_browser_only(
    stack: ServiceStack, smtp_sink: SmtpSink
) -> None:
    _merchant, own = await _two_purchases(stack)
    cookie = await open_portal(stack, own.token)
    html = await prove_email(stack, cookie, smtp_sink, VICTIM)
    assert "Your receipts with this seller" in html and 'id="email-proof"' not in html
    assert html.count('class="document"') == 2 and "10.00 EUR" in html and "20.00 EUR" in html

    # The link opened in another browser (a forwarded mail) is a new portal session: not proven, and the
    # code, already used, proves nothing there.
    elsewhere = await open_portal(stack, own.token)
    _status, other = await page(stack, elsewhere)
    assert other.count('class="document"') == 1 and "10.00 EUR" not in other
    (code,) = code_mails(smtp_sink.folder, VICTIM)
    status, body = await post_form(
        stack, elsewhere, "/access/receipts/verify", [("csrf_token", csrf(other)), ("code", code)]
    )
    assert status == 400 and body["error"]["code"] == "code_expired"
    # Asking again in the proven browser sends nothing.
    status, body = await post_form(stack, cookie, "/access/receipts/code", [("csrf_token", csrf(html))])
    assert status == 200 and body == {"proven": True}
    assert len(code_mails(smtp_sink.folder, VICTIM)) == 1


async def test_codes_are_limited_per_purchase_expire_and_refuse_other_origins(
    stack: ServiceStack, smtp_sink: SmtpSink
) -> None:
    merchant = await stack.create_merchant()
    paid = await paid_session(stack, merchant, customer_email=VICTIM)
    first, second = await open_portal(stack, paid.token), await open_portal(stack, paid.token)
    _status, html = await page(stack, first)
    token = csrf(html)
    for site in ("cross-site", "same-site"):
        status, body = await post_form(
            stack, first, "/access/receipts/code", [("csrf_token", token)], headers={"Sec-Fetch-Site": site}
        )
        assert status == 403 and body["error"]["code"] == "csrf_failed"
    status, body = await post_form(stack, first, "/access/receipts/code", [])
    assert status == 403 and body["error"]["code"] == "csrf_failed"
    assert code_mails(smtp_sink.folder, VICTIM) == []

    # Three codes an hour per purchase, whichever browser asks.
    _status, html2 = await page(stack, second)
    for cookie, form_token in ((first, token), (second, csrf(html2)), (first, token)):
        status, body = await post_form(stack, cookie, "/access/receipts/code", [("csrf_token", form_token)])
        assert status == 200, body
    status, body = await post_form(stack, second, "/access/receipts/code", [("csrf_token", csrf(html2))])
    assert status == 429 and body["error"]["code"] == "rate_limited"
    newest = await mailed_code(smtp_sink.folder, VICTIM, 3)

    # A code past its 15 minutes is refused (the clock moved on in the gateway's own table).
    conn = await asyncpg.connect(stack.db.runtime_dsn("gateway"))
    try:
        await conn.execute("UPDATE gateway.portal_email_codes SET expires_at = now() - interval '1 second'")
    finally:
        await conn.close()
    status, body = await post_form(
        stack, first, "/access/receipts/verify", [("csrf_token", token), ("code", newest)]
    )
    assert status == 400 and body["error"]["code"] == "code_expired"
    # The HTML form answers with the page and the error next to the field.
    status, text = await post_form(
        stack, first, "/access/receipts/verify", [("csrf_token", token), ("code", newest)], html=True
    )
    assert status == 400 and 'data-code="code_expired"' in text and 'data-field="code"' in text
    _status, html = await page(stack, first)
    assert html.count('class="document"') == 1


async def test_the_link_in_the_customers_own_mail_proves_the_address(
    stack: ServiceStack, smtp_sink: SmtpSink
) -> None:
    merchant, own = await _two_purchases(stack)
    token, proof = await mail_link(smtp_sink.folder, own.token)
    assert own.access_url.endswith(token) and "proof=" not in own.access_url  # the merchant's copy has none

    before = _proofs(stack)["proven_by_mail_link"]
    cookie = await open_portal_with(stack, {"token": token, "proof": proof})
    assert _proofs(stack)["proven_by_mail_link"] == before + 1
    _status, html = await page(stack, cookie)
    assert "Your receipts with this seller" in html and 'id="email-proof"' not in html
    assert html.count('class="document"') == 2 and "10.00 EUR" in html and "20.00 EUR" in html
    assert code_mails(smtp_sink.folder, VICTIM) == []  # no code was needed

    # A forged, truncated or another token's proof opens the portal unproven.
    other = await paid_session(stack, merchant, customer_email="bob@example.com", amount="30.00")
    _other_token, other_proof = await mail_link(smtp_sink.folder, other.token)
    for forged in ("x" * 22, proof[:-1], other_proof, proof + "0" * 64):
        cookie = await open_portal_with(stack, {"token": token, "proof": forged})
        _status, html = await page(stack, cookie)
        assert html.count('class="document"') == 1 and "10.00 EUR" not in html, forged
