"""POST /v1/sessions/{id}/refund (contract §8): refund a paid session, fully or partly.

With the provider's API configured for the session (Stripe with a key of the session's mode, One.com with its API
key of the session's mode) the refund goes through the provider: the session service records it `pending`
(its amount reserved), the provider is asked with one idempotency key per refund, and the provider's webhook
settles it (`succeeded` issues the credit note and, for the last cent, moves the session to `refunded`).
Recording a refund "made outside paygate" is then refused (409 `use_provider`). Otherwise the request records
a refund the merchant made elsewhere (`succeeded` at once), optionally naming the provider's refund id so a
later provider event with that id is the same refund.

A web3 refund is a transaction the merchant already sent: the request names it (`tx_hash`, required) and the
gateway reads it back from the chain of the session's mode before anything is recorded (see
`webhook_gateway/chain/refund_verification.py`): a confirmed, successful transfer of the session's asset from
its deposit address (or the `from_address` the merchant declares) to the address that paid, of at least the
refund's amount. Without `amount` the refund is what the tx moved, capped at what is still refundable. A tx
with too few confirmations is refused with 409 `refund_tx_unconfirmed` (nothing recorded; the same request
succeeds once it is confirmed); the same tx again answers the refund it made.

`Idempotency-Key` is kept by the session service with the refund itself (scoped to merchant and mode): a
replay answers the same refund, and retries the provider call if an earlier attempt could not reach it (the
provider's own idempotency key makes that safe). Replies are 202 with the refund.

This module parses and answers the request; the refund is made by refund_requests.request_refund, the writer the
dashboard's Refund action calls too.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiohttp import web

from paygate_runtime.api_objects import refund_fields, refund_json
from webhook_gateway.entrypoints.http_errors import ApiError
from webhook_gateway.entrypoints.merchant_auth import authenticate
from webhook_gateway.entrypoints.merchant_requests import optional_idempotency_key
from webhook_gateway.entrypoints.refund_requests import chain_refund_fields, request_refund, status_name
from webhook_gateway.entrypoints.request_body import amount_text, body_fingerprint, request_json_object
from webhook_gateway.entrypoints.session_lookup import load_session

_MAX_REASON = 500
_MAX_ID = 255


def parse_refund_body(body: dict[str, Any]) -> tuple[str, str, str]:
    """(amount, reason, provider_refund_id) of a refund request; 400 naming the field otherwise."""
    amount = body.get("amount")
    if "amount" not in body:
        text = ""
    elif amount is None:
        # Not the same as leaving it out: a null from an unset variable must never refund the whole rest.
        raise ApiError(
            400, "invalid_amount", "amount: leave it out to refund the rest; null is not an amount"
        )
    elif isinstance(amount, bool) or not isinstance(amount, str | int | Decimal):
        raise ApiError(400, "invalid_amount", "amount: must be a decimal string or a JSON number")
    else:
        text = amount_text(amount)
        if not text.strip():
            raise ApiError(400, "invalid_amount", "amount: leave it out to refund the rest")
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > _MAX_REASON:
        raise ApiError(400, "invalid_reason", f"reason: a string of at most {_MAX_REASON} characters")
    provider_refund_id = body.get("provider_refund_id", "")
    if not isinstance(provider_refund_id, str) or len(provider_refund_id) > _MAX_ID:
        raise ApiError(
            400, "invalid_provider_refund_id", f"provider_refund_id: a string of at most {_MAX_ID} characters"
        )
    return text, reason, provider_refund_id


async def refund_session(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    raw = await request.read()
    key = optional_idempotency_key(request)
    fields = request_json_object(request, raw) if raw.strip() else {}
    amount, reason, provider_refund_id = parse_refund_body(fields)
    chain = chain_refund_fields(fields.get("tx_hash"), fields.get("from_address"))
    session = await load_session(request, merchant, request.match_info["id"])
    made = await request_refund(
        request,
        merchant,
        session,
        amount=amount,
        reason=reason,
        provider_refund_id=provider_refund_id,
        chain=chain,
        idempotency_key=key or "",
        fingerprint=body_fingerprint(raw) if key else "",
        # The audit trail names the key that asked for the refund, not just the merchant.
        actor=merchant.api_actor,
    )
    body = refund_json(made.refund)
    body.update(made.extra)
    body["session"] = {
        "id": made.session.id,
        "status": status_name(made.session),
        **refund_fields(made.session),
    }
    headers = {"Idempotent-Replayed": "true"} if made.replayed else None
    return web.json_response(body, status=202, headers=headers)


def setup(app: web.Application) -> None:
    app.router.add_post("/v1/sessions/{id}/refund", refund_session)
