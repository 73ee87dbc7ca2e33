"""The customer's checkout page: content per provider, escaping, security headers, unknown sessions."""

from __future__ import annotations

import re
import uuid

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2
from session_service.domain.deposit_addresses import dev_xpub_from_mnemonic
from support.stack import ServiceStack
from webhook_gateway.entrypoints.routes_checkout import page_context

TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
CHAIN = 31337
HOSTILE_NAME = '<script>alert("name")</script> & Sons'
HOSTILE_DESCRIPTION = '<img src=x onerror="alert(1)">Pro'


def _nonce_of(csp: str) -> str:
    match = re.search(r"script-src 'nonce-([A-Za-z0-9_-]+)'", csp)
    assert match, csp
    return match.group(1)


def _assert_page_security(headers: object, html: str) -> None:
    csp = headers["Content-Security-Policy"]  # type: ignore[index]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert headers["Referrer-Policy"] == "no-referrer"  # type: ignore[index]
    assert headers["X-Content-Type-Options"] == "nosniff"  # type: ignore[index]
    assert headers["Cache-Control"] == "no-store"  # type: ignore[index]
    assert headers["Content-Type"].startswith("text/html")  # type: ignore[index]
    nonce = _nonce_of(csp)
    # Every script and style on the page carries this response's nonce; nothing else could run.
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert all(f'nonce="{nonce}"' in tag for tag in scripts), scripts
    assert all(f'nonce="{nonce}"' in tag for tag in re.findall(r"<style\b[^>]*>", html))
    assert not re.search(r"<[^>]*\son[a-z]+=", html)  # no inline event handlers


async def _page(stack: ServiceStack, query: str) -> tuple[int, object, str]:
    assert stack.http is not None
    async with stack.http.get(f"{stack.base_url}/checkout{query}") as response:
        return response.status, response.headers, await response.text()


async def _create(stack: ServiceStack, headers: dict[str, str], **body: object) -> dict:
    status, created = await stack.request("POST", "/v1/sessions", json=body, headers=headers)
    assert status == 201, created
    return created


async def test_onecom_page_escapes_merchant_text_and_hides_private_fields(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant(name=HOSTILE_NAME, prefix="hostile")
    created = await _create(
        stack,
        merchant.headers,
        amount="99.99",
        currency="EUR",
        provider="onecom",
        customer_email="secret-buyer@example.com",
        description=HOSTILE_DESCRIPTION,
        metadata={"internal_note": "do-not-show"},
    )
    status, headers, html = await _page(stack, f"?session={created['id']}")
    assert status == 200
    _assert_page_security(headers, html)
    assert "&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt; &amp; Sons" in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;Pro" in html
    assert HOSTILE_NAME not in html and "<img" not in html
    assert '<span id="amount">99.99</span> <span id="currency">EUR</span>' in html
    assert 'data-status="created">Awaiting payment<' in html
    assert 'id="onecom-instructions"' in html and f'id="payment-reference">{created["id"]}<' in html
    assert "secret-buyer@example.com" not in html and "do-not-show" not in html
    assert "Test mode" in html


async def test_stripe_page_without_stripe_configured_says_card_is_unavailable(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    created = await _create(stack, merchant.headers, amount="10", provider="stripe")
    assert "provider_checkout_url" not in created and "provider_checkout_error" not in created
    status, headers, html = await _page(stack, f"?session={created['id']}")
    assert status == 200
    _assert_page_security(headers, html)
    assert 'id="stripe-unavailable"' in html and 'id="stripe-link"' not in html


async def _web3_merchant(stack: ServiceStack) -> dict[str, str]:
    merchant = await stack.create_merchant(name="Chain Shop", prefix="chain")
    await stack.session.UpdatePaymentSettings(
        session_pb2.UpdatePaymentSettingsRequest(
            settings=session_pb2.PaymentSettings(
                merchant_id=merchant.id,
                default_currency="EUR",
                onchain=session_pb2.OnchainSettings(
                    chain_id=CHAIN,
                    xpub=dev_xpub_from_mnemonic(),
                    min_confirmations=2,
                    tokens=[session_pb2.AcceptedToken(address=TOKEN, symbol="USDC", decimals=6)],
                ),
            )
        ),
        timeout=5,
    )
    return merchant.headers


async def test_web3_eth_page_shows_address_qr_and_exact_amount(stack: ServiceStack) -> None:
    headers = await _web3_merchant(stack)
    created = await _create(stack, headers, amount="0.05", currency="ETH", provider="web3")
    address = created["payment"]["deposit_address"]
    status, response_headers, html = await _page(stack, f"?session={created['id']}")
    assert status == 200
    _assert_page_security(response_headers, html)
    assert f'<code id="deposit-address">{address}</code>' in html
    assert '<strong id="exact-amount">0.05 ETH</strong>' in html
    assert '<span id="amount-minor">50000000000000000</span> wei' in html
    assert f'href="ethereum:{address}@{CHAIN}?value=50000000000000000"' in html
    assert re.search(r'<figure class="qr" id="qr"><svg [^>]*class="segno"', html)
    assert "after 2 confirmation(s)" in html


async def test_web3_token_page_uses_an_erc20_transfer_uri(stack: ServiceStack) -> None:
    headers = await _web3_merchant(stack)
    created = await _create(stack, headers, amount="12.5", currency="USDC", provider="web3")
    address = created["payment"]["deposit_address"]
    token = created["payment"]["token"]
    _, _, html = await _page(stack, f"?session={created['id']}")
    uri = f"ethereum:{token}@{CHAIN}/transfer?address={address}&amp;uint256=12500000"
    assert f'href="{uri}"' in html
    assert f'<code id="token-address">{token}</code>' in html
    assert '<span id="amount-minor">12500000</span> token base units' in html


async def test_paid_session_page_shows_paid_and_no_payment_instructions(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    created = await _create(stack, merchant.headers, amount="5.00", provider="onecom")
    await stack.session.ApplyPaymentEvent(
        session_pb2.ApplyPaymentEventRequest(
            session_id=created["id"],
            provider="onecom",
            provider_event_id="evt_page_paid",
            kind=session_pb2.EVENT_KIND_SUCCEEDED,
            amount=common_pb2.Money(amount_minor="500", currency="EUR", exponent=2),
            provider_reference="txn_page_paid",
        ),
        timeout=10,
    )
    _, _, html = await _page(stack, f"?session={created['id']}")
    assert 'data-status="paid">Paid<' in html
    assert re.search(r'<section class="pay" id="how-to-pay" data-show-in="created" hidden>', html)
    assert re.search(r'<section class="notice" data-show-in="paid">', html)


async def test_unknown_or_invalid_session_is_a_404_page(stack: ServiceStack) -> None:
    for query in (f"?session={uuid.uuid4()}", "?session=not-a-uuid", "", "?session=%3Cscript%3E"):
        status, headers, html = await _page(stack, query)
        assert status == 404, query
        assert "Checkout not found" in html and "<script" not in html
        assert headers["Content-Security-Policy"].endswith("frame-ancestors 'none'")  # type: ignore[index]
        assert headers["Referrer-Policy"] == "no-referrer"  # type: ignore[index]


def test_only_web_links_are_rendered_for_the_provider_page() -> None:
    session = session_pb2.Session(
        id=str(uuid.uuid4()),
        status=session_pb2.SESSION_STATUS_CREATED,
        provider="stripe",
        amount=common_pb2.Money(amount_minor="100", currency="EUR", exponent=2),
        provider_checkout_url="javascript:alert(1)",
    )
    assert page_context(session, "Shop", None, None)["stripe_url"] is None
    session.provider_checkout_url = "https://checkout.stripe.com/c/pay/cs_test_1"
    assert page_context(session, "Shop", None, "<evil>")["stripe_url"] == session.provider_checkout_url
    assert page_context(session, "Shop", None, "<evil>")["result"] is None
