"""Merchant quarantine routes: money events that need a person (mismatches, overpayments, double charges,
refunds, disputes), and the merchant's decision on each.

- GET  /v1/quarantine?status=open&limit=20&starting_after=<id>
- POST /v1/quarantine/{id}/resolve  {"decision": "refunded"|"dismissed"|"accepted", "note": "..."}

Both act in the key's mode only: an entry of the other mode is 404 `not_found`, as another merchant's.
"""

from __future__ import annotations

import grpc
from aiohttp import web

from paygate.session.v1 import session_pb2
from paygate_runtime.api_objects import quarantine_entry_json
from webhook_gateway.entrypoints.app_keys import CLIENTS
from webhook_gateway.entrypoints.http_errors import ApiError, raise_for_rpc_error
from webhook_gateway.entrypoints.merchant_auth import authenticate
from webhook_gateway.entrypoints.request_body import canonical_uuid, page_cursor, page_limit, read_json_object

_DECISIONS = {
    "refunded": session_pb2.QUARANTINE_DECISION_REFUNDED,
    "dismissed": session_pb2.QUARANTINE_DECISION_DISMISSED,
    "accepted": session_pb2.QUARANTINE_DECISION_ACCEPTED,
}
_STATUSES = {"open", "refunded", "dismissed", "accepted"}
_MAX_NOTE = 1000


async def list_quarantine(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    status = request.query.get("status", "")
    if "status" in request.query and status not in _STATUSES:  # `?status=` too: say which, or leave it out
        raise ApiError(400, "invalid_status", "status must be open, refunded, dismissed or accepted")
    session_id = ""
    if "session_id" in request.query:
        session_id = canonical_uuid(request.query["session_id"]) or ""
        if not session_id:
            raise ApiError(400, "invalid_session_id", "session_id must be a session's id (a UUID)")
    limit = page_limit(request.query)
    try:
        reply = await request.app[CLIENTS].session.ListQuarantine(
            session_pb2.ListQuarantineRequest(
                **merchant.scope,
                status=status,
                session_id=session_id,
                limit=limit,
                starting_after=page_cursor(request.query),
            )
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    return web.json_response(
        {
            "object": "list",
            "data": [quarantine_entry_json(e) for e in reply.entries],
            "has_more": reply.has_more,
        }
    )


async def resolve_quarantine(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    body = await read_json_object(request)
    decision = body.get("decision")
    if not isinstance(decision, str) or decision not in _DECISIONS:
        raise ApiError(400, "invalid_decision", "decision must be refunded, dismissed or accepted")
    note = body.get("note", "")
    if note is None:
        note = ""
    if not isinstance(note, str) or len(note) > _MAX_NOTE:
        raise ApiError(400, "invalid_note", f"note must be a string of at most {_MAX_NOTE} characters")
    try:
        entry = await request.app[CLIENTS].session.ResolveQuarantine(
            session_pb2.ResolveQuarantineRequest(
                **merchant.scope,
                quarantine_id=request.match_info["id"],
                decision=_DECISIONS[decision],
                note=note,
                actor=merchant.api_actor,
            )
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    return web.json_response(quarantine_entry_json(entry))


def setup(app: web.Application) -> None:
    app.router.add_get("/v1/quarantine", list_quarantine)
    app.router.add_post("/v1/quarantine/{id}/resolve", resolve_quarantine)
