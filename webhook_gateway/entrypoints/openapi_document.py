"""The OpenAPI 3.1 document of every merchant and public HTTP route of the gateway (contract §6a), served at
`GET /openapi.json`.

The document is built from OPERATIONS below: one entry per (method, path) that the app registers. A test
(tests/integration/api_contract) compares OPERATIONS with `app.router` and fails on a route without an entry
or an entry without a route, and schemathesis checks the real gateway against it (no 5xx, every status, error
code and body as documented). Adding a route means adding one `Operation` here, with:

- `auth`: "merchant" (merchant secret key; adds 401 `unauthenticated`), "public", "portal" (the customer's
  access cookie) or "webhook" (a provider's signature);
- `request`/`ok`: schemas, usually `ref("Name")` of a schema in SCHEMAS;
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

Auth = Literal["merchant", "public", "portal", "webhook"]
Schema = dict[str, Any]

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


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    extra = {"enum": [*schema["enum"], None]} if "enum" in schema else {}
    return {**schema, "type": [*kinds, "null"], **extra}


def obj(properties: Mapping[str, Schema], required: Iterable[str] = (), **extra: Any) -> Schema:
    return {"type": "object", "properties": dict(properties), "required": list(required), **extra}


def list_of(item: str) -> Schema:
    return obj(
        {
            "object": {"const": "list"},
            "data": {"type": "array", "items": ref(item)},
            "has_more": {"type": "boolean"},
        },
        ["object", "data", "has_more"],
    )


STR: Final[Schema] = {"type": "string"}
INT: Final[Schema] = {"type": "integer"}
BOOL: Final[Schema] = {"type": "boolean"}
TIME: Final[Schema] = {
    "type": "string",
    "format": "date-time",
    "description": "UTC with milliseconds and Z (2026-12-07T11:41:26.123Z)",
}
UUID: Final[Schema] = {"type": "string", "format": "uuid"}
# Plain decimal notation, exactly the shape paygate_runtime.money.parse_amount reads from text (anything else is
# `invalid_<field>`) and every reply writes: ASCII digits without leading zeros, an optional `.` and fraction
# digits, at most 100 characters; no exponent, `+`, spaces or bare point. The `-` is for totals in replies; an
# amount sent must still be > 0, with no more decimals than its currency has (codes of their own).
DECIMAL: Final[Schema] = {"type": "string", "pattern": r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?$", "maxLength": 100}
# An amount sent: that text, or a JSON number, read exactly in whatever notation JSON allows (`1e3` is 1000).
AMOUNT_IN: Final[list[Schema]] = [
    DECIMAL,
    {
        "type": "number",
        "description": "a JSON number in any exact notation, exponent included (99.99, 1e3 = 1000, 9999E-2); "
        "read exactly, never through a float",
    },
]
MODE: Final[Schema] = {"type": "string", "enum": ["test", "live"]}
MINOR: Final[Schema] = {"type": "integer", "description": "exact integer minor units; may exceed 2^53"}
MONEY: Final[Schema] = obj(
    {"amount": DECIMAL, "amount_minor": MINOR, "currency": STR}, ["amount", "amount_minor", "currency"]
)
SESSION_STATUS: Final[Schema] = {
    "type": "string",
    "enum": ["created", "pending", "paid", "failed", "expired", "refunded"],
}
PAYMENT_STATUS: Final[Schema] = {"type": "string"}
PARTY: Final[Schema] = obj(
    {
        "name": nullable(STR),
        "email": nullable(STR),
        "address": obj({"lines": {"type": "array", "items": STR}, "country": nullable(STR)}),
        "tax_id": nullable(STR),
    }
)

SCHEMAS: Final[dict[str, Schema]] = {
    "Error": obj(
        {"error": obj({"code": STR, "message": STR}, ["code", "message"])},
        ["error"],
        description="Every refusal: a stable snake_case code and a human message.",
    ),
    "CreateSession": obj(
        {
            "amount": {
                "oneOf": AMOUNT_IN,
                "description": "major units, parsed exactly: a plain decimal string, or a JSON number in any exact "
                "notation (1e3 is 1000); no more decimals than the currency has; > 0",
            },
            "currency": {"type": "string", "description": "ISO 4217 or a token symbol; default: merchant's"},
            "provider": {"type": "string", "enum": ["stripe", "onecom", "web3"]},
            "customer_email": {"type": "string", "maxLength": 254},
            "metadata": {
                "type": "object",
                "maxProperties": 50,
                "propertyNames": {"maxLength": 40},
                "additionalProperties": {"type": "string", "maxLength": 500},
            },
            "expires_in": {
                "type": "integer",
                "minimum": 1,
                "maximum": 90 * 24 * 3600,
                "description": "seconds; leave it out for 24 h (each provider narrows the range further)",
            },
            "mode": MODE,
            "description": {"type": "string", "maxLength": 200},
            # Contract §12: what the session's customer key may do; default ["*"].
            "scopes": {
                "type": "array",
                "items": {"type": "string", "pattern": "^(\\*|[a-z0-9_:.\\-]{1,64})$"},
                "minItems": 1,
                "maxItems": 32,
                "description": 'left out: ["*"] (every scope); an empty list is refused (invalid_scopes)',
            },
            # Contract §9: the buyer printed on the invoice; the session service checks the values.
            "customer": nullable(
                obj(
                    {
                        "name": STR,
                        "country": {"type": "string", "description": "ISO 3166-1 alpha-2"},
                        "address": {
                            "anyOf": [STR, {"type": "array", "items": STR}],
                            "description": "one string (lines split on newlines) or a list of lines",
                        },
                        "vat_id": STR,
                    },
                    description="only these keys; any other is refused (invalid_customer)",
                )
            ),
        },
        ["amount"],
        additionalProperties=False,
        examples=[
            {"amount": "99.99", "currency": "EUR"},
            {"amount": 12, "metadata": {"order": "A-1"}, "customer_email": "buyer@example.com"},
        ],
    ),
    "Session": obj(
        {
            "id": UUID,
            "object": {"const": "checkout.session"},
            "status": SESSION_STATUS,
            "payment_status": PAYMENT_STATUS,
            "amount": DECIMAL,
            "amount_minor": MINOR,
            "currency": STR,
            "provider": STR,
            "mode": MODE,
            "url": STR,
            "created_at": TIME,
            "expires_at": TIME,
            "metadata": {"type": "object", "additionalProperties": STR},
            "scopes": {"type": "array", "items": STR},
            "customer_email": nullable(STR),
            # The buyer named on the invoice (contract §9), or null when none was given.
            "customer": nullable(
                obj(
                    {
                        "name": nullable(STR),
                        "country": nullable(STR),
                        "address": {"type": "array", "items": STR},
                        "vat_id": nullable(STR),
                    },
                    ["name", "country", "address", "vat_id"],
                )
            ),
            "provider_checkout_url": STR,
            "provider_checkout_error": obj({"code": STR, "message": STR}, ["code", "message"]),
            "payment": obj(
                {
                    "chain_id": INT,
                    "deposit_address": STR,
                    "token": nullable(STR),
                    "min_confirmations": INT,
                },
                ["chain_id", "deposit_address", "token"],
            ),
        },
        [
            "id",
            "status",
            "payment_status",
            "amount",
            "amount_minor",
            "currency",
            "url",
            "created_at",
            "expires_at",
            "metadata",
        ],
    ),
    "SessionDetail": {
        "allOf": [
            ref("Session"),
            obj(
                {
                    "paid_at": nullable(TIME),
                    "invoice_id": nullable(STR),
                    "invoice_number": nullable(STR),
                    "api_key_id": nullable(STR),
                    "access_url": nullable(STR),
                    "fulfilment_status": {"type": "string", "enum": ["none", "pending", "done"]},
                    "history": {
                        "type": "array",
                        "items": obj(
                            {
                                "from": nullable(STR),
                                "to": nullable(STR),
                                "at": TIME,
                                "source_event_id": {
                                    **nullable(STR),
                                    "description": "what made the move, namespaced by its source: "
                                    "`<provider>:<event id>` (`stripe:evt_...`, `onecom:...`), `merchant:expire`, "
                                    "`quarantine:<entry id>`, ...; the provider's own event id is the part "
                                    "after the first colon",
                                },
                                "note": {
                                    **nullable(STR),
                                    "description": "why, when the move needs saying (paid_after_expiry, ...)",
                                },
                            },
                            ["from", "to", "at", "source_event_id"],
                        ),
                    },
                    "alerts": {
                        "type": "array",
                        "description": "what the merchant should look at on this session (a reorg after paid, ...)",
                        "items": obj(
                            {"code": STR, "detail": STR, "reference": nullable(STR), "at": nullable(TIME)},
                            ["code", "detail", "reference", "at"],
                        ),
                    },
                    "amount_received": {
                        **DECIMAL,
                        "description": "on-chain sessions: what the chain has paid so far, when not nothing",
                    },
                    "amount_received_minor": MINOR,
                    # Contract §8.
                    "amount_refunded": DECIMAL,
                    "amount_refunded_minor": MINOR,
                    "refunds": {"type": "array", "items": ref("Refund")},
                    "dispute_status": nullable({"type": "string", "enum": ["open", "won", "lost"]}),
                },
                ["provider", "paid_at", "invoice_id", "api_key_id", "access_url", "history"],
            ),
        ]
    },
    "SessionList": list_of("Session"),
    "SessionStatus": obj(
        {
            "id": UUID,
            "status": SESSION_STATUS,
            "payment_status": PAYMENT_STATUS,
            "provider": STR,
            "paid_at": nullable(TIME),
        },
        ["id", "status", "payment_status", "provider", "paid_at"],
        additionalProperties=False,
    ),
    "Invoice": obj(
        {
            "id": UUID,
            "number": STR,
            "session_id": STR,
            "amount": DECIMAL,
            "amount_minor": MINOR,
            "currency": STR,
            "issued_at": TIME,
            "status": {"type": "string", "enum": ["issued", "void"]},
            "kind": {"type": "string", "enum": ["invoice", "credit_note"]},
            "object": {"type": "string", "enum": ["invoice", "credit_note"]},
            "mode": MODE,
            "sequence": {"type": "integer", "minimum": 1, "description": "its place in the numbering series"},
            "exponent": INT,
            "subtotal": DECIMAL,
            "subtotal_minor": MINOR,
            "tax_rate_bps": INT,
            "tax": DECIMAL,
            "tax_minor": MINOR,
            "seller": PARTY,
            "buyer": PARTY,
            "line_items": {
                "type": "array",
                "description": "stated net, as the PDF and the XML state them: their `amount`s add up to"
                " `subtotal`; the gross figures they were sold at beside them; negative on a credit note",
                "items": obj(
                    {
                        "description": STR,
                        "quantity": INT,
                        "unit_amount": {"type": "string", "description": "net price of one unit, exact"},
                        "unit_amount_minor": MINOR,
                        "amount": DECIMAL,
                        "amount_minor": MINOR,
                        "gross_unit_amount": DECIMAL,
                        "gross_unit_amount_minor": MINOR,
                        "gross_amount": DECIMAL,
                        "gross_amount_minor": MINOR,
                    },
                    ["description", "quantity", "amount", "amount_minor"],
                ),
            },
            "credits_invoice_id": {**nullable(STR), "description": "a credit note: the invoice it credits"},
            "credit_note_id": {
                **nullable(STR),
                "description": "a voided invoice: the credit note that voids it",
            },
            "pdf_url": STR,
            "html_url": STR,
        },
        ["id", "number", "session_id", "amount", "amount_minor", "currency", "issued_at", "status"],
    ),
    "InvoiceList": list_of("Invoice"),
    "VoidInvoice": obj({"reason": {"type": "string"}}, additionalProperties=False),
    "VoidResult": obj({"invoice": ref("Invoice"), "credit_note": ref("Invoice")}, ["invoice", "credit_note"]),
    "Revenue": obj(
        {
            "object": {"const": "revenue_summary"},
            "mode": MODE,
            "interval": {"type": "string", "enum": ["day", "week", "month"]},
            "from": TIME,
            "to": TIME,
            "buckets": {
                "type": "array",
                "items": obj(
                    {
                        "period_start": TIME,
                        "currency": STR,
                        "exponent": INT,
                        "invoice_count": INT,
                        "invoice_total": DECIMAL,
                        "invoice_total_minor": MINOR,
                        "credit_note_count": INT,
                        "credit_note_total": DECIMAL,
                        "credit_note_total_minor": MINOR,
                        "net": DECIMAL,
                        "net_minor": MINOR,
                    },
                    ["period_start", "currency", "net", "net_minor"],
                ),
            },
        },
        ["object", "mode", "interval", "from", "to", "buckets"],
    ),
    "BillingProfile": obj(
        {
            "merchant_id": STR,
            "seller": PARTY,
            "invoice_prefix": STR,
            "tax_rate_bps": INT,
            "reset_numbering_yearly": BOOL,
            "support_email": nullable(STR),
            "support_url": nullable(STR),
            "contact_email": {
                **nullable(STR),
                "readOnly": True,
                "description": "where customers reach the merchant (the portal's contact form, the access "
                "mail's Reply-To): support_email, else the seller's email; null when neither is set",
            },
            # One profile per merchant and mode (contract §6a): the key's mode's.
            "mode": MODE,
            "complete": {
                "type": "boolean",
                "description": "whether live invoices (and live sessions) may be issued with this profile",
            },
            "missing_fields": {
                "type": "array",
                "items": {
                    "type": "string",
                    "enum": ["seller_name", "seller_address", "seller_country", "seller_tax_id"],
                },
                "description": "what a live invoice still needs (empty when complete)",
            },
        },
        [
            "merchant_id",
            "mode",
            "seller",
            "invoice_prefix",
            "tax_rate_bps",
            "reset_numbering_yearly",
            "complete",
            "missing_fields",
        ],
    ),
    "BillingProfileUpdate": obj(
        {
            # Closed at every level: a misplaced key (`seller_name` beside `seller`, `seller.vat`) is refused
            # (unknown_field), not dropped.
            "seller": obj(
                {
                    "name": STR,
                    "email": STR,
                    "tax_id": STR,
                    "address": nullable(
                        obj(
                            {"lines": {"type": "array", "items": STR}, "country": STR},
                            additionalProperties=False,
                        )
                    ),
                },
                additionalProperties=False,
            ),
            "invoice_prefix": {"type": "string", "pattern": "^[A-Z0-9]{1,12}$"},
            "tax_rate_bps": {"type": "integer", "minimum": 0, "maximum": 10000},
            "reset_numbering_yearly": BOOL,
            "support_email": {"type": "string", "format": "email"},
            "support_url": {
                "type": "string",
                "maxLength": 500,
                "description": "http(s) URL shown to customers",
            },
        },
        description="Fields left out keep their current value.",
        additionalProperties=False,
    ),
    "ApiKey": obj(
        {
            "id": STR,
            "object": {"const": "api_key"},
            "prefix": STR,
            "hint": STR,
            "status": {"type": "string", "enum": ["VALID", "NOT_FOUND", "EXPIRED", "REVOKED", "SUSPENDED"]},
            "mode": MODE,
            "session_id": STR,
            "revealed": BOOL,
            "metadata": {"type": "object", "additionalProperties": STR},
            "rolled_from_id": nullable(STR),
            "created_at": nullable(TIME),
            "expires_at": nullable(TIME),
            "revoked_at": nullable(TIME),
            "last_used_at": nullable(TIME),
            "scopes": {"type": "array", "items": STR, "description": "what the key may do now; * = all"},
            "granted_scopes": {"type": "array", "items": STR, "description": "what the merchant granted"},
            "ip_allowlist": {"type": "array", "items": STR, "description": "CIDR blocks; empty = anywhere"},
        },
        ["id", "prefix", "status", "mode", "session_id"],
    ),
    "ApiKeyList": list_of("ApiKey"),
    "RollApiKey": obj(
        {
            "grace_period": {
                "type": "integer",
                "minimum": 0,
                "maximum": 604800,
                "default": 0,
                "description": "seconds the old key keeps working; 0: it stops now",
            }
        },
        additionalProperties=False,
    ),
    "RolledApiKey": {
        "allOf": [ref("ApiKey"), obj({"secret": nullable(STR), "previous": ref("ApiKey")}, ["secret"])]
    },
    "VerifyKey": obj(
        {
            "key": STR,
            "ip": {
                "type": "string",
                "description": "the caller's IP; a key with an allow-list without it is IP_NOT_ALLOWED",
            },
        },
        ["key"],
        additionalProperties=False,
    ),
    "VerifyResult": obj(
        {
            "valid": BOOL,
            "code": {
                "type": "string",
                "enum": ["VALID", "NOT_FOUND", "REVOKED", "EXPIRED", "SUSPENDED", "IP_NOT_ALLOWED"],
            },
            "key_id": nullable(STR),
            "merchant_id": nullable(STR),
            "session_id": nullable(STR),
            "mode": nullable(MODE),
            "scopes": nullable({"type": "array", "items": STR}),
        },
        ["valid", "code", "key_id", "merchant_id", "session_id"],
    ),
    "QuarantineEntry": obj(
        {
            "id": UUID,
            "object": {"const": "quarantine_entry"},
            "session_id": STR,
            "reason": STR,
            "mode": MODE,
            "provider": STR,
            "provider_event_id": STR,
            "provider_reference": nullable(STR),
            "amount": nullable(MONEY),
            "expected": nullable(MONEY),
            "surplus": nullable(MONEY),
            "status": {"type": "string", "enum": ["open", "refunded", "dismissed", "accepted"]},
            "note": nullable(STR),
            "resolution_note": nullable(STR),
            "created_at": TIME,
            "resolved_at": nullable(TIME),
        },
        ["id", "session_id", "reason", "status", "created_at"],
    ),
    "QuarantineList": list_of("QuarantineEntry"),
    # Contract §9: one entry of a service's hash-chained audit (GET /v1/audit).
    "AuditEntry": obj(
        {
            "id": {"type": "string", "pattern": "^(billing|keys|session)_[1-9][0-9]*$"},
            "object": {"const": "audit_entry"},
            "service": {"type": "string", "enum": ["billing", "keys", "session"]},
            "action": STR,
            "object_type": STR,
            "object_id": nullable(STR),
            "at": {
                "type": "string",
                "format": "date-time",
                "description": "UTC with the microseconds its hash chain holds (2026-12-07T11:41:26.123456Z)",
            },
            "actor": nullable(STR),
            "mode": nullable(MODE),
            "sequence": {"type": "integer", "minimum": 1},
            "hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "prev_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        },
        [
            "id",
            "object",
            "service",
            "action",
            "object_type",
            "object_id",
            "at",
            "actor",
            "mode",
            "sequence",
            "hash",
            "prev_hash",
        ],
    ),
    "AuditList": list_of("AuditEntry"),
    "ResolveQuarantine": obj(
        {
            "decision": {"type": "string", "enum": ["refunded", "dismissed", "accepted"]},
            "note": {"type": "string", "maxLength": 1000},
        },
        ["decision"],
        additionalProperties=False,
    ),
    "InboxEvent": obj(
        {
            "id": UUID,
            "object": {"const": "event"},
            "provider": STR,
            "event_id": STR,
            "type": nullable(STR),
            "status": STR,
            "outcome": nullable(STR),
            "session_id": nullable(STR),
            "attempts": INT,
            "received_at": nullable(TIME),
            "final": BOOL,
            "source": {"type": "string", "enum": ["webhook", "reconcile"]},
        },
        ["id", "provider", "event_id", "status", "final"],
    ),
    "InboxEventList": list_of("InboxEvent"),
    "Deposits": obj(
        {
            "session_id": STR,
            "deposits": {
                "type": "array",
                "items": obj(
                    {
                        "chain_id": INT,
                        "tx_hash": STR,
                        "log_index": INT,
                        "token": nullable(STR),
                        "from": nullable(STR),
                        "to": STR,
                        "amount_minor": {"type": ["integer", "string"]},
                        "block_number": nullable(INT),
                        "canonical": BOOL,
                    },
                    ["chain_id", "tx_hash", "amount_minor"],
                ),
            },
        },
        ["session_id", "deposits"],
    ),
    # Provider bodies (contract §4), as far as the gateway reads them; a verified event of another type or
    # shape is still answered 200 and recorded (as ignored or malformed).
    "StripeEvent": obj(
        {
            "id": STR,
            "type": {
                "anyOf": [
                    {
                        "type": "string",
                        "enum": [
                            "checkout.session.completed",
                            "checkout.session.async_payment_succeeded",
                            "checkout.session.async_payment_failed",
                            "checkout.session.expired",
                            "payment_intent.succeeded",
                            "payment_intent.processing",
                            "payment_intent.payment_failed",
                            "charge.refunded",
                            "refund.updated",
                            "charge.dispute.created",
                            "charge.dispute.closed",
                        ],
                    },
                    STR,
                ]
            },
            "livemode": BOOL,
            "created": INT,
            "data": obj(
                {
                    "object": obj(
                        {
                            "id": STR,
                            "object": STR,
                            "payment_intent": nullable(STR),
                            "payment_status": STR,
                            "status": STR,
                            "amount_total": INT,
                            "amount_received": INT,
                            "amount_refunded": INT,
                            "currency": STR,
                            "client_reference_id": nullable(STR),
                            "metadata": {"type": "object", "additionalProperties": STR},
                        }
                    )
                },
                ["object"],
            ),
        },
        ["id", "type", "data"],
    ),
    "OneComEvent": obj(
        {
            "type": {
                "anyOf": [
                    {
                        "type": "string",
                        "enum": [
                            "payment.succeeded",
                            "payment.pending",
                            "payment.failed",
                            "payment.refunded",
                        ],
                    },
                    STR,
                ]
            },
            "data": obj(
                {
                    "session_id": STR,
                    "transaction_id": STR,
                    "refund_id": STR,
                    "amount_minor": {"type": ["integer", "string"]},
                    "currency": STR,
                }
            ),
        },
        ["type", "data"],
    ),
    "Web3Hint": obj(
        {
            "type": {"anyOf": [{"const": "transaction.detected"}, STR]},
            "data": obj({"chain_id": INT, "tx_hash": STR, "session_id": STR}),
        },
        ["type", "data"],
    ),
    "WebhookReceived": obj(
        {"received": {"const": True}, "event_id": STR, "duplicate": BOOL},
        ["received", "event_id", "duplicate"],
    ),
    "ChainStatus": obj(
        {
            "mode": MODE,
            "configured": BOOL,
            "chain_id": nullable(INT),
            "node_reachable": BOOL,
            "head": nullable(INT),
            "scanned_block": nullable(INT),
            "lag_blocks": nullable(INT),
            "failing_addresses": {"type": "array", "items": {"type": "object"}},
            "untraced_blocks": {"type": "array", "items": {"type": "object"}},
        },
        ["mode", "configured", "chain_id"],
    ),
    "Jwks": obj({"keys": {"type": "array", "items": {"type": "object"}}}, ["keys"]),
    "Health": obj({"status": STR}, ["status"]),
    "RevealedKey": obj({"key_id": STR, "secret": STR}, ["key_id", "secret"]),
    # Merchant secret keys and access links (routes_merchant_keys, routes_access_links).
    "MerchantKey": obj(
        {
            "id": UUID,
            "object": {"const": "merchant_key"},
            "prefix": {"type": "string", "enum": ["sk_test_", "sk_live_"]},
            "last4": {"type": "string", "minLength": 4, "maxLength": 4},
            "mode": MODE,
            "status": {"type": "string", "enum": ["active", "expiring", "revoked", "expired"]},
            "created_at": TIME,
            "last_used_at": nullable(TIME),
            "expires_at": nullable(TIME),
            "revoked_at": nullable(TIME),
            "rolled_from_id": nullable(UUID),
        },
        ["id", "prefix", "last4", "mode", "status", "created_at", "last_used_at", "expires_at"],
    ),
    "MerchantKeyList": list_of("MerchantKey"),
    "CreateMerchantKey": obj(
        {"mode": {**MODE, "description": "must be the calling key's own mode"}}, additionalProperties=False
    ),
    "CreatedMerchantKey": {
        "allOf": [
            ref("MerchantKey"),
            obj({"secret": {**nullable(STR), "description": "shown once; null on a replay"}}, ["secret"]),
        ]
    },
    "RollMerchantKey": obj(
        {"grace_period": {"type": ["integer", "null"], "minimum": 0, "maximum": 604800, "default": 0}},
        additionalProperties=False,
    ),
    "RolledMerchantKey": {
        "allOf": [
            ref("MerchantKey"),
            obj({"secret": nullable(STR), "previous": ref("MerchantKey")}, ["secret", "previous"]),
        ]
    },
    # --- refunds and disputes (contract §8; routes_refunds.py) ---
    "RefundRequest": obj(
        {
            "amount": {
                "oneOf": AMOUNT_IN,
                "description": "major units; left out: everything still refundable",
            },
            "reason": {"type": "string", "maxLength": 500},
            "provider_refund_id": {
                "type": "string",
                "maxLength": 255,
                "description": "a refund made outside paygate: the provider's id, if known",
            },
            "tx_hash": {
                "type": "string",
                "pattern": "^0x[0-9a-fA-F]{64}$",
                "description": "web3 sessions (required): the refund transaction, verified on the session's "
                "chain: a confirmed transfer of the session's asset from its deposit address (or from_address) "
                "to the address that paid, of at least amount (left out: what the tx sent, at most the rest)",
            },
            "from_address": {
                "type": "string",
                "pattern": "^0x[0-9a-fA-F]{40}$",
                "description": "web3 sessions: the merchant's wallet the refund was sent from, when not the "
                "deposit address",
            },
        },
        additionalProperties=False,
    ),
    "Refund": obj(
        {
            "id": UUID,
            "object": {"const": "refund"},
            "session_id": UUID,
            "amount": DECIMAL,
            "amount_minor": MINOR,
            "currency": STR,
            "status": {"type": "string", "enum": ["pending", "succeeded", "failed", "canceled"]},
            "origin": {"type": "string", "enum": ["merchant", "outside", "provider", "dispute"]},
            "provider_refund_id": nullable(STR),
            "reason": nullable(STR),
            "credited": DECIMAL,
            "credited_minor": MINOR,
            "credit_note_id": nullable(STR),
            "credit_note_skipped": nullable(STR),
            "credit_note_number": nullable(STR),
            "created_at": nullable(TIME),
        },
        ["id", "session_id", "amount", "currency", "status"],
    ),
    "RefundAccepted": {
        "allOf": [
            ref("Refund"),
            obj(
                {
                    "session": obj(
                        {
                            "id": UUID,
                            "status": SESSION_STATUS,
                            "amount_refunded": DECIMAL,
                            "amount_refunded_minor": MINOR,
                            "refunds": {"type": "array", "items": ref("Refund")},
                            "dispute_status": nullable({"type": "string", "enum": ["open", "won", "lost"]}),
                        },
                        ["id", "status", "amount_refunded", "refunds", "dispute_status"],
                    ),
                    "provider_error": obj({"code": STR, "message": STR}),
                },
                ["session"],
            ),
        ]
    },
    "SessionAccessRevoked": {
        "allOf": [ref("SessionDetail"), obj({"access_links_revoked": INT}, ["access_links_revoked"])]
    },
    # --- merchant events (contract §7; routes_merchant_events.py) ---
    "WebhookEndpoint": obj(
        {
            "id": UUID,
            "object": {"const": "webhook_endpoint"},
            "url": STR,
            "events": {"type": "array", "items": STR},
            "description": STR,
            "status": {
                "type": "string",
                "enum": ["enabled", "disabled", "deleted"],
                "description": "a disabled endpoint gets no deliveries: those pending wait and resume when it is"
                " enabled again; events emitted while it is disabled are never delivered to it (redeliver"
                " one to send it)",
            },
            "mode": MODE,
            "created_at": TIME,
            "updated_at": TIME,
            "disabled_reason": nullable(STR),
            "failing_since": nullable(TIME),
            "previous_secret_expires_at": {
                **nullable(TIME),
                "description": "while rolled secrets still sign beside the current one: the latest end among"
                " them (each rolled secret signs until the end its roll promised; at most 5 are kept, a roll"
                " past that ends the oldest; a roll with expires_in 0 ends them all); null when none does",
            },
            "previous_secrets": {
                "type": "array",
                "items": obj({"expires_at": TIME}, ["expires_at"]),
                "description": "every rolled secret still signing beside the current one, latest end first,"
                " each with the end its roll promised (the secrets themselves are never shown again)",
            },
            "secret": {"type": "string", "description": "whsec_...; only in the create and roll replies"},
            "deleted": BOOL,
        },
        ["id", "url", "events", "status", "mode"],
        description="A merchant's webhook endpoint. A disabled endpoint is sent nothing: its pending deliveries"
        " resume when it is enabled again, and events emitted while it is disabled are not delivered to it.",
    ),
    "WebhookEndpointList": list_of("WebhookEndpoint"),
    "CreateWebhookEndpoint": obj(
        {
            "url": {"type": "string", "maxLength": 2048},
            "events": {
                "type": "array",
                "items": {"type": "string", "maxLength": 64},
                "minItems": 1,
                "maxItems": 32,
            },
            "description": {"type": "string", "maxLength": 500},
        },
        ["url"],
        additionalProperties=False,
    ),
    "UpdateWebhookEndpoint": obj(
        {
            "url": {"type": "string", "maxLength": 2048},
            "events": {
                "type": "array",
                "items": {"type": "string", "maxLength": 64},
                "minItems": 1,
                "maxItems": 32,
            },
            "description": {"type": "string", "maxLength": 500},
            "status": {"type": "string", "enum": ["enabled", "disabled"]},
        },
        additionalProperties=False,
    ),
    "RollWebhookSecret": obj(
        {
            "expires_in": {
                "type": "integer",
                "minimum": 0,
                "maximum": 7 * 86_400,
                "default": 86_400,
                "description": "seconds the old secret keeps signing beside the new one; 0: it stops now",
            }
        },
        additionalProperties=False,
    ),
    "WebhookDelivery": obj(
        {
            "id": STR,
            "object": {"const": "webhook_delivery"},
            "endpoint_id": UUID,
            "event_id": STR,
            "event_type": STR,
            "attempt": INT,
            "status_code": nullable(INT),
            "error": nullable(STR),
            "at": TIME,
            "next_attempt_at": nullable(TIME),
            "delivered": BOOL,
            "latency_ms": INT,
            "response_body": nullable(STR),
        },
        [
            "id",
            "endpoint_id",
            "event_id",
            "event_type",
            "attempt",
            "status_code",
            "error",
            "at",
            "next_attempt_at",
            "delivered",
        ],
    ),
    "WebhookDeliveryList": list_of("WebhookDelivery"),
    "MerchantEvent": obj(
        {
            "id": STR,
            "type": STR,
            "created": INT,
            "mode": MODE,
            "data": obj({"object": {"type": "object"}}, ["object"]),
        },
        ["id", "type", "created", "mode", "data"],
        description="Exactly the body delivered to endpoints (Standard Webhooks, webhook-id = id).",
    ),
    "MerchantEventList": list_of("MerchantEvent"),
    "Redeliver": obj({"endpoint": STR}, ["endpoint"], additionalProperties=False),
    "RedeliveryQueued": obj(
        {"event_id": STR, "endpoint_id": UUID, "next_attempt_at": TIME},
        ["event_id", "endpoint_id", "next_attempt_at"],
    ),
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
        "characters) or 32 random hex digits; the gateway's log lines carry it: quote it to support",
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


# --- merchant events (contract §7): what paygate POSTs to a merchant's webhook endpoints -------------------
# The document's top-level `webhooks`: one entry per event type. The types are the session service's
# EVENT_TYPES (session_service/domain/merchant_events.py; the gateway may not import it), and
# tests/integration/merchant_events/test_merchant_events_openapi.py keeps the two lists equal and validates real
# deliveries against these schemas. `data.object` is rendered by the API's own renderers
# (paygate_runtime.api_objects), so it is the schema the GET routes answer with, narrowed to what the event
# fixes (a session event's status is its type's, its `access_url` is always null: a bearer link is never sent).

# One (type, `data.object`'s schema, when it is sent) per event type, in contract §7's order.
_MERCHANT_EVENTS: Final[tuple[tuple[str, Schema, str], ...]] = (
    *(
        (
            f"session.{status}",
            {
                "allOf": [
                    ref("SessionDetail"),
                    obj(
                        {"status": {"const": status}, "access_url": {"type": "null"}},
                        ["status", "access_url"],
                    ),
                ]
            },
            f"a session moved to `{status}` ({why}); the session as GET /v1/sessions/{{id}} returns it at "
            "that commit, with `access_url` null",
        )
        for status, why in (
            ("paid", "its payment was applied"),
            ("failed", "the provider reported the payment failed"),
            ("expired", "the merchant expired it, or its time ran out"),
            ("refunded", "refunds, or a lost dispute, credited its whole price"),
        )
    ),
    *(
        (
            f"{kind}.issued",
            {
                "allOf": [
                    ref("Invoice"),
                    obj({"object": {"const": kind}, "kind": {"const": kind}}, ["object", "kind"]),
                ]
            },
            f"billing issued {what}; the document as GET /v1/invoices/{{id}} returns it",
        )
        for kind, what in (
            ("invoice", "a paid session's invoice"),
            ("credit_note", "a credit note (a refund's, a lost dispute's or a void's)"),
        )
    ),
    (
        "customer_key.revoked",
        {"allOf": [ref("ApiKey"), obj({"revoked_at": TIME}, ["revoked_at"])]},
        "a session's customer key was revoked, whoever revoked it (the merchant, the customer, a full refund or a "
        "lost dispute); the key as GET /v1/api_keys lists it",
    ),
    (
        "quarantine.created",
        ref("QuarantineEntry"),
        "money that needs a person was recorded; the entry as GET /v1/quarantine lists it",
    ),
    (
        "dispute.created",
        {"allOf": [ref("Dispute"), obj({"status": {"const": "open"}}, ["status"])]},
        "the provider opened a dispute on a paid session",
    ),
    (
        "dispute.closed",
        {"allOf": [ref("Dispute"), obj({"status": {"enum": ["won", "lost"]}}, ["status"])]},
        "a dispute was closed: won, or lost (the disputed money is then refunded and credited)",
    ),
)

EVENT_SCHEMAS: Final[dict[str, Schema]] = {
    # Rendered by paygate_runtime.api_objects.dispute_json; no API route returns a dispute (a session shows
    # its `dispute_status`).
    "Dispute": obj(
        {
            "id": {"type": "string", "description": "the provider's dispute id (Stripe's dp_...)"},
            "object": {"const": "dispute"},
            "session_id": UUID,
            "status": {"type": "string", "enum": ["open", "won", "lost"]},
            "amount": {**nullable(DECIMAL), "description": "the disputed money, in the dispute's currency"},
            "amount_minor": nullable(MINOR),
            "currency": nullable(STR),
        },
        ["id", "object", "session_id", "status", "amount", "amount_minor", "currency"],
        additionalProperties=False,
        description="A dispute as a merchant event shows it; the money is null when the provider's event did not "
        "carry it.",
    ),
}

WEBHOOK_HEADERS: Final[tuple[Schema, ...]] = (
    {
        "name": "webhook-id",
        "in": "header",
        "required": True,
        "schema": {"type": "string", "pattern": "^evt_[0-9a-f]{32}$"},
        "description": "the event's id (the body's `id`); the same on every retry and redelivery: deduplicate "
        "on it (delivery is at least once)",
    },
    {
        "name": "webhook-timestamp",
        "in": "header",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"},
        "description": "Unix seconds when this attempt was signed; refuse one far from your clock (the Standard "
        "Webhooks libraries allow 5 minutes) so a captured message cannot be replayed",
    },
    {
        "name": "webhook-signature",
        "in": "header",
        "required": True,
        "schema": {"type": "string", "pattern": "^v1,[A-Za-z0-9+/]+={0,2}( v1,[A-Za-z0-9+/]+={0,2})*$"},
        "description": "space-separated `v1,<base64 HMAC-SHA256>` of `{webhook-id}.{webhook-timestamp}.{body}`, "
        "one per secret that signs now (the endpoint's `whsec_...`, and after roll_secret each rolled secret "
        "until its end): accept the message when any one matches (any Standard Webhooks library does this)",
    },
)

WEBHOOK_RESPONSES: Final[dict[str, Schema]] = {
    "2XX": {
        "description": "delivered: no further attempt. Answer within 10 s; the body is ignored (its first 4096 "
        "characters are kept in the delivery log, GET /v1/webhook_deliveries)",
    },
    "default": {
        "description": "any other status (a 3xx too: redirects are not followed), or no answer within 10 s: the "
        "attempt failed and is retried with exponential backoff and full jitter: after the n-th failure a wait "
        "drawn uniformly up to min(5 s x 2^(n-1), 3 h), for 3 days from the first attempt, after which the "
        "delivery is failed (POST /v1/merchant_events/{id}/redeliver sends it again). An endpoint with no "
        "success for 5 days is disabled. These are the defaults (PAYGATE_MERCHANT_WEBHOOK_TIMEOUT_MS, "
        "_BACKOFF_BASE_MS, _BACKOFF_CAP_MS, _RETRY_WINDOW_S)",
    },
}


def _event_schema_name(event_type: str) -> str:
    """`session.paid` -> `SessionPaidEvent`, `credit_note.issued` -> `CreditNoteIssuedEvent`."""
    words = event_type.replace(".", "_").split("_")
    return "".join(word.capitalize() for word in words) + "Event"


def _event_envelope(event_type: str, object_schema: Schema) -> Schema:
    """The delivered body (session_service.domain.merchant_events.event_body): closed at both levels."""
    return obj(
        {
            "id": {
                "type": "string",
                "pattern": "^evt_[0-9a-f]{32}$",
                "description": "= the webhook-id header",
            },
            "type": {"const": event_type},
            "created": {"type": "integer", "description": "Unix seconds when the event was emitted"},
            "mode": MODE,
            "data": obj({"object": object_schema}, ["object"], additionalProperties=False),
        },
        ["id", "type", "created", "mode", "data"],
        additionalProperties=False,
        description=f"The body of a `{event_type}` merchant event, as GET /v1/merchant_events lists it too.",
    )


def event_schemas() -> dict[str, Schema]:
    """The components the `webhooks` entries name: Dispute and one envelope per event type."""
    envelopes = {_event_schema_name(t): _event_envelope(t, schema) for t, schema, _ in _MERCHANT_EVENTS}
    return {**copy.deepcopy(EVENT_SCHEMAS), **envelopes}


def _webhooks() -> dict[str, Schema]:
    return {
        event_type: {
            "post": {
                "operationId": "merchant_event_" + event_type.replace(".", "_"),
                "summary": f"`{event_type}`: {when}",
                "description": "paygate POSTs this to every enabled endpoint subscribed to the type (or to `*`) "
                "when the change commits, signed per Standard Webhooks. Verify the signature over the exact "
                "bytes received before parsing them.",
                "tags": ["merchant_events"],
                "parameters": copy.deepcopy(list(WEBHOOK_HEADERS)),
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref(_event_schema_name(event_type))}},
                },
                "responses": copy.deepcopy(WEBHOOK_RESPONSES),
                "security": [],
            }
        }
        for event_type, _, when in _MERCHANT_EVENTS
    }


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
        "webhooks": _webhooks(),
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
