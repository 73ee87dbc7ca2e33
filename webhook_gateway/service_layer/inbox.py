"""Receiving a verified event: store it once, before the 2xx, and say whether it is new."""

from __future__ import annotations

from paygate_runtime import tracing
from webhook_gateway.adapters.inbox_repository import IGNORED, RECEIVED, InboxWriter, NewEvent, Stored
from webhook_gateway.providers.normalized import NormalizedEvent, VerifiedEnvelope
from webhook_gateway.providers.normalized_json import storable_normalized


def event_mode(envelope: VerifiedEnvelope, normalized: NormalizedEvent) -> str | None:
    """The event's own mode: the verifying secret's (One.com, web3), else the provider's word (Stripe)."""
    if envelope.mode is not None:
        return envelope.mode
    if normalized.livemode is None:
        return None
    return "live" if normalized.livemode else "test"


async def receive(
    writer: InboxWriter,
    envelope: VerifiedEnvelope,
    normalized: NormalizedEvent,
    *,
    claim: bool,
    lease_s: float,
) -> Stored:
    """Commit the event to the inbox (ON CONFLICT DO NOTHING on (provider, event_id)).

    Events that mean nothing for a session (unknown type, no session reference) are stored as `ignored`
    with the reason as outcome; the rest are `received`. With `claim`, the caller applies the new event
    itself right away and holds a lease of `lease_s`; otherwise it is due for the relay at once.
    The normalised event is stored beside the raw body: whoever applies it reads that, never the body again.
    """
    if normalized.ignored:
        status, outcome = IGNORED, normalized.ignore_reason
    else:
        status, outcome = RECEIVED, None
    return await writer.store(
        NewEvent(
            provider=normalized.provider,
            event_id=envelope.event_id,
            event_type=envelope.event_type,
            raw_body=envelope.raw,
            status=status,
            outcome=outcome,
            session_id=normalized.session_id,
            provider_reference=normalized.provider_reference,
            first_attempt_in_s=lease_s if claim else 0.0,
            claim=claim,
            mode=event_mode(envelope, normalized),
            # The relay's apply continues this request's trace (None with tracing off).
            traceparent=tracing.current_traceparent(),
            normalized=storable_normalized(normalized),
        )
    )
