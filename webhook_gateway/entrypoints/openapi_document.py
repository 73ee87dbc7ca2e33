"""The OpenAPI 3.1 document of every merchant and public HTTP route of the gateway (contract §6a), served at
`GET /openapi.json`.

The document is built from OPERATIONS below: one entry per (method, path) that the app registers. A test
(tests/integration/api_contract) compares OPERATIONS with `app.router` and fails on a route without an entry
or an entry without a route, and schemathesis checks the real gateway against it (no 5xx, every status, error
code and body as documented). Adding a route means adding one `Operation` here, with:

- `auth`: "merchant" (merchant secret key; adds 401 `unauthenticated`), "public", "portal" (the customer's
  access cookie) or "webhook" (a provider's signature);
- `request`/`ok`: schemas, usually `ref("Name")` of a schema in SCHEMAS (openapi_schemas.py; the merchant
  events under `webhooks` are openapi_webhooks.py);
- `errors`: {status: (codes...)}. Every refusal has the body `{"error": {"code", "message"}}` and the code
  is one of the listed ones (an enum in the document). 503 `unavailable` (a dependency is down) and 414
  `uri_too_long` (a request URL over http_errors.MAX_URL_CHARS) are added to every operation, 400
  `invalid_json` plus 413 `payload_too_large` to every one that takes a JSON body, and to a merchant operation
  400 `unknown_parameter` (a query parameter it does not list), `repeated_parameter` (one given twice) and, with
  a body, `unknown_field` (a field its request schema does not list): api_inputs reads both lists from this document and refuses anything else.
- `replayed`: the statuses a replay for a repeated Idempotency-Key answers, if its handler sends
  `Idempotent-Replayed`. Response headers are declared once in RESPONSE_HEADERS (components.headers) and
  referenced by the builder: X-Request-Id on every response, WWW-Authenticate on a merchant 401, Location on a
  redirect (tests/integration/gateway/test_openapi_headers.py checks real replies against them).

A route that is not part of the API (the dashboard's HTML pages) goes into UNDOCUMENTED_ROUTES, with why.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final, Literal

from webhook_gateway.entrypoints.dashboard_views import ROUTES as DASHBOARD_ROUTES
from webhook_gateway.entrypoints.openapi_schemas import SCHEMAS, SESSION_STATUS, STR, UUID, Schema, obj, ref
from webhook_gateway.entrypoints.openapi_webhooks import event_schemas, webhooks

Auth = Literal["merchant", "public", "portal", "webhook"]

OPENAPI_VERSION: Final[str] = "3.1.0"
API_VERSION: Final[str] = "1"

# Routes the gateway serves that are not part of the merchant/public API: operations traffic.
UNDOCUMENTED_ROUTES: Final[Mapping[tuple[str, str], str]] = {
    ("GET", "/metrics"): "Prometheus metrics belong on the metrics port (PAYGATE_METRICS_PORT), not the API",
    # The icon the portal and checkout pages link, and the one every browser asks any host for.
    ("GET", "/favicon.svg"): "the customer pages' icon (image/svg+xml), not the JSON API",
    ("GET", "/favicon.ico"): "the icon browsers ask every host for (the same SVG), not the JSON API",
    # The merchant dashboard (contract §10): HTML pages and form posts behind a session cookie, not JSON API.
    **{route: "the merchant dashboard: HTML for browsers, not the JSON API" for route in DASHBOARD_ROUTES},
}


def query(name: str, schema: Schema, description: str = "") -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def header(name: str, schema: Schema, description: str = "") -> Schema:
    return {"name": name, "in": "header", "required": False, "schema": schema, "description": description}


ID_PATH: Final[Schema] = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
LIMIT: Final[Schema] = query("limit", {"type": "integer", "minimum": 1, "maximum": 100}, "page size (20)")
# Malformed, or naming no item of that list for the key's merchant and mode (another merchant's item and the
# other mode's item included): 400 invalid_starting_after on every list route.
STARTING_AFTER: Final[Schema] = query("starting_after", STR, "id of the last item of the previous page")
IDEMPOTENCY_KEY: Final[Schema] = header(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255},
    "replays return the first reply, with Idempotent-Replayed: true",
)
# A refund's replay answers the refund as it stands now (with `Idempotent-Replayed: true`): its credit note and
# the session may have moved on since the first reply.
REFUND_IDEMPOTENCY_KEY: Final[Schema] = header(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255},
    "a replay with the same body answers the refund's current state, with Idempotent-Replayed: true",
)
# A webhook endpoint's replay answers the endpoint as it stands now (routes_merchant_events.create_endpoint).
ENDPOINT_IDEMPOTENCY_KEY: Final[Schema] = header(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255},
    "a replay with the same body answers 201 with the endpoint's current state (deleted included), never its"
    " secret, with Idempotent-Replayed: true",
)
# Key routes read an empty Idempotency-Key as none.
OPTIONAL_IDEMPOTENCY_KEY: Final[Schema] = header(
    "Idempotency-Key",
    {"type": "string", "maxLength": 255},
    "a replay returns the first reply's key, never its secret again, with Idempotent-Replayed: true; empty: none",
)
DATE: Final[Schema] = {"type": "string", "description": "ISO 8601 date or date-time (UTC if no offset)"}

# Codes the services may answer for a session creation, beside the gateway's own field checks.
_SESSION_CREATE_400: Final[tuple[str, ...]] = (
    "missing_amount",
    "invalid_amount",
    "amount_not_positive",
    "amount_too_large",
    "amount_too_precise",
    "amount_not_chargeable",
    "invalid_currency",
    "unknown_currency",
    "missing_currency",
    "currency_not_supported",
    "invalid_provider",
    "invalid_mode",
    "mode_mismatch",
    "invalid_customer_email",
    "invalid_metadata",
    "invalid_expires_in",
    "expires_in_out_of_range",
    "invalid_description",
    "invalid_scopes",
    # The buyer (contract §9): its shape (the gateway) and its values (the session service).
    "invalid_customer",
    "invalid_customer_name",
    "invalid_customer_country",
    "invalid_customer_address",
    "invalid_customer_vat_id",
    "invalid_idempotency_key",
    "onchain_not_configured",
    "test_chain_in_live_mode",
)
_SESSION_CREATE_409: Final[tuple[str, ...]] = (
    "idempotency_conflict",
    "idempotency_in_progress",
    "billing_profile_incomplete",
    "onchain_not_configured",
    "test_chain_in_live_mode",
    "currency_not_supported",
)
_DATE_RANGE_400: Final[tuple[str, ...]] = ("invalid_from", "invalid_to", "invalid_date_range")
_STANDARD_WEBHOOK_HEADERS: Final[tuple[str, ...]] = ("webhook-id", "webhook-timestamp", "webhook-signature")
_PORTAL_401: Final[tuple[str, ...]] = ("no_portal_session", "token_revoked", "token_invalid", "token_expired")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    tag: str
    auth: Auth = "merchant"
    parameters: tuple[Schema, ...] = ()
    request: Schema | None = None
    request_required: bool = True
    ok: Mapping[int, Schema] = field(default_factory=lambda: {200: {}})
    ok_media: str = "application/json"
    errors: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    # Statuses whose body is not JSON (HTML pages for browsers): status -> media type.
    error_media: Mapping[int, str] = field(default_factory=dict)
    # The operation's longer text (OpenAPI `description`), when the summary cannot say enough.
    description: str = ""
    # Statuses a replay for a repeated Idempotency-Key may answer: they document `Idempotent-Replayed`. Only
    # the handlers that set the header (routes_sessions, routes_refunds, routes_merchant_events, routes_keys,
    # routes_merchant_keys) list any.
    replayed: tuple[int, ...] = ()


def _merge(*maps: Mapping[int, Iterable[str]]) -> dict[int, list[str]]:
    merged: dict[int, list[str]] = {}
    for mapping in maps:
        for status, codes in mapping.items():
            bucket = merged.setdefault(status, [])
            bucket.extend(code for code in codes if code not in bucket)
    return merged


OPERATIONS: Final[tuple[Operation, ...]] = (
    # --- public ---------------------------------------------------------------------------------------
    Operation("GET", "/healthz", "Liveness", "operations", "public", ok={200: ref("Health")}),
    Operation(
        "GET",
        "/readyz",
        "Readiness: the gateway's own database is reachable",
        "operations",
        "public",
        ok={200: ref("Health")},
        errors={503: ("not_ready",)},
    ),
    Operation("GET", "/openapi.json", "This document", "operations", "public", ok={200: {"type": "object"}}),
    Operation(
        "GET",
        "/session/{id}/status",
        "Public status of a session: no amounts, emails or metadata",
        "public",
        "public",
        (ID_PATH,),
        ok={200: ref("SessionStatus")},
        errors={404: ("not_found",)},
    ),
    Operation(
        "GET",
        "/.well-known/jwks.json",
        "Public keys that access tokens are signed with",
        "public",
        "public",
        ok={200: ref("Jwks")},
        ok_media="application/jwk-set+json",
    ),
    Operation(
        "GET",
        "/checkout",
        "The HTML checkout page of a session",
        "public",
        "public",
        (query("session", STR, "the session id"), query("result", STR)),
        ok={200: {"type": "string"}},
        ok_media="text/html",
        errors={404: ("not_found",), 503: ()},
        error_media={404: "text/html", 503: "text/html"},
    ),
    # Contract §9: a live session's checkout page asks for the buyer's name and country before the pay buttons.
    # A browser form (same-origin, double-submit CSRF cookie), answered like the portal's: a page or a 303
    # for a browser, JSON for an API client.
    Operation(
        "POST",
        "/checkout/customer",
        "Save the buyer's name and country from the checkout page's form (form post with csrf_token)",
        "public",
        "portal",
        request=obj({"session": STR, "csrf_token": STR, "name": STR, "country": STR}),
        request_required=False,
        ok={200: obj({"id": STR, "customer": {"type": ["object", "null"]}}), 303: {}},
        errors={
            400: (
                "invalid_form",
                "invalid_customer",
                "missing_customer",
                "missing_customer_name",
                "invalid_customer_name",
                "missing_customer_country",
                "invalid_customer_country",
            ),
            403: ("csrf_failed",),
            404: ("not_found",),
            409: ("session_not_open",),
        },
    ),
    # Contract §6a and §11: a card session (created without `provider`) may be paid on either card rail; its
    # checkout page offers each rail configured for its mode, and this form creates that provider's payment
    # once per session and provider, then sends the customer to the provider's page.
    Operation(
        "POST",
        "/checkout/pay",
        "Pay a card session with the chosen card rail (checkout page form with csrf_token): 303 to the "
        "provider's page",
        "public",
        "portal",
        request=obj(
            {"session": STR, "provider": {"type": "string", "enum": ["stripe", "onecom"]}, "csrf_token": STR}
        ),
        request_required=False,
        ok={303: {}, 200: {"type": "string"}},
        ok_media="text/html",
        errors={
            400: ("invalid_form", "invalid_provider"),
            403: ("csrf_failed",),
            404: ("not_found",),
            409: (
                "session_pending",
                "session_paid",
                "session_failed",
                "session_expired",
                "session_refunded",
                "session_not_open",
                "not_a_card_session",
                "provider_bound",
                "amount_not_chargeable",
                "customer_details_required",
                "provider_not_configured",
                "provider_payment_closed",
                "provider_rejected",
                "provider_mode_mismatch",
                "provider_window_closed",
            ),
            503: ("unavailable", "provider_unavailable"),
        },
    ),
    # --- customer portal (HTML for browsers, JSON refusals for API clients) ----------------------------
    Operation(
        "GET",
        "/access",
        "The customer access portal; ?token=<jwt> opens a portal session (303 to /access)",
        "portal",
        "portal",
        (
            query("token", STR, "access token from the access link"),
            query("proof", STR, "the customer mail's proof (its copy of the link); opens the portal proven"),
        ),
        ok={200: {"type": "string"}, 303: {}},
        ok_media="text/html",
        errors={
            401: ("token_invalid", "token_expired", "token_revoked", "no_portal_session"),
        },
    ),
    Operation(
        "POST",
        "/access/reveal",
        "Reveal the customer's API key once (form post with csrf_token)",
        "portal",
        "portal",
        request=obj({"csrf_token": STR}),
        request_required=False,
        ok={200: ref("RevealedKey")},
        errors={
            400: ("invalid_form",),
            401: ("no_portal_session", "token_revoked"),
            403: ("csrf_failed",),
            404: ("not_found",),
            409: ("already_revealed", "key_revoked", "key_expired", "access_token_revoked"),
        },
    ),
    Operation(
        "GET",
        "/access/receipt.pdf",
        "The customer's receipt",
        "portal",
        "portal",
        ok={200: {"type": "string", "format": "binary"}},
        ok_media="application/pdf",
        errors={
            401: ("no_portal_session", "token_revoked"),
            404: ("invoice_not_ready",),
        },
    ),
    # --- provider webhooks (verified by signature before anything is parsed) ---------------------------
    *(
        Operation(
            "POST",
            f"/webhooks/{provider}",
            f"{name} webhook",
            "webhooks",
            "webhook",
            tuple(header(name, STR) for name in signature_headers),
            request=ref(body),
            ok={200: ref("WebhookReceived")},
            errors={
                400: (
                    "missing_signature",
                    "invalid_signature",
                    "timestamp_out_of_tolerance",
                    "missing_event_id",
                    "not_an_object",
                    "invalid_json",
                ),
                503: ("webhook_not_configured",),
            },
        )
        for provider, name, body, signature_headers in (
            ("stripe", "Stripe", "StripeEvent", ("Stripe-Signature",)),
            ("onecom", "One.com (Standard Webhooks)", "OneComEvent", _STANDARD_WEBHOOK_HEADERS),
            ("web3", "Chain transaction hint (Standard Webhooks)", "Web3Hint", _STANDARD_WEBHOOK_HEADERS),
        )
    ),
    # --- merchant: sessions -----------------------------------------------------------------------------
    *(
        Operation(
            "POST",
            path,
            summary,
            "sessions",
            parameters=(IDEMPOTENCY_KEY,),
            request=ref("CreateSession"),
            ok={201: ref("Session")},
            errors={400: _SESSION_CREATE_400, 409: _SESSION_CREATE_409},
            description="A request's own faults (400) come before the account's state: a live key gets 409"
            " billing_profile_incomplete only for an otherwise sound request, and neither refusal is stored under"
            " the Idempotency-Key. A card session (no `provider`) must be chargeable by a card rail this gateway"
            " has for the key's mode: with Stripe the only one, an `amount` Stripe cannot charge (KWD 1.234) is"
            " 400 amount_not_chargeable as for a `stripe` session; else its page offers only the rails that can.",
            # routes_sessions stores the first reply once it claimed the key, a refusal too, and replays it with
            # the header (billing_profile_incomplete, and a 400 met on the way to it, are never stored).
            replayed=(201, 400, 409),
        )
        for path, summary in (
            ("/v1/sessions", "Create a checkout session"),
            ("/create_session", "Create a checkout session (the seed's alias of POST /v1/sessions)"),
        )
    ),
    Operation(
        "GET",
        "/v1/sessions",
        "List sessions of the key's mode, newest first",
        "sessions",
        parameters=(
            query("status", SESSION_STATUS),
            LIMIT,
            STARTING_AFTER,
            query("provider", {"type": "string", "enum": ["stripe", "onecom", "web3", "card"]}),
            query(
                "customer_email",
                {
                    "type": "string",
                    "maxLength": 254,
                    "pattern": "^[^\\x00-\\x1f\\x7f]*@[^\\x00-\\x1f\\x7f]*$",
                },
                "exact match, case-insensitive",
            ),
            query("created_from", DATE, "created at or after this instant"),
            query("created_to", DATE, "created before this instant (exclusive)"),
            query(
                "amount_min_minor",
                {"type": "string", "pattern": "^[0-9]{1,78}$"},
                "at least this amount, in minor units of the session's currency (pair it with currency)",
            ),
            query(
                "amount_max_minor",
                {"type": "string", "pattern": "^[0-9]{1,78}$"},
                "at most this amount, in minor units of the session's currency (pair it with currency)",
            ),
            query(
                "currency",
                {"type": "string", "pattern": "^[A-Za-z0-9]{1,11}$"},
                "ISO 4217 code or token symbol, any case",
            ),
        ),
        ok={200: ref("SessionList")},
        errors={
            400: (
                "invalid_status",
                "invalid_limit",
                "invalid_starting_after",
                "invalid_provider",
                "invalid_customer_email",
                "invalid_created_from",
                "invalid_created_to",
                "invalid_amount_min_minor",
                "invalid_amount_max_minor",
                "invalid_currency",
            )
        },
    ),
    Operation(
        "GET",
        "/v1/sessions/{id}",
        "A session with its history and access link",
        "sessions",
        parameters=(ID_PATH,),
        ok={200: ref("SessionDetail")},
        errors={404: ("not_found",)},
    ),
    Operation(
        "POST",
        "/v1/sessions/{id}/expire",
        "Expire an open session",
        "sessions",
        parameters=(ID_PATH,),
        ok={200: ref("SessionDetail")},
        errors={
            404: ("not_found",),
            # The provider's page or payment is closed first; a provider that refused answers 409 with its code.
            409: (
                "session_not_expirable",
                "provider_checkout_conflict",
                "provider_session_complete",
                "provider_rejected",
                "provider_mode_mismatch",
                "provider_window_closed",
                # An open card payment of a mode whose One.com API key is no longer configured.
                "provider_not_configured",
            ),
            503: ("provider_unavailable", "provider_rejected"),
        },
    ),
    Operation(
        "POST",
        "/v1/sessions/{id}/refund",
        "Refund a paid session, fully or partly (through the provider's API when configured)",
        "sessions",
        parameters=(ID_PATH, REFUND_IDEMPOTENCY_KEY),
        request=ref("RefundRequest"),
        ok={202: ref("RefundAccepted")},
        replayed=(202,),
        errors={
            400: (
                "invalid_json",
                "invalid_amount",
                "amount_not_positive",
                "amount_too_precise",
                "amount_too_large",
                "invalid_reason",
                "invalid_provider_refund_id",
                "invalid_idempotency_key",
                "missing_tx_hash",
                "invalid_tx_hash",
                "invalid_from_address",
                "refund_tx_not_found",
                "refund_tx_failed",
                "refund_tx_wrong_chain",
                "refund_tx_no_matching_transfer",
            ),
            404: ("not_found",),
            409: (
                "session_not_paid",
                "session_refunded",
                "dispute_open",
                "refund_in_progress",
                "refund_already_recorded",
                "use_provider",
                "idempotency_conflict",
                "payment_unknown",
                "refund_tx_unconfirmed",
                "refund_tx_already_used",
                "refund_payer_unknown",
                "chain_not_configured",
            ),
            503: ("provider_unavailable", "unavailable"),
        },
    ),
    Operation(
        "POST",
        "/v1/sessions/{id}/provider_checkout",
        "Create the provider's checkout page (Stripe) of a session that has none yet",
        "sessions",
        parameters=(ID_PATH,),
        ok={200: ref("SessionDetail")},
        errors={
            404: ("not_found",),
            # The provider refused (409, with its code) or could not be reached (503): the session is unchanged.
            409: (
                "not_a_provider_session",
                "provider_not_configured",
                "session_not_open",
                "provider_rejected",
                "provider_mode_mismatch",
                "provider_session_complete",
                "provider_window_closed",
            ),
            503: ("provider_unavailable", "provider_rejected"),
        },
    ),
    Operation(
        "GET",
        "/v1/sessions/{id}/deposits",
        "On-chain deposits of a web3 session",
        "sessions",
        parameters=(ID_PATH,),
        ok={200: ref("Deposits")},
        errors={404: ("not_found",)},
    ),
    # --- merchant: audit (contract §9) -----------------------------------------------------------------------
    Operation(
        "GET",
        "/v1/audit",
        "The merchant's audit entries of every service, newest first, with their hash-chain links; entries "
        "about an object with a mode only for a key of that mode",
        "audit",
        parameters=(LIMIT, STARTING_AFTER),
        ok={200: ref("AuditList")},
        errors={400: ("invalid_limit", "invalid_starting_after")},
    ),
    # --- merchant: quarantine and provider events --------------------------------------------------------
    Operation(
        "GET",
        "/v1/quarantine",
        "Money events that need a decision",
        "quarantine",
        parameters=(
            query("status", {"type": "string", "enum": ["open", "refunded", "dismissed", "accepted"]}),
            query("session_id", UUID, "only this session's entries"),
            LIMIT,
            STARTING_AFTER,
        ),
        ok={200: ref("QuarantineList")},
        errors={400: ("invalid_status", "invalid_session_id", "invalid_limit", "invalid_starting_after")},
    ),
    Operation(
        "POST",
        "/v1/quarantine/{id}/resolve",
        "Record the merchant's decision on a quarantine entry",
        "quarantine",
        parameters=(ID_PATH,),
        request=ref("ResolveQuarantine"),
        ok={200: ref("QuarantineEntry")},
        errors={
            # missing_provider_reference: an accepted late payment whose event carried no payment reference.
            400: ("invalid_decision", "invalid_note", "missing_provider_reference"),
            404: ("not_found",),
            409: (
                "quarantine_already_resolved",
                "not_a_late_payment",
                "late_payment_amount_mismatch",
                "session_not_expired",
                "session_refunded",
            ),
        },
    ),
    Operation(
        "GET",
        "/v1/events",
        "The provider webhook inbox",
        "events",
        parameters=(query("status", STR), LIMIT, STARTING_AFTER),
        ok={200: ref("InboxEventList")},
        errors={400: ("invalid_status", "invalid_limit", "invalid_starting_after")},
    ),
    Operation(
        "POST",
        "/v1/events/{id}/replay",
        "Apply an unfinished inbox event again",
        "events",
        parameters=(ID_PATH,),
        ok={200: ref("InboxEvent")},
        errors={404: ("not_found",), 409: ("event_already_final", "event_in_progress")},
    ),
    # --- merchant: invoices and revenue ------------------------------------------------------------------
    Operation(
        "GET",
        "/v1/invoices",
        "List invoices and credit notes",
        "invoices",
        parameters=(
            query("status", {"type": "string", "enum": ["issued", "void"]}),
            query("kind", {"type": "string", "enum": ["invoice", "credit_note"]}),
            query("from", DATE),
            query("to", DATE),
            LIMIT,
            STARTING_AFTER,
        ),
        ok={200: ref("InvoiceList")},
        errors={
            400: (
                "invalid_status",
                "invalid_kind",
                "invalid_limit",
                "invalid_starting_after",
                *_DATE_RANGE_400,
            )
        },
    ),
    Operation(
        "GET",
        "/v1/invoices/{id}",
        "An invoice or credit note",
        "invoices",
        parameters=(ID_PATH,),
        ok={200: ref("Invoice")},
        errors={404: ("not_found",)},
    ),
    Operation(
        "GET",
        "/v1/invoices/{id}/pdf",
        "The invoice as PDF",
        "invoices",
        parameters=(ID_PATH,),
        ok={200: {"type": "string", "format": "binary"}},
        ok_media="application/pdf",
        errors={404: ("not_found",)},
    ),
    Operation(
        "GET",
        "/v1/invoices/{id}/html",
        "The invoice as an HTML page",
        "invoices",
        parameters=(ID_PATH,),
        ok={200: {"type": "string"}},
        ok_media="text/html",
        errors={404: ("not_found",)},
    ),
    Operation(
        "POST",
        "/v1/invoices/{id}/void",
        "Void an invoice by issuing a credit note",
        "invoices",
        parameters=(ID_PATH,),
        request=ref("VoidInvoice"),
        request_required=False,
        ok={200: ref("VoidResult")},
        errors={
            400: ("invalid_reason",),
            404: ("not_found",),
            409: ("already_void", "not_an_invoice", "invoice_partially_credited"),
        },
    ),
    Operation(
        "GET",
        "/v1/revenue",
        "Revenue per currency and period; `to` defaults to now, `from` to 30 days before `to`",
        "invoices",
        parameters=(
            query("from", DATE),
            query("to", DATE),
            query("interval", {"type": "string", "enum": ["day", "week", "month"]}),
        ),
        ok={200: ref("Revenue")},
        errors={400: (*_DATE_RANGE_400, "invalid_interval")},
    ),
    Operation(
        "GET",
        "/v1/billing_profile",
        "The seller details printed on invoices",
        "invoices",
        ok={200: ref("BillingProfile")},
    ),
    Operation(
        "PUT",
        "/v1/billing_profile",
        "Change the seller details (fields left out are kept)",
        "invoices",
        request=ref("BillingProfileUpdate"),
        ok={200: ref("BillingProfile")},
        errors={
            400: (
                "invalid_seller",
                "invalid_seller_name",
                "invalid_seller_email",
                "invalid_seller_tax_id",
                "invalid_seller_address",
                "invalid_seller_country",
                "invalid_invoice_prefix",
                "invalid_tax_rate",
                "invalid_reset_numbering_yearly",
                "invalid_support_email",
                "invalid_support_url",
                "invalid_name",
                "invalid_country",
            )
        },
    ),
    # --- merchant: customer keys ---------------------------------------------------------------------------
    Operation(
        "GET",
        "/v1/api_keys",
        "Customer keys issued for this merchant (never the secret)",
        "api_keys",
        parameters=(LIMIT, STARTING_AFTER),
        ok={200: ref("ApiKeyList")},
        errors={400: ("invalid_limit", "invalid_starting_after")},
    ),
    Operation(
        "POST",
        "/v1/api_keys/verify",
        "Check a customer key",
        "api_keys",
        request=ref("VerifyKey"),
        ok={200: ref("VerifyResult")},
        errors={400: ("missing_key", "invalid_key", "invalid_ip")},
    ),
    Operation(
        "POST",
        "/v1/api_keys/{id}/roll",
        "Replace a customer key; the old one works for grace_period seconds",
        "api_keys",
        parameters=(ID_PATH, OPTIONAL_IDEMPOTENCY_KEY),
        request=ref("RollApiKey"),
        request_required=False,
        ok={200: ref("RolledApiKey")},
        replayed=(200,),
        errors={
            400: ("invalid_grace_period", "invalid_idempotency_key"),
            404: ("not_found",),
            409: ("key_revoked", "key_expired", "already_rolled", "key_suspended"),
        },
    ),
    Operation(
        "DELETE",
        "/v1/api_keys/{id}",
        "Revoke a customer key",
        "api_keys",
        parameters=(ID_PATH,),
        ok={200: ref("ApiKey")},
        errors={404: ("not_found",)},
    ),
    # --- merchant: the merchant's own secret keys --------------------------------------------------------
    Operation(
        "GET",
        "/v1/merchant_keys",
        "The calling mode's merchant secret keys (never a secret)",
        "merchant_keys",
        parameters=(
            query("limit", {"type": "integer", "minimum": 1, "maximum": 100}, "page size (100)"),
            STARTING_AFTER,
        ),
        ok={200: ref("MerchantKeyList")},
        errors={400: ("invalid_limit", "invalid_starting_after")},
    ),
    Operation(
        "POST",
        "/v1/merchant_keys",
        "Create a merchant secret key of the calling key's mode; its secret is shown once",
        "merchant_keys",
        parameters=(OPTIONAL_IDEMPOTENCY_KEY,),
        request=ref("CreateMerchantKey"),
        request_required=False,
        ok={201: ref("CreatedMerchantKey")},
        replayed=(201,),
        errors={
            400: ("invalid_mode", "mode_mismatch", "invalid_idempotency_key"),
            409: ("idempotency_conflict",),
        },
    ),
    Operation(
        "POST",
        "/v1/merchant_keys/{id}/roll",
        "Replace a merchant secret key; the old one works for grace_period seconds (default 0)",
        "merchant_keys",
        parameters=(ID_PATH, OPTIONAL_IDEMPOTENCY_KEY),
        request=ref("RollMerchantKey"),
        request_required=False,
        ok={200: ref("RolledMerchantKey")},
        replayed=(200,),
        errors={
            400: ("invalid_grace_period", "invalid_idempotency_key"),
            404: ("not_found",),
            409: ("key_revoked", "key_expired", "idempotency_conflict"),
        },
    ),
    Operation(
        "DELETE",
        "/v1/merchant_keys/{id}",
        "Revoke a merchant secret key at once (not the mode's last active key)",
        "merchant_keys",
        parameters=(ID_PATH,),
        ok={200: ref("MerchantKey")},
        errors={404: ("not_found",), 409: ("last_key",)},
    ),
    # --- merchant: access links ---------------------------------------------------------------------------
    Operation(
        "DELETE",
        "/v1/sessions/{id}/access",
        "Revoke every access link of the session; access_url is null until a reissue",
        "sessions",
        parameters=(ID_PATH,),
        ok={200: ref("SessionAccessRevoked")},
        errors={404: ("not_found",), 409: ("session_not_fulfilled",)},
    ),
    Operation(
        "POST",
        "/v1/sessions/{id}/access",
        "Revoke the session's access links and issue a fresh one (returned once, in access_url)",
        "sessions",
        parameters=(ID_PATH,),
        ok={201: ref("SessionDetail")},
        errors={404: ("not_found",), 409: ("session_not_paid", "session_not_fulfilled")},
    ),
    # --- merchant: merchant events (outbound webhooks, contract §7) -------------------------------------
    Operation(
        "GET",
        "/v1/webhook_endpoints",
        "Webhook endpoints of the key's mode",
        "merchant_events",
        parameters=(LIMIT, STARTING_AFTER),
        ok={200: ref("WebhookEndpointList")},
        errors={400: ("invalid_limit", "invalid_starting_after")},
    ),
    Operation(
        "POST",
        "/v1/webhook_endpoints",
        "Register a webhook endpoint; the reply carries its secret, once (not on an idempotent replay)",
        "merchant_events",
        parameters=(ENDPOINT_IDEMPOTENCY_KEY,),
        request=ref("CreateWebhookEndpoint"),
        ok={201: ref("WebhookEndpoint")},
        replayed=(201,),
        description="The signing secret (`secret`, whsec_...) is in this reply only; roll it if it is lost. "
        "With an Idempotency-Key, the same key and body answer 201 with `Idempotent-Replayed: true` and the "
        "endpoint this key created, as it stands now (like a refund's replay), and never the secret again. "
        'After a DELETE that is the deleted endpoint (`"status": "deleted"`, `"deleted": true`, as the DELETE '
        "reply said): the key stays used and makes no new endpoint; send a new key to register another. The "
        "same key with another body is 409 idempotency_conflict.",
        errors={
            400: (
                "invalid_url",
                "invalid_events",
                "invalid_description",
                "unknown_field",
                "invalid_idempotency_key",
            ),
            409: ("idempotency_conflict", "idempotency_in_progress"),
        },
    ),
    Operation(
        "GET",
        "/v1/webhook_endpoints/{id}",
        "A webhook endpoint",
        "merchant_events",
        parameters=(ID_PATH,),
        ok={200: ref("WebhookEndpoint")},
        errors={404: ("not_found",)},
    ),
    Operation(
        "PATCH",
        "/v1/webhook_endpoints/{id}",
        "Change a webhook endpoint's url, events, description or status",
        "merchant_events",
        parameters=(ID_PATH,),
        request=ref("UpdateWebhookEndpoint"),
        ok={200: ref("WebhookEndpoint")},
        errors={
            400: ("invalid_url", "invalid_events", "invalid_description", "invalid_status", "unknown_field"),
            404: ("not_found",),
        },
    ),
    Operation(
        "DELETE",
        "/v1/webhook_endpoints/{id}",
        "Delete a webhook endpoint (its pending deliveries are cancelled; the log stays)",
        "merchant_events",
        parameters=(ID_PATH,),
        ok={200: ref("WebhookEndpoint")},
        errors={404: ("not_found",)},
    ),
    Operation(
        "POST",
        "/v1/webhook_endpoints/{id}/roll_secret",
        "A new signing secret; the old one keeps signing beside it for expires_in seconds (default 24 h; up to"
        " 5 retired secrets sign until their own ends; 0: every old secret stops now)",
        "merchant_events",
        parameters=(ID_PATH,),
        request=ref("RollWebhookSecret"),
        request_required=False,
        ok={200: ref("WebhookEndpoint")},
        errors={400: ("invalid_expires_in", "unknown_field"), 404: ("not_found",)},
    ),
    Operation(
        "GET",
        "/v1/webhook_deliveries",
        "Delivery attempts, newest first, by endpoint and event",
        "merchant_events",
        parameters=(query("endpoint", STR), query("event", STR), LIMIT, STARTING_AFTER),
        ok={200: ref("WebhookDeliveryList")},
        errors={400: ("invalid_limit", "invalid_starting_after"), 404: ("not_found",)},
    ),
    Operation(
        "GET",
        "/v1/merchant_events",
        "Merchant events of the key's mode, newest first",
        "merchant_events",
        parameters=(query("type", STR), LIMIT, STARTING_AFTER),
        ok={200: ref("MerchantEventList")},
        errors={400: ("invalid_type", "invalid_limit", "invalid_starting_after")},
    ),
    Operation(
        "POST",
        "/v1/merchant_events/{id}/redeliver",
        "Send an event to an endpoint again",
        "merchant_events",
        parameters=(ID_PATH,),
        request=ref("Redeliver"),
        ok={202: ref("RedeliveryQueued")},
        errors={
            400: ("invalid_endpoint", "missing_endpoint", "unknown_field"),
            404: ("not_found",),
            409: ("endpoint_disabled",),
        },
    ),
    # --- merchant: chain ------------------------------------------------------------------------------------
    Operation(
        "GET",
        "/v1/chain/status",
        "The chain of the key's mode as the watcher sees it, and the caller's failing deposit addresses",
        "sessions",
        ok={200: ref("ChainStatus")},
    ),
    # --- customer portal: the customer's documents, own key and support (contract §12) ---------------------
    Operation(
        "GET",
        "/access/documents/{id}.pdf",
        "A receipt or credit note of the customer's sessions with this merchant",
        "portal",
        "portal",
        (ID_PATH,),
        ok={200: {"type": "string", "format": "binary"}},
        ok_media="application/pdf",
        errors={401: _PORTAL_401, 404: ("not_found",)},
    ),
    *(
        Operation(
            "POST",
            path,
            summary,
            "portal",
            "portal",
            request=obj({"csrf_token": STR, **fields}),
            request_required=False,
            ok={200: {"type": "object"}},
            errors={
                400: (
                    "invalid_form",
                    "invalid_scopes",
                    "scope_not_granted",
                    "invalid_ip_allowlist",
                    "invalid_expires_at",
                    "nothing_to_change",
                    "missing_current_key",
                    "current_key_mismatch",
                    "invalid_grace_period",
                    "missing_confirm",
                    "invalid_message",
                    "message_too_long",
                    "invalid_reply_to",
                    "invalid_code",
                    "code_expired",
                ),
                401: _PORTAL_401,
                403: ("csrf_failed",),
                404: ("not_found",),
                409: (
                    "key_revoked",
                    "key_expired",
                    "key_suspended",
                    "contact_unavailable",
                    "email_proof_unavailable",
                ),
                429: ("rate_limited", "too_many_attempts"),
                503: ("mail_unavailable",),
            },
        )
        for path, summary, fields in (
            (
                "/access/key/settings",
                "Narrow the customer key (scopes, IP allow-list, earlier expiry)",
                {
                    "scopes": {"type": "string", "description": "one per line or comma separated"},
                    "scopes_form": {"const": "1"},
                    "ip_allowlist": {"type": "string", "description": "IPs or CIDRs, one per line"},
                    "expires_at": {"type": "string", "description": "datetime-local or ISO 8601, UTC"},
                },
            ),
            (
                "/access/key/roll",
                "Roll the customer key (needs the current secret in the form)",
                {"current_key": STR, "grace_period": {"type": "string", "pattern": "^[0-9]{0,6}$"}},
            ),
            ("/access/key/revoke", "Revoke the customer key", {"confirm": {"const": "yes"}}),
            ("/access/support", "Send the merchant a support message", {"message": STR, "reply_to": STR}),
            (
                "/access/receipts/code",
                "Mail the purchase's email address a code that shows every receipt of the customer",
                {},
            ),
            (
                "/access/receipts/verify",
                "Prove the purchase's email address with the mailed code (this browser's portal only)",
                {"code": STR},
            ),
        )
    ),
)


# --- response headers --------------------------------------------------------------------------------------

# What the gateway really sends on the documented routes, and no more: X-Request-Id on every reply
# (observability.observe_middleware, refusals included), WWW-Authenticate on a merchant 401 (merchant_auth),
# Allow on a 405 (http_errors.error_middleware), Idempotent-Replayed on a replayed idempotent POST and Location on
# a redirect. Nothing here sends Retry-After (only the dashboard's sign-in does, outside this document), and
# lists page in the body (`has_more`, `starting_after`), not in headers.
RESPONSE_HEADERS: Final[dict[str, Schema]] = {
    "X-Request-Id": {
        "description": "on every reply, refusals included: the caller's own X-Request-Id (its first 64 "
        "characters, if printable ASCII) or 32 random hex digits; the gateway's log lines carry it: quote it "
        "to support",
        "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": 64},
    },
    "Idempotent-Replayed": {
        "description": "only on a reply to a repeated Idempotency-Key (same key, same body): it answers the "
        "first request, no new object was made",
        "required": False,
        "schema": {"type": "string", "enum": ["true"]},
    },
    "WWW-Authenticate": {
        "description": "the scheme a merchant secret key is sent with (or X-API-Key)",
        "required": True,
        "schema": {"type": "string", "enum": ["Bearer"]},
    },
    "Allow": {
        "description": "the methods the path does serve, comma separated",
        "required": True,
        "schema": {"type": "string", "pattern": "^[A-Z]+(,[A-Z]+)*$"},
    },
    "Location": {"description": "where the redirect goes", "required": True, "schema": STR},
}


def header_ref(name: str) -> Schema:
    return {"$ref": f"#/components/headers/{name}"}


def _response_headers(operation: Operation, status: int) -> dict[str, Schema]:
    names = ["X-Request-Id"]
    if 300 <= status < 400:
        names.append("Location")
    if status == 401 and operation.auth == "merchant":
        # The portal's 401s (its cookie) send no WWW-Authenticate: only merchant_auth does.
        names.append("WWW-Authenticate")
    if status in operation.replayed:
        names.append("Idempotent-Replayed")
    return {name: header_ref(name) for name in names}


def _method_not_allowed() -> Schema:
    """A method a path does not serve has no operation to hang its 405 on: a reusable response instead."""
    return {
        "description": "the path exists, but not with this method; error; codes: method_not_allowed",
        "headers": {name: header_ref(name) for name in ("X-Request-Id", "Allow")},
        "content": {"application/json": {"schema": error_schema(["method_not_allowed"])}},
    }


def _servers(server_url: str) -> list[Schema]:
    if server_url == "/":
        # No public URL to name: relative to wherever the document was fetched from.
        return [{"url": "/", "description": "the host that served this document"}]
    return [{"url": server_url, "description": "this gateway (PAYGATE_PUBLIC_URL)"}]


# --- building the document ---------------------------------------------------------------------------------


def error_schema(codes: Iterable[str]) -> Schema:
    listed = sorted(set(codes))
    code: Schema = {"type": "string", "enum": listed} if listed else {"type": "string"}
    return {"allOf": [ref("Error"), obj({"error": obj({"code": code}, ["code"])})]}


def _errors_of(operation: Operation) -> dict[int, list[str]]:
    implied: dict[int, tuple[str, ...]] = {414: ("uri_too_long",), 503: ("unavailable",)}
    bad_input: list[str] = []
    if operation.auth == "merchant":
        implied[401] = ("unauthenticated",)
        # A query parameter the operation does not list, or one given twice (api_inputs; the merchant API only).
        bad_input.extend(("unknown_parameter", "repeated_parameter"))
    if operation.request is not None:
        bad_input.append("invalid_json")
        implied[413] = ("payload_too_large",)
        if operation.auth == "merchant":
            # A body field its request schema does not list.
            bad_input.append("unknown_field")
    if bad_input:
        implied[400] = tuple(bad_input)
    return _merge(implied, operation.errors)


def _operation_json(operation: Operation) -> Schema:
    responses: dict[str, Any] = {}
    for status, schema in operation.ok.items():
        headers = _response_headers(operation, status)
        if 300 <= status < 400:
            responses[str(status)] = {"description": "redirect", "headers": headers}
            continue
        success: dict[str, Any] = {operation.ok_media: {"schema": schema}}
        if operation.auth == "portal":
            # The portal answers a browser (Accept: text/html) with its page, an API client with JSON.
            success.setdefault("text/html", {"schema": {"type": "string"}})
        responses[str(status)] = {"description": "success", "headers": headers, "content": success}
    for status, codes in sorted(_errors_of(operation).items()):
        # A URL too long for any route is refused before one runs: always the JSON error.
        page = operation.auth == "portal" and status != 414
        media = operation.error_media.get(status, "text/html" if page else None)
        content: dict[str, Any] = {}
        if media is not None:
            content[media] = {"schema": {"type": "string"}}
        if media is None or operation.auth in ("public", "portal"):
            content["application/json"] = {"schema": error_schema(codes)}
        responses[str(status)] = {
            "description": "error; codes: " + (", ".join(codes) if codes else "(see body)"),
            "headers": _response_headers(operation, status),
            "content": content,
        }
    body: Schema = {
        "operationId": _operation_id(operation),
        "summary": operation.summary,
        **({"description": operation.description} if operation.description else {}),
        "tags": [operation.tag],
        "parameters": [copy.deepcopy(p) for p in operation.parameters],
        "responses": responses,
    }
    if operation.request is not None:
        media = "application/x-www-form-urlencoded" if operation.auth == "portal" else "application/json"
        body["requestBody"] = {
            "required": operation.request_required,
            "content": {media: {"schema": operation.request}},
        }
    if operation.auth == "merchant":
        body["security"] = [{"ApiKeyHeader": []}, {"BearerKey": []}]
    else:
        body["security"] = []
    return body


def _operation_id(operation: Operation) -> str:
    words = [
        part.strip("{}").replace(".", "_").replace("-", "_")
        for part in operation.path.split("/")
        if part and part != "v1"
    ]
    return "_".join([operation.method.lower(), *words])


def operation_keys(operations: Iterable[Operation] = OPERATIONS) -> set[tuple[str, str]]:
    return {(op.method, op.path) for op in operations}


def build_document(operations: Iterable[Operation] = OPERATIONS, *, server_url: str = "/") -> Schema:
    """The document; `server_url` is the gateway's public base URL ("/": relative to where it was fetched)."""
    paths: dict[str, dict[str, Any]] = {}
    seen: set[tuple[str, str]] = set()
    for operation in operations:
        key = (operation.method, operation.path)
        if key in seen:
            raise ValueError(f"{operation.method} {operation.path} is documented twice")
        seen.add(key)
        paths.setdefault(operation.path, {})[operation.method.lower()] = _operation_json(operation)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "paygate gateway API",
            "version": API_VERSION,
            "description": (
                "Merchant API (secret key in X-API-Key or Authorization: Bearer), public routes, the "
                "customer portal and provider webhooks. Every refusal is "
                '{"error": {"code", "message"}} with one of the codes listed per response. '
                "A test key sees only test objects and a live key only live ones. Every reply carries "
                "X-Request-Id; a method a path does not serve is 405 method_not_allowed with Allow "
                "(components.responses.MethodNotAllowed)."
            ),
        },
        "servers": _servers(server_url),
        "paths": dict(sorted(paths.items())),
        # What paygate POSTs to the merchant's own endpoints (contract §7).
        "webhooks": webhooks(),
        "components": {
            "schemas": {**copy.deepcopy(SCHEMAS), **event_schemas()},
            "headers": copy.deepcopy(RESPONSE_HEADERS),
            "responses": {"MethodNotAllowed": _method_not_allowed()},
            "securitySchemes": {
                "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "BearerKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "sk_test_... or sk_live_...",
                },
            },
        },
    }


@cache
def document_bytes(server_url: str = "/") -> bytes:
    """The served document, built once per server URL (one per process in practice: the configured one)."""
    return json.dumps(build_document(server_url=server_url), separators=(",", ":")).encode()
