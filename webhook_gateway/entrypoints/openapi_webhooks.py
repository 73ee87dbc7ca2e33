"""The document's top-level `webhooks` (OpenAPI 3.1): what paygate POSTs to a merchant's webhook endpoints, one
entry per merchant event type (contract §7)."""

from __future__ import annotations

import copy
from typing import Final

from webhook_gateway.entrypoints.openapi_schemas import (
    DECIMAL,
    MINOR,
    MODE,
    STR,
    TIME,
    UUID,
    Schema,
    nullable,
    obj,
    ref,
)

# The document's top-level `webhooks`: one entry per event type. The types are the session service's
# EVENT_TYPES (session_service/domain/merchant_events.py; the gateway may not import it), and
# tests/integration/merchant_events/test_merchant_events_openapi.py keeps the two lists equal and validates real
# deliveries against these schemas. `data.object` is rendered by the API's own renderers
# (paygate_runtime.api_objects), so it is the schema the GET routes answer with, narrowed to what the event
# fixes (a session event's status is its type's, its `access_url` is always null: a bearer link is never sent).

# One (type, `data.object`'s schema, when it is sent) per event type, in contract §7's order (the refund
# outcomes, which paygate adds to §7's list, after the session's).
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
    (
        "refund.succeeded",
        {"allOf": [ref("Refund"), obj({"status": {"const": "succeeded"}}, ["status"])]},
        "a refund succeeded and the money went back to the customer (asked through the provider and settled by its "
        "webhook, recorded as made outside paygate, reported by the provider, or a lost dispute's); the refund "
        "as GET /v1/sessions/{id} lists it at that commit (its credit note follows, as `credit_note.issued`)",
    ),
    (
        "refund.failed",
        {
            "allOf": [
                ref("Refund"),
                obj(
                    {"status": {"const": "failed"}, "credited_minor": {"const": 0}},
                    ["status", "credited_minor"],
                ),
            ]
        },
        "a refund failed at the provider, or failed after it had succeeded: the money did not go back to the "
        "customer; the refund as GET /v1/sessions/{id} lists it at that commit",
    ),
    (
        "refund.canceled",
        {
            "allOf": [
                ref("Refund"),
                obj(
                    {"status": {"const": "canceled"}, "credited_minor": {"const": 0}},
                    ["status", "credited_minor", "replaced_by"],
                ),
            ]
        },
        "a pending refund will not settle: either the provider canceled it (`replaced_by` null: no money went "
        "back), or paygate canceled its own pending record because the provider's webhook had recorded the same "
        "refund first (`replaced_by` names the refund that stands, whose own `refund.succeeded` or "
        "`refund.failed` tells the outcome: do not refund again); the refund as GET /v1/sessions/{id} lists it "
        "at that commit",
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
        "dispute.updated",
        {
            "allOf": [
                ref("Dispute"),
                obj({"status": {"const": "open"}, "kind": {"const": "chargeback"}}, ["status", "kind"]),
            ]
        },
        "an open inquiry escalated to a chargeback (a later event of the same dispute with a non-warning status, "
        "or its funds withdrawn): refunds are refused from now on and the chargeback is answered with evidence "
        "before it closes; sent once per escalation",
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
            "kind": {
                **nullable({"type": "string", "enum": ["inquiry", "chargeback"]}),
                "description": "an inquiry (Stripe's pre-dispute retrieval: no money withdrawn, a refund usually "
                "settles it) or a chargeback (the network holds the money; refunds are refused while it is "
                "open); null when not known",
            },
            "amount": {**nullable(DECIMAL), "description": "the disputed money, in the dispute's currency"},
            "amount_minor": nullable(MINOR),
            "currency": nullable(STR),
        },
        ["id", "object", "session_id", "status", "kind", "amount", "amount_minor", "currency"],
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


def _any_event(envelopes: dict[str, str]) -> Schema:
    """GET /v1/merchant_events' item: exactly one of the delivered bodies, told apart by `type`, so a client's
    generated types are the webhooks' own (a loose `data.object` typed nothing)."""
    return {
        "oneOf": [ref(name) for name in envelopes.values()],
        "discriminator": {
            "propertyName": "type",
            "mapping": {event_type: ref(name)["$ref"] for event_type, name in envelopes.items()},
        },
        "description": "Exactly the body delivered to endpoints (Standard Webhooks, webhook-id = id).",
    }


def event_schemas() -> dict[str, Schema]:
    """The components the `webhooks` entries name (Dispute and one envelope per event type), and
    MerchantEvent, the union of the envelopes that GET /v1/merchant_events lists."""
    names = {event_type: _event_schema_name(event_type) for event_type, _, _ in _MERCHANT_EVENTS}
    envelopes = {names[t]: _event_envelope(t, schema) for t, schema, _ in _MERCHANT_EVENTS}
    return {**copy.deepcopy(EVENT_SCHEMAS), **envelopes, "MerchantEvent": _any_event(names)}


def webhooks() -> dict[str, Schema]:
    """The document's `webhooks`: one POST per merchant event type."""
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
