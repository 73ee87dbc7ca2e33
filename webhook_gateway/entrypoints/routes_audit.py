"""The merchant's audit trail across services (contract §9, issue 20).

- GET /v1/audit?limit=20&starting_after=<entry id>

Lists the audit entries of the session, keys and billing services for the calling merchant, newest first:
each entry with its place in its service's hash chain (`sequence`, `hash`, `prev_hash`) and the exact text its
hash covers (`canonical`, with `canonical_version`), so a merchant's auditor can recompute every hash from
this listing alone (`paygate audit verify` does the whole walk in the database for operators).

How a client checks the listing (contract §9, "hash = SHA-256 over the entry's canonical form and prev_hash"):

- One entry: `sha256(canonical.encode("utf-8") + bytes.fromhex(prev_hash)).hexdigest() == hash`. The canonical
  text is "paygate-audit-v1\\n" (the `canonical_version` line) and then one line per field, `<name>=~` for NULL
  or `<name>=<UTF-8 byte length>:<text>` (the length lets a text hold newlines); the fields `service`, `chain`
  (the merchant id), `seq`, `id` and `at` (UTC microseconds) must be the entry's own `service`, the merchant,
  `sequence`, the row id after the "<service>_" of `id`, and `at`, or the text is some other entry's.
  The remaining fields are the service's stored columns (paygate_runtime/audit_chain.py `AUDIT_TABLES`), jsonb
  as PostgreSQL's text output: the text is hashed as given, never re-serialised.
- The links: each service's entries of one merchant form one chain (its `chain` line). Sorted by `sequence`,
  an entry whose number follows the previous listed one by exactly 1 must have `prev_hash` equal to that
  entry's `hash`; entry 1 has 64 zeros as `prev_hash`.
- Gaps: a key lists its own mode's entries and the merchant-wide ones, so the other mode's entries are missing
  numbers. Across a gap the auditor can still recompute each listed entry's hash, but cannot check the link
  (the prev_hash of the entry after the gap names a hash that is not listed), nor tell the other mode's
  entries from removed ones: both modes' listings together (the other mode's key) link whole, and the
  operator's `paygate audit verify` walks every entry. Removal of the newest entries leaves no gap at all:
  compare the last `hash` with a head paygate anchored.

The gateway asks each service for one page after the cursor (ListAuditEntries) and merges the answers in the
order (at, service, row id), descending; an entry id is "<service>_<row id>", and a cursor of one service is
first resolved by that service to its position in that order, from which the others continue.

A cursor that is malformed or names no entry of this list (another merchant's entry, an entry about an object
of the other mode, a missing one) is 400 `invalid_starting_after`, the one answer for all of them.

Mode: entries about an object with a mode (a session, an invoice or credit note, a customer key, an access
token, a merchant secret key) are listed for a key of that mode only; merchant-wide entries (the merchant
itself, entries about no object with a mode) for both modes.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from aiohttp import web

from paygate.common.v1 import common_pb2
from webhook_gateway.entrypoints.app_keys import CLIENTS
from webhook_gateway.entrypoints.http_errors import raise_for_rpc_error
from webhook_gateway.entrypoints.merchant_auth import authenticate
from webhook_gateway.entrypoints.request_body import cursor_refused, page_limit

SERVICES = ("billing", "keys", "session")
_ENTRY_ID = re.compile(r"(billing|keys|session)_([1-9][0-9]{0,18})")
# Row ids are int64; the largest is kept free so that the entry right after a cursor is always addressable.
_MAX_ROW_ID = 2**63 - 2
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _row_id(entry: common_pb2.AuditEntry) -> int:
    return int(entry.id.rpartition("_")[2])


def _order_key(entry: common_pb2.AuditEntry) -> tuple[int, str, int]:
    return (entry.at_us, entry.service, _row_id(entry))


def entry_json(entry: common_pb2.AuditEntry) -> dict[str, Any]:
    at = _EPOCH + timedelta(microseconds=entry.at_us)
    return {
        "id": entry.id,
        "object": "audit_entry",
        "service": entry.service,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id or None,
        "at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": entry.actor or None,
        "mode": entry.mode or None,
        "sequence": entry.sequence,
        "hash": entry.hash,
        "prev_hash": entry.prev_hash,
        "canonical": entry.canonical,
        "canonical_version": entry.canonical_version,
    }


async def list_audit(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    limit = page_limit(request.query)
    cursor = request.query.get("starting_after", "")
    match = _ENTRY_ID.fullmatch(cursor) if cursor else None
    if cursor and (match is None or int(match.group(2)) > _MAX_ROW_ID):
        raise cursor_refused()
    clients = request.app[CLIENTS]
    # Three stub classes with one RPC in common (the generated stubs are untyped): Any.
    stubs: dict[str, Any] = {"session": clients.session, "billing": clients.billing, "keys": clients.keys}
    # One more than a page from each service: the merge then knows whether a next page exists.
    base: dict[str, Any] = {
        "merchant_id": merchant.merchant_id,
        "mode": merchant.mode_name,
        "limit": limit + 1,
    }
    entries: list[common_pb2.AuditEntry] = []
    try:
        if match is not None:
            owner, row_id = match.group(1), int(match.group(2))
            try:
                first = await stubs[owner].ListAuditEntries(
                    common_pb2.ListAuditEntriesRequest(**base, starting_after_row_id=row_id)
                )
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.NOT_FOUND:  # no entry of this merchant and mode
                    raise cursor_refused() from None
                raise
            entries.extend(first.entries)
            position: dict[str, Any] = {
                "has_before": True,
                "before_at_us": first.cursor_at_us,
                "before_service": owner,
                "before_row_id": row_id,
            }
            others = [s for s in SERVICES if s != owner]
        else:
            position, others = {}, list(SERVICES)
        replies = await asyncio.gather(
            *(
                stubs[s].ListAuditEntries(common_pb2.ListAuditEntriesRequest(**base, **position))
                for s in others
            )
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    for reply in replies:
        entries.extend(reply.entries)
    entries.sort(key=_order_key, reverse=True)
    return web.json_response(
        {"object": "list", "data": [entry_json(e) for e in entries[:limit]], "has_more": len(entries) > limit}
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/v1/audit", list_audit)
