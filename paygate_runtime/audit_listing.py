"""ListAuditEntries (contract §9, GET /v1/audit): one service's audit entries of one merchant, newest first.

Shared by the session, keys and billing servicers: each answers for its own audit table, and the gateway merges
the three answers. The order across services is (at, service, row id), descending, with `at` in UTC
microseconds; a request may start after a position of that order (`has_before`) or after one of this service's
entries (`starting_after_row_id`, whose position is returned so the gateway can ask the other services).

Mode: an entry carries the mode of the object it audits when that object has one (a session's, an invoice's,
a customer key's, an access token's, a merchant secret key's) and none for merchant-wide entries (the merchant
itself, a system entry). A request with a mode gets the entries of that mode and the merchant-wide ones.

Canonical form: each entry carries the exact text its hash covers (`canonical`), built by audit_chain's own
`canonical_bytes` from the columns of the very row listed, so that the API and `paygate audit verify` share one
definition and a client can recompute every hash with the listing alone (routes_audit.py says how).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from paygate.common.v1 import common_pb2
from paygate_runtime.audit_chain import AUDIT_TABLES, VERSION_LINE, canonical_bytes, micros
from paygate_runtime.errors import InvalidArgument, NotFound

# A page is at most 100 entries; the gateway asks one more to know whether another page follows.
MAX_LIMIT = 101
_UUID = "'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'"


@dataclass(frozen=True)
class _Listing:
    table: str  # with its alias "a"
    at_column: str
    select: str  # columns: id, action, object_type, object_id, at, actor, hash, prev_hash, chain_seq, mode


_LISTINGS = {
    "session": _Listing(
        "session.audit_log a",
        "at",
        # An entry about no session (a webhook endpoint's change, a merchant event's redelivery) names its
        # object and mode in its detail; so does one about a quarantine entry of the other mode than its
        # session's (a mode_mismatch), which belongs to the entry's world, as the entry does.
        """a.id, a.action, COALESCE(a.detail ->> 'object_type', 'session') AS object_type,
           COALESCE(a.session_id::text, a.detail ->> 'object_id') AS object_id, a.at, a.actor,
           a.hash, a.prev_hash, a.chain_seq,
           COALESCE(NULLIF(a.detail ->> 'mode', ''),
                    (SELECT s.mode FROM session.sessions s WHERE s.id = a.session_id)) AS mode""",
    ),
    "keys": _Listing(
        "keys.audit_events a",
        "occurred_at",
        f"""a.id, lower(a.event_type) AS action, a.object_type, a.object_id, a.occurred_at AS at,
           a.details ->> 'actor' AS actor, a.hash, a.prev_hash, a.chain_seq,
           COALESCE(
               CASE WHEN a.object_id ~ {_UUID} THEN
                   CASE a.object_type
                       WHEN 'api_key' THEN (SELECT k.mode FROM keys.api_keys k WHERE k.id = a.object_id::uuid)
                       WHEN 'merchant_secret_key' THEN
                           (SELECT k.mode FROM keys.merchant_secret_keys k WHERE k.id = a.object_id::uuid)
                       WHEN 'access_token' THEN
                           (SELECT t.mode FROM keys.access_tokens t WHERE t.jti = a.object_id::uuid)
                       WHEN 'session' THEN
                           (SELECT t.mode FROM keys.access_tokens t WHERE t.session_id = a.object_id::uuid LIMIT 1)
                   END
               END,
               -- An entry about a session's key or link names the session: its keys and link have its mode.
               (SELECT t.mode FROM keys.access_tokens t WHERE t.session_id = a.session_id LIMIT 1),
               (SELECT k.mode FROM keys.api_keys k WHERE k.session_id = a.session_id LIMIT 1)
           ) AS mode""",
    ),
    "billing": _Listing(
        "billing.billing_audit a",
        "at",
        """a.id, a.event AS action,
           CASE a.event WHEN 'credit_note_issued' THEN 'credit_note'
                        WHEN 'billing_profile_updated' THEN 'billing_profile' ELSE 'invoice' END AS object_type,
           -- A profile change names its version (billing_profile_versions), which the entry's hash covers.
           COALESCE(a.invoice_id, a.related_id)::text AS object_id, a.at, a.actor, a.hash, a.prev_hash, a.chain_seq, a.mode""",
    ),
}
SERVICES = tuple(sorted(_LISTINGS))
CANONICAL_VERSION = VERSION_LINE.decode().rstrip("\n")
# The canonical form's columns are selected under a prefix: some of the listing's own names (action, actor, mode)
# are derived values, not the stored columns of that name that the hash covers.
_C = "c_"


def _canonical_columns(service: str) -> str:
    """The columns `canonical_bytes` reads beyond chain_seq, id and at (which the listing selects as stored);
    jsonb as its text output, as the trigger and the verifier read it."""
    spec = AUDIT_TABLES[service]
    return ", ".join(
        f"a.{name}::text AS {_C}{name}" if name in spec.json_fields else f"a.{name} AS {_C}{name}"
        for name in ("chain", *spec.fields)
    )


def _canonical(service: str, r: asyncpg.Record) -> str:
    """The entry's canonical form as text: UTF-8 by construction, so a string field carries it exactly."""
    row = {
        "chain": r[f"{_C}chain"],
        "chain_seq": r["chain_seq"],
        "id": r["id"],
        "at": r["at"],
        **{name: r[f"{_C}{name}"] for name in AUDIT_TABLES[service].fields},
    }
    return canonical_bytes(service, row).decode()


def _sql(service: str, position: str) -> str:
    spec = _LISTINGS[service]
    return f"""SELECT * FROM (SELECT {spec.select}, {_canonical_columns(service)} FROM {spec.table}
                WHERE a.chain = $1 AND {position.format(at=f"a.{spec.at_column}")}
                ORDER BY a.{spec.at_column} DESC, a.id DESC) q
                WHERE $2::text = '' OR q.mode IS NULL OR q.mode = $2::text
                ORDER BY q.at DESC, q.id DESC LIMIT $3"""


def _at(micros_param: str) -> str:
    return f"('epoch'::timestamptz + {micros_param}::bigint * interval '1 microsecond')"


async def list_audit_entries(
    pool: asyncpg.Pool, service: str, request: common_pb2.ListAuditEntriesRequest
) -> common_pb2.ListAuditEntriesResponse:
    if not request.merchant_id:
        raise InvalidArgument("missing_merchant_id", "merchant_id is required", field="merchant_id")
    try:
        chain = str(uuid.UUID(request.merchant_id))
    except ValueError:
        raise InvalidArgument(
            "invalid_merchant_id", "merchant_id must be a UUID", field="merchant_id"
        ) from None
    if request.mode not in ("", "test", "live"):
        raise InvalidArgument("invalid_mode", "mode must be test, live or empty", field="mode")
    limit = request.limit or 20
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgument("invalid_limit", f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    async with pool.acquire() as conn:
        cursor_at_us = 0
        if request.starting_after_row_id:
            # The cursor's entry as this mode lists it: another merchant's entry, or one about an object of
            # the other mode, is no entry of this list and is refused like a missing one.
            cursor = await conn.fetchrow(
                f"""SELECT q.at, q.mode FROM (SELECT {_LISTINGS[service].select} FROM {_LISTINGS[service].table}
                     WHERE a.chain = $1 AND a.id = $2) q""",
                chain,
                request.starting_after_row_id,
            )
            if cursor is None or (request.mode and cursor["mode"] not in (None, request.mode)):
                raise NotFound(
                    "audit_entry_not_found", "starting_after names no audit entry of this merchant and mode"
                )
            cursor_at_us = micros(cursor["at"])
            position = f"({{at}}, a.id) < ({_at('$4')}, $5::bigint)"
            args: tuple[object, ...] = (cursor_at_us, request.starting_after_row_id)
        elif request.has_before:
            at = _at("$4")
            if service < request.before_service:
                position = f"{{at}} <= {at}"
                args = (request.before_at_us,)
            elif service == request.before_service:
                position = f"({{at}}, a.id) < ({at}, $5::bigint)"
                args = (request.before_at_us, request.before_row_id)
            else:
                position = f"{{at}} < {at}"
                args = (request.before_at_us,)
        else:
            position, args = "true", ()
        rows = await conn.fetch(_sql(service, position), chain, request.mode, limit, *args)
    return common_pb2.ListAuditEntriesResponse(
        entries=[
            common_pb2.AuditEntry(
                id=f"{service}_{r['id']}",
                service=service,
                action=r["action"],
                object_type=r["object_type"],
                object_id=r["object_id"] or "",
                at_us=micros(r["at"]),
                actor=r["actor"] or "",
                hash=r["hash"],
                prev_hash=r["prev_hash"],
                mode=r["mode"] or "",
                sequence=r["chain_seq"],
                canonical=_canonical(service, r),
                canonical_version=CANONICAL_VERSION,
            )
            for r in rows
        ],
        cursor_at_us=cursor_at_us,
    )
