"""On-chain payments at the edge: `POST /webhooks/web3` (contract §4), the chain watcher, and the merchant's
view of a session's deposits.

The webhook is handled like every other provider's (routes_webhooks.accept): verified with Standard
Webhooks, committed to the inbox, answered 200, then applied in the background. Only the apply differs: the
`web3` handler registered on the shared EventProcessor checks the tx on the chain (Web3Service) instead of
believing the body. It must be set up after routes_webhooks, which creates that processor.
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from aiohttp import web

from paygate.session.v1 import session_pb2
from webhook_gateway.chain.deposits_repository import DepositsRepository
from webhook_gateway.chain.watcher import ChainWatcher, WatcherSettings
from webhook_gateway.chain.web3_service import ChainSettings, Web3Service, connect_web3
from webhook_gateway.entrypoints import routes_webhooks
from webhook_gateway.entrypoints.app_keys import CLIENTS, CONFIG, POOL
from webhook_gateway.entrypoints.http_errors import ApiError, raise_for_rpc_error
from webhook_gateway.entrypoints.merchant_auth import authenticate
from webhook_gateway.providers.errors import WebhookRejected
from webhook_gateway.providers.normalized import NormalizedEvent
from webhook_gateway.providers.standard_webhooks import Web3Hint, parse_web3_hint, verify_standard

log = logging.getLogger(__name__)

PROVIDER = "web3"
WEB3: web.AppKey[Web3Service] = web.AppKey("web3_service")
# Python's default. Importing web3 pulls in py_ecc, which raises the interpreter's recursion limit to 100 000
# for its own maths (unused here). A server that parses untrusted JSON needs the default back: with it a deeply
# nested body ends in a clean RecursionError (400 invalid_json), not in a C stack overflow that kills the process.
GATEWAY_RECURSION_LIMIT = 1000


def restore_recursion_limit() -> None:
    if sys.getrecursionlimit() > GATEWAY_RECURSION_LIMIT:
        sys.setrecursionlimit(GATEWAY_RECURSION_LIMIT)


def normalized_hint(hint: Web3Hint, event_type: str) -> NormalizedEvent:
    """The inbox's provider-neutral shape of a hint. `pending` is the most a hint can mean before the chain
    is asked; the web3 handler decides the real outcome from the chain."""
    common: dict[str, Any] = {
        "provider": PROVIDER,
        "event_id": hint.event_id,
        "event_type": event_type,
        "session_id": hint.session_id,
        "provider_reference": hint.tx_hash,
        "amount_minor": None,
        "currency": None,
        "livemode": None,
        "occurred_at": None,
    }
    if hint.ignored:
        return NormalizedEvent(kind=None, ignore_reason=hint.ignore_reason, **common)
    if hint.session_id is None:
        return NormalizedEvent(kind=None, ignore_reason="no_session_reference", **common)
    return NormalizedEvent(kind="pending", ignore_reason=None, **common)


async def web3_webhook(request: web.Request) -> web.Response:
    raw = await routes_webhooks.read_body(request, PROVIDER)
    secrets = request.app[CONFIG].web3_webhook_secrets
    try:
        envelope = verify_standard(raw, request.headers, secrets, int(time.time()))
    except WebhookRejected as rejected:
        raise ApiError(400, rejected.code, rejected.message) from None
    except ValueError:
        log.error("web3 webhook signing configuration missing or invalid")
        raise ApiError(503, "webhook_not_configured", "web3 webhooks are not configured") from None
    hint = parse_web3_hint(envelope)
    return await routes_webhooks.accept(request, envelope, normalized_hint(hint, envelope.event_type))


async def session_deposits(request: web.Request) -> web.Response:
    """`GET /v1/sessions/{id}/deposits`: the ledger rows of one of the merchant's web3 sessions."""
    merchant = await authenticate(request)
    session_id = request.match_info["id"]
    try:
        uuid.UUID(session_id)
    except ValueError:
        raise ApiError(404, "not_found", "no such session") from None
    try:
        await request.app[CLIENTS].session.GetSession(
            session_pb2.GetSessionRequest(session_id=session_id, merchant_id=merchant.merchant_id)
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    rows = await DepositsRepository(request.app[POOL]).for_session(session_id)
    return web.json_response(
        {
            "session_id": session_id,
            "deposits": [
                {
                    "chain_id": row.chain_id,
                    "tx_hash": row.tx_hash,
                    "log_index": row.log_index,
                    "token": row.token,
                    "from": row.from_address,
                    "to": row.deposit_address,
                    "amount_minor": row.amount_minor,
                    "block_number": row.block_number,
                    "block_hash": row.block_hash,
                    "block_timestamp": row.block_timestamp,
                    "canonical": row.canonical,
                    "source": row.source,
                    "counted_in_payment": row.claimed,
                    "reported_as": row.reported_as,
                }
                for row in rows
            ],
        }
    )


def build_service(app: web.Application) -> Web3Service:
    config = app[CONFIG]
    settings: ChainSettings | None = None
    w3 = None
    if config.chain_rpc_url and config.chain_id:
        settings = ChainSettings(
            chain_id=config.chain_id,
            rpc_url=config.chain_rpc_url,
            rpc_timeout_s=config.chain_rpc_timeout_s,
            tx_wait_s=config.chain_tx_wait_s,
            reorg_depth=config.chain_reorg_depth,
            apply_deadline_s=max(config.webhook_apply_deadline_s, 5.0),
        )
        w3 = connect_web3(config.chain_rpc_url, config.chain_rpc_timeout_s)
    return Web3Service(w3, app[CLIENTS].session, DepositsRepository(app[POOL]), settings)


async def _close_web3(app: web.Application) -> None:
    await app[WEB3].close()


def setup(app: web.Application) -> None:
    if routes_webhooks.PROCESSOR not in app:
        raise RuntimeError("routes_web3 must be set up after routes_webhooks (it shares its EventProcessor)")
    restore_recursion_limit()
    service = build_service(app)
    app[WEB3] = service
    app[routes_webhooks.PROCESSOR].register(PROVIDER, service.handle_inbox_event)
    app.on_cleanup.append(_close_web3)
    app.router.add_post("/webhooks/web3", routes_webhooks.counted(app, web3_webhook))
    app.router.add_get("/v1/sessions/{id}/deposits", session_deposits)


def background(app: web.Application) -> list[Callable[[], Awaitable[None]]]:
    config = app[CONFIG]
    service = app[WEB3]
    if not service.configured or not config.chain_watcher_enabled:
        return []
    assert config.chain_id is not None
    watcher = ChainWatcher(
        service,
        service.repo,
        app[POOL],
        config.chain_id,
        WatcherSettings(
            poll_interval_s=config.chain_poll_interval_s,
            rescan_blocks=config.chain_rescan_blocks,
            max_blocks_per_pass=config.chain_max_blocks_per_pass,
            late_window_s=config.chain_late_window_s,
            start_block=config.chain_start_block,
            # A standby replica asks for the lock this often; a few polls' worth keeps a takeover quick.
            lock_retry_s=min(5.0, max(0.5, config.chain_poll_interval_s * 10)),
        ),
    )

    async def watch() -> None:
        await watcher.run()

    return [watch]
