"""Merchant events (contract §7), pure: event types, endpoint URL rules, address rules, the retry schedule and
the delivered body. No I/O: the delivery worker resolves names and calls these on what it found."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

from paygate_runtime.errors import InvalidArgument

# Contract §7: what an endpoint may subscribe to, and all the code emits.
EVENT_TYPES: Final[frozenset[str]] = frozenset(
    {
        "session.paid",
        "session.failed",
        "session.expired",
        "session.refunded",
        "refund.succeeded",
        "refund.failed",
        "refund.canceled",
        "invoice.issued",
        "credit_note.issued",
        "customer_key.revoked",
        "quarantine.created",
        "dispute.created",
        "dispute.updated",
        "dispute.closed",
    }
)
# A dispute's change a merchant acts on, by the note of the dispute rules' outcome (domain/refunds.py
# `apply_dispute`): opened, escalated from an inquiry to a chargeback (answered with evidence before it closes, so
# `dispute.closed` is too late to tell it), closed. The other notes (funds moved, an update that changes no kind,
# a late or re-sent event) are recorded only: each change is sent once, with the transaction that makes it.
DISPUTE_EVENTS: Final[dict[str, str]] = {
    "dispute_created": "dispute.created",
    "dispute_escalated": "dispute.updated",
    "dispute_won": "dispute.closed",
    "dispute_lost": "dispute.closed",
}
# A refund's outcome, by the status it settled in. Pending is no outcome yet. A canceled refund moved no money,
# but a merchant's system that saw it pending must learn it will not settle: canceled by the provider, or
# paygate's own pending record merged into the provider's record of the same refund, which its `replaced_by`
# names (so the merchant does not read the merge as "not refunded" and refund again).
REFUND_OUTCOME_EVENTS: Final[dict[str, str]] = {
    "succeeded": "refund.succeeded",
    "failed": "refund.failed",
    "canceled": "refund.canceled",
}
ENDPOINT_STATUSES: Final[frozenset[str]] = frozenset({"enabled", "disabled"})
MAX_URL: Final[int] = 2048
MAX_DESCRIPTION: Final[int] = 500
MAX_EVENTS: Final[int] = 32
# Stored and shown of a receiver's answer: enough to see an error page's gist, never a flood.
MAX_RESPONSE_BODY: Final[int] = 4096
DEFAULT_SECRET_OVERLAP_S: Final[int] = 24 * 3600
MAX_SECRET_OVERLAP_S: Final[int] = 7 * 24 * 3600
# Previous (rolled) secrets that may sign beside the current one at once, each until its own end; a roll past
# this ends the oldest retired one.
MAX_PREVIOUS_SECRETS: Final[int] = 5


# ---------------------------------------------------------------------------------------------- input
def check_events(events: Sequence[str]) -> list[str]:
    clean = list(dict.fromkeys(events))
    if not clean or len(clean) > MAX_EVENTS:
        raise InvalidArgument("invalid_events", 'events: 1 to 32 event types, or ["*"]', field="events")
    if "*" in clean:
        if len(clean) > 1:
            raise InvalidArgument("invalid_events", '"*" stands alone', field="events")
        return clean
    unknown = [e for e in clean if e not in EVENT_TYPES]
    if unknown:
        raise InvalidArgument(
            "invalid_events",
            f"unknown event type {unknown[0][:60]!r}; known: {sorted(EVENT_TYPES)}",
            field="events",
        )
    return clean


def check_description(description: str) -> str:
    if len(description) > MAX_DESCRIPTION:
        raise InvalidArgument(
            "invalid_description", f"description: at most {MAX_DESCRIPTION} characters", field="description"
        )
    return description


@dataclass(frozen=True, slots=True)
class EndpointUrl:
    url: str
    scheme: str
    host: str  # without brackets for IPv6
    port: int
    literal_ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None


_LOCAL_NAMES: Final[tuple[str, ...]] = ("localhost", ".localhost", ".local", ".internal", ".localdomain")


def parse_endpoint_url(raw: str) -> EndpointUrl:
    """The URL's shape (scheme, host, no credentials); where it may point is `check_endpoint_url`'s job."""
    bad = InvalidArgument("invalid_url", "url must be an absolute http(s) URL", field="url")
    if not raw or len(raw) > MAX_URL or any(c.isspace() or ord(c) < 0x20 for c in raw):
        raise bad
    try:
        parts = urlsplit(raw)
        port = parts.port
        host = parts.hostname
    except ValueError:
        raise bad from None
    if parts.scheme not in ("http", "https") or not host:
        raise bad
    if parts.username is not None or parts.password is not None:
        # Credentials in a URL end up in logs and in the listing; a receiver authenticates by signature.
        raise InvalidArgument("invalid_url", "url must not carry credentials", field="url")
    if parts.fragment:
        raise InvalidArgument("invalid_url", "url must not have a fragment", field="url")
    try:
        literal: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    return EndpointUrl(
        raw, parts.scheme, host.lower(), port or (443 if parts.scheme == "https" else 80), literal
    )


def is_loopback_name(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost")


def check_endpoint_url(raw: str, mode: str, *, allow_loopback: bool) -> EndpointUrl:
    """Contract §7: a live endpoint is https to a public address; a test endpoint too, except that with
    PAYGATE_ALLOW_LOOPBACK_WEBHOOKS it may be http(s) on loopback. Anything else is `invalid_url`. Names are
    checked again, resolved, at every delivery (`address_allowed`)."""
    url = parse_endpoint_url(raw)
    loopback_ok = allow_loopback and mode == "test"
    loopback = (url.literal_ip is not None and _unmapped(url.literal_ip).is_loopback) or is_loopback_name(
        url.host
    )
    if loopback and loopback_ok:
        return url
    if url.scheme != "https":
        raise InvalidArgument(
            "invalid_url",
            "url must be https://"
            + (
                " (http:// only on loopback with PAYGATE_ALLOW_LOOPBACK_WEBHOOKS=true)"
                if mode == "test"
                else ""
            ),
            field="url",
        )
    if url.literal_ip is not None and not address_allowed(url.literal_ip, allow_loopback=False):
        raise InvalidArgument("invalid_url", "url must point to a public address", field="url")
    if url.literal_ip is None and (url.host.endswith(_LOCAL_NAMES) or "." not in url.host):
        raise InvalidArgument("invalid_url", "url must name a public host", field="url")
    return url


def _unmapped(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
    return ip


def address_allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, *, allow_loopback: bool) -> bool:
    """May paygate connect to this address? Only globally routable unicast (private, shared, loopback,
    link-local, where cloud metadata lives, reserved, multicast: never), plus loopback when allowed.
    IPv4-mapped and 6to4 IPv6 forms are judged by the IPv4 address they carry."""
    ip = _unmapped(ip)
    if ip.is_loopback:
        return allow_loopback
    return ip.is_global and not ip.is_multicast and not ip.is_unspecified


def allowed_addresses(addresses: Iterable[str], *, allow_loopback: bool) -> tuple[list[str], list[str]]:
    """Split resolved addresses into (allowed, refused)."""
    ok: list[str] = []
    refused: list[str] = []
    for text in addresses:
        try:
            ip = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            refused.append(text)
            continue
        (ok if address_allowed(ip, allow_loopback=allow_loopback) else refused).append(text)
    return ok, refused


# ---------------------------------------------------------------------------------------------- retries
@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped, for `window_s` from the delivery's first attempt; an
    endpoint failing without a success for `disable_after_s` is disabled."""

    base_s: float = 5.0
    cap_s: float = 3 * 3600.0
    window_s: float = 3 * 86_400.0
    disable_after_s: float = 5 * 86_400.0
    timeout_s: float = 10.0

    def delay(self, attempts: int, rng: Callable[[], float]) -> float:
        """Seconds to wait after the `attempts`-th failed attempt (1-based). Full jitter: uniform in
        [ceiling/2, ceiling] would bunch retries; [0, ceiling] spreads a burst, with a small floor so a
        failing receiver is never hammered."""
        doubling: int = 2 ** min(max(attempts - 1, 0), 30)  # a non-negative power: an int
        ceiling = min(self.cap_s, self.base_s * doubling)
        return max(min(self.base_s, 1.0) / 2, rng() * ceiling)


# ---------------------------------------------------------------------------------------------- refunds
def refund_outcome_event(before: str | None, after: str) -> str | None:
    """The event a refund's write sends: its outcome when the write settled it in a status it was not in
    (`before` None: the refund is new). Statuses move forward only (pending -> succeeded | failed | canceled,
    succeeded -> failed), so each outcome is sent once; a replayed or late report writes the same status and
    sends nothing."""
    if before == after:
        return None
    return REFUND_OUTCOME_EVENTS.get(after)


# ---------------------------------------------------------------------------------------------- disputes
def dispute_event(note: str) -> str | None:
    """The event a dispute's write sends, from its outcome's note; None for a change that is recorded only."""
    return DISPUTE_EVENTS.get(note)


# ---------------------------------------------------------------------------------------------- body
def event_body(event_id: str, event_type: str, created: datetime, mode: str, obj: dict[str, Any]) -> str:
    """The delivered JSON, compact and with a stable key order: every attempt sends the same bytes."""
    return json.dumps(
        {
            "id": event_id,
            "type": event_type,
            "created": int(created.timestamp()),
            "mode": mode,
            "data": {"object": obj},
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


def is_success(status: int) -> bool:
    return 200 <= status < 300
