"""The schemas of the OpenAPI document (openapi_document.py): the building blocks (`obj`, `ref`, `nullable`, the
primitive schemas) and SCHEMAS, the `components.schemas` every operation and merchant event names. Each object's
schema says what its renderer in paygate_runtime.api_objects writes (tests/integration/gateway/
test_openapi_documented_fields.py holds that for a paid session and its invoice)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from webhook_gateway.providers.stripe_webhooks import STRIPE_EVENT_TYPES, STRIPE_MONEY_BACK_TYPES

Schema = dict[str, Any]


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

# What a merchant sets on a webhook endpoint, when creating it and when updating it.
DISPUTE_KIND: Final[Schema] = nullable(
    {
        "type": "string",
        "enum": ["inquiry", "chargeback"],
        "description": "the dispute's kind: an inquiry (Stripe's pre-dispute retrieval, status warning_*: no money "
        "withdrawn, refunds are accepted and usually settle it) or a chargeback (a formal dispute: refunds are 409 "
        "dispute_open while it is open; an inquiry that escalates becomes one); null without a dispute",
    }
)
ENDPOINT_FIELDS: Final[dict[str, Schema]] = {
    "url": {"type": "string", "maxLength": 2048},
    "events": {"type": "array", "items": {"type": "string", "maxLength": 64}, "minItems": 1, "maxItems": 32},
    "description": {"type": "string", "maxLength": 500},
}
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
                    "dispute_kind": DISPUTE_KIND,
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
            "canonical": {
                "type": "string",
                "description": "The exact text the hash covers: hash = hex(sha256(utf8(canonical) || the bytes of "
                "prev_hash)). Its first line is the version; then one line per field, `<name>=~` (NULL) or "
                "`<name>=<UTF-8 byte length>:<text>`; its service, chain (the merchant id), seq, id and at (UTC "
                "microseconds) lines name this entry. Hash it as given, never re-serialised.",
            },
            "canonical_version": {
                "type": "string",
                "enum": ["paygate-audit-v1"],
                "description": "The canonical form's version: its first line, without the newline.",
            },
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
            "canonical",
            "canonical_version",
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
                        # Every type the gateway applies, from the normaliser's own lists.
                        "enum": [*STRIPE_EVENT_TYPES, *STRIPE_MONEY_BACK_TYPES],
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
            "failure_reason": nullable(
                {
                    "type": "string",
                    "maxLength": 64,
                    "pattern": "^[a-z][a-z0-9_]*$",
                    "description": "why a failed refund failed: the provider's reason (Stripe's refund "
                    "failure_reason: charge_for_pending_refund_disputed, declined, expired_or_canceled_card, "
                    "insufficient_funds, lost_or_stolen_card, merchant_request, unknown; Stripe may add values) or "
                    "the error code the provider's API refused the refund with, lower-cased; unknown when the "
                    "provider's value was not a short lowercase token; null unless status is failed, or when the "
                    "provider gave no reason",
                }
            ),
            "credited": DECIMAL,
            "credited_minor": MINOR,
            "credit_note_id": nullable(STR),
            "credit_note_skipped": nullable(STR),
            "credit_note_number": nullable(STR),
            "created_at": nullable(TIME),
            "replaced_by": nullable(
                {
                    **UUID,
                    "description": "the refund that stands for this one: set when paygate canceled its own "
                    "pending record because the provider's webhook had recorded the same refund first (status "
                    "is then canceled, and the money went back under that refund); null otherwise",
                }
            ),
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
                            "dispute_kind": DISPUTE_KIND,
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
    "CreateWebhookEndpoint": obj(ENDPOINT_FIELDS, ["url"], additionalProperties=False),
    "UpdateWebhookEndpoint": obj(
        {**ENDPOINT_FIELDS, "status": {"type": "string", "enum": ["enabled", "disabled"]}},
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
    # "MerchantEvent", the list's item, is one of the delivered bodies: openapi_webhooks.event_schemas().
    "MerchantEventList": list_of("MerchantEvent"),
    "Redeliver": obj({"endpoint": STR}, ["endpoint"], additionalProperties=False),
    "RedeliveryQueued": obj(
        {"event_id": STR, "endpoint_id": UUID, "next_attempt_at": TIME},
        ["event_id", "endpoint_id", "next_attempt_at"],
    ),
}
