"""Where a customer reaches the merchant (billing's output-only `contact_email`, read by the portal's contact
form and by the access mail's Reply-To): the support address, else the seller's email the invoices print."""

from __future__ import annotations

from billing_service.domain.invoices import Party
from billing_service.domain.profiles import BillingProfile, contact_email
from billing_service.entrypoints.proto_mapping import profile_to_proto


def _profile(support: str = "", seller: str = "") -> BillingProfile:
    return BillingProfile(merchant_id="m", seller=Party(email=seller), support_email=support)


def test_the_support_address_comes_first_then_the_sellers_email_then_none() -> None:
    assert contact_email(_profile("help@acme.test", "accounts@acme.test")) == "help@acme.test"
    assert contact_email(_profile(seller="accounts@acme.test")) == "accounts@acme.test"
    assert contact_email(_profile()) == ""


def test_the_profile_message_carries_it_beside_the_fields_it_comes_from() -> None:
    message = profile_to_proto(_profile(seller="accounts@acme.test"))
    assert (message.support_email, message.seller.email, message.contact_email) == (
        "",
        "accounts@acme.test",
        "accounts@acme.test",
    )
