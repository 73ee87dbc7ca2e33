"""The dashboard's endpoint form offers every event type an endpoint can subscribe to: the session service's
EVENT_TYPES (the gateway keeps its own copy, since it may not import the session service)."""

from __future__ import annotations

from session_service.domain.merchant_events import EVENT_TYPES
from webhook_gateway.entrypoints import dashboard_views as views


def test_the_endpoint_form_offers_every_event_type() -> None:
    assert set(views.MERCHANT_EVENT_TYPES) == set(EVENT_TYPES)
    assert len(views.MERCHANT_EVENT_TYPES) == len(set(views.MERCHANT_EVENT_TYPES))
