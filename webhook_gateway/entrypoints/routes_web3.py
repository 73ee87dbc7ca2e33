"""On-chain payments at the edge: `POST /webhooks/web3` (contract §4), the chain watchers (one per mode with
a chain, contract §6a), the merchant's view of a session's deposits and `GET /v1/chain/status`.

The webhook is handled like every other provider's (webhook_intake.accept): verified with Standard
Webhooks, committed to the inbox, answered 200, then applied in the background. Only the apply differs: the
`web3` handler registered on the shared EventProcessor checks the tx on the chain (Web3Service) instead of
believing the body. It must be set up after routes_webhooks, which creates that processor.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from aiohttp import web

from paygate.session.v1 import session_pb2
from paygate_runtime.api_objects import utc_millis
from webhook_gateway.chain.assets import MerchantTokens
from webhook_gateway.chain.deposits_repository import AddressesRepository, DepositsRepository
from webhook_gateway.chain.untraced_blocks import UntracedBlockRow, UntracedBlocksRepository
from webhook_gateway.chain.verification import ChainUnavailable
from webhook_gateway.chain.watcher import ChainWatcher, WatcherSettings
from webhook_gateway.chain.web3_service import (
    ChainSettings,
    Web3Router,
    Web3Service,
    chain_guard,
    connect_web3,
)
from webhook_gateway.entrypoints.app_keys import CLIENTS, CONFIG, POOL, PROCESSOR, WEB3_SERVICES
from webhook_gateway.entrypoints.deposit_objects import deposit_json
from webhook_gateway.entrypoints.http_errors import ApiError, raise_for_rpc_error
from webhook_gateway.entrypoints.merchant_auth import authenticate
from webhook_gateway.entrypoints.webhook_intake import accept, counted, read_body, verified
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
    raw = await read_body(request, PROVIDER)
    # Per mode: the secret that verifies a hint says whether it is a test or a live event (contract §6a).
    secrets = {
        "test": request.app[CONFIG].web3_webhook_secrets,
        "live": request.app[CONFIG].web3_webhook_secrets_live,
    }
    # verified() counts a refusal as every provider's route does (paygate_webhook_verification_failures_total).
    envelope = verified(
        request, PROVIDER, lambda: verify_standard(raw, request.headers, secrets, int(time.time()))
    )
    hint = parse_web3_hint(envelope)
    return await accept(request, envelope, normalized_hint(hint, envelope.event_type))


async def session_deposits(request: web.Request) -> web.Response:
    """`GET /v1/sessions/{id}/deposits`: every transfer recorded for one of the caller's web3 sessions (its
    merchant AND its key's mode), with its stage: `seen` (on chain, fewer confirmations than the session
    needs), `confirmed`, or `reorged_out` (its block left the canonical chain; it counts for nothing)."""
    merchant = await authenticate(request)
    session_id = request.match_info["id"]
    try:
        uuid.UUID(session_id)
    except ValueError:
        raise ApiError(404, "not_found", "no such session") from None
    try:
        session = await request.app[CLIENTS].session.GetSession(
            session_pb2.GetSessionRequest(session_id=session_id, **merchant.scope)
        )
    except grpc.aio.AioRpcError as error:
        raise_for_rpc_error(error)
    rows = await DepositsRepository(request.app[POOL]).for_session(session_id)
    needed = max(1, session.payment.min_confirmations) if session.HasField("payment") else 1
    head: int | None = None
    if rows:
        status = await AddressesRepository(request.app[POOL]).watcher_status(rows[0].chain_id)
        head = status.head if status is not None else None
        service = request.app[WEB3_SERVICES].get(merchant.mode_name)
        if (head is None or not request.app[CONFIG].chain_watcher_enabled) and service and service.w3:
            # No watcher keeps the head: ask the node (a failure leaves the stages to the recorded block).
            with contextlib.suppress(ChainUnavailable), chain_guard():
                head = await service.w3.eth.block_number
    return web.json_response(
        {
            "session_id": session_id,
            "chain_head": head,
            "min_confirmations": needed,
            "deposits": [
                deposit_json(
                    row, head, needed, session_asset=(session.amount.currency, session.amount.exponent)
                )
                for row in rows
            ],
        }
    )


async def chain_status(request: web.Request) -> web.Response:
    """`GET /v1/chain/status`: the chain of the caller's mode as the watcher sees it, the caller's own
    deposit addresses whose reads are failing (never another merchant's), and the chain's blocks the node
    could not trace (chain facts only: which sessions they touched is not shown)."""
    merchant = await authenticate(request)
    mode = merchant.mode_name
    service = request.app[WEB3_SERVICES].get(mode)
    if service is None or service.settings is None or service.w3 is None:
        return web.json_response({"mode": mode, "configured": False, "chain_id": None})
    chain_id = service.settings.chain_id
    addresses = AddressesRepository(request.app[POOL])
    status = await addresses.watcher_status(chain_id)
    node_head: int | None = None
    node_error: str | None = None
    try:
        with chain_guard():
            node_head = await service.w3.eth.block_number
    except ChainUnavailable as exc:
        node_error = str(exc)[:200]
    failing = await addresses.failing(chain_id, merchant.merchant_id)
    untraced = await UntracedBlocksRepository(request.app[POOL]).open_blocks(chain_id)
    scanned = status.last_block if status is not None else None
    head = node_head if node_head is not None else (status.head if status is not None else None)
    return web.json_response(
        {
            "mode": mode,
            "configured": True,
            "chain_id": chain_id,
            "node_reachable": node_error is None,
            "node_error": node_error,
            "head": head,
            "scanned_block": scanned,
            "confirmed_height": status.confirmed_height if status is not None else None,
            "lag_blocks": max(0, head - scanned) if head is not None and scanned is not None else None,
            "last_pass_at": utc_millis(status.updated_at) if status is not None else None,
            "internal_transfers": status.internal_transfers if status is not None else None,
            "watcher_enabled": request.app[CONFIG].chain_watcher_enabled,
            "failing_addresses": [
                {
                    "session_id": a.session_id,
                    "deposit_address": a.deposit_address,
                    "failures": a.failures,
                    "last_error": a.last_error,
                    "last_error_at": utc_millis(a.last_error_at) if a.last_error_at else None,
                    "next_attempt_at": utc_millis(a.next_attempt_at) if a.next_attempt_at else None,
                }
                for a in failing
            ],
            "untraced_blocks": [untraced_json(b) for b in untraced],
        }
    )


def untraced_json(block: UntracedBlockRow) -> dict[str, Any]:
    return {
        "block_number": block.block_number,
        "block_hash": block.block_hash,
        "failures": block.failures,
        "last_error": block.last_error,
        "first_failed_at": utc_millis(block.first_failed_at),
        "last_error_at": utc_millis(block.last_error_at),
        "next_attempt_at": utc_millis(block.next_attempt_at),
    }


def build_services(app: web.Application) -> dict[str, Web3Service]:
    """One Web3Service per mode with a chain (contract §6a)."""
    config = app[CONFIG]
    chain = config.chain
    services: dict[str, Web3Service] = {}
    for mode, node in chain.nodes.chains.items():
        settings = ChainSettings(
            chain_id=node.chain_id,
            rpc_url=node.rpc_url,
            rpc_timeout_s=config.chain_rpc_timeout_s,
            tx_wait_s=config.chain_tx_wait_s,
            reorg_depth=config.chain_reorg_depth,
            apply_deadline_s=max(config.webhook_apply_deadline_s, 5.0),
            mode=mode,
            internal_transfers=chain.internal_transfers,
            creation_skew_s=chain.creation_skew_s,
            error_backoff_base_s=chain.error_backoff_base_s,
            error_backoff_cap_s=chain.error_backoff_cap_s,
        )
        w3 = connect_web3(node.rpc_url, config.chain_rpc_timeout_s)
        services[mode] = Web3Service(
            w3,
            app[CLIENTS].session,
            DepositsRepository(app[POOL]),
            settings,
            tokens=MerchantTokens(app[CLIENTS].session, deadline_s=settings.apply_deadline_s),
        )
    return services


def build_service(app: web.Application) -> Web3Service:
    """The test chain's service (or an unconfigured one): what code that knows one chain talks to."""
    services = build_services(app)
    app[WEB3_SERVICES] = services
    return services.get("test") or Web3Service(
        None, app[CLIENTS].session, DepositsRepository(app[POOL]), None
    )


async def _close_web3(app: web.Application) -> None:
    for service in {id(s): s for s in (app[WEB3], *app[WEB3_SERVICES].values())}.values():
        await service.close()


def setup(app: web.Application) -> None:
    if PROCESSOR not in app:
        raise RuntimeError("routes_web3 must be set up after routes_webhooks (it shares its EventProcessor)")
    restore_recursion_limit()
    service = build_service(app)
    app[WEB3] = service
    router = Web3Router(app[WEB3_SERVICES], service)
    app[PROCESSOR].register(PROVIDER, router.handle_inbox_event)
    app.on_cleanup.append(_close_web3)
    app.router.add_post("/webhooks/web3", counted(app, web3_webhook))
    app.router.add_get("/v1/sessions/{id}/deposits", session_deposits)
    app.router.add_get("/v1/chain/status", chain_status)


def background(app: web.Application) -> list[Callable[[], Awaitable[None]]]:
    config = app[CONFIG]
    if not config.chain_watcher_enabled:
        return []
    workers: list[Callable[[], Awaitable[None]]] = []
    for service in app[WEB3_SERVICES].values():
        if not service.configured:
            continue
        assert service.settings is not None
        watcher = ChainWatcher(
            service,
            service.repo,
            app[POOL],
            service.settings.chain_id,
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
        workers.append(watcher.run)
    return workers
