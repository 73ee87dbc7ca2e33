"""Provider webhooks (contract §4): verify, store, answer 200, then apply in the background.

Reply time: the handler does only what the provider's retry logic depends on (read the body, verify the
signature, parse and normalise once, one INSERT ... ON CONFLICT DO NOTHING committed in autocommit, shared
with the events arriving at the same moment: a group commit) and answers. The row holds the raw body and
the normalised event; whoever applies it reads the normalised one and never parses the body again. The apply
to the session service runs after the reply in a background task; the row is leased to it for a while, and if
the process dies the lease expires and the relay (a worker of every gateway) applies it. So a slow session
service, billing or keys never makes a provider wait, and nothing is lost when one is down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from aiohttp import web

from webhook_gateway.adapters.inbox_repository import InboxRepository, InboxWriter
from webhook_gateway.entrypoints.app_keys import CLIENTS, CONFIG, GAUGE, INLINE, POOL, PROCESSOR, WRITER
from webhook_gateway.entrypoints.webhook_intake import accept, counted, read_body, verified
from webhook_gateway.providers.standard_webhooks import normalize_onecom, verify_standard
from webhook_gateway.providers.stripe_webhooks import normalize_stripe, verify_stripe
from webhook_gateway.service_layer.relay import (
    EventProcessor,
    IngressGauge,
    InlineApplier,
    RelaySettings,
    run_relay,
)

if TYPE_CHECKING:
    from webhook_gateway.entrypoints.gateway_config import GatewayConfig

log = logging.getLogger(__name__)

SHUTDOWN_DRAIN_S = 2.0


async def stripe_webhook(request: web.Request) -> web.Response:
    raw = await read_body(request, "stripe")
    secrets: Sequence[str] = request.app[CONFIG].stripe_webhook_secrets
    envelope = verified(
        request,
        "stripe",
        lambda: verify_stripe(raw, request.headers.get("Stripe-Signature"), secrets, int(time.time())),
    )
    return await accept(request, envelope, normalize_stripe(envelope))


async def onecom_webhook(request: web.Request) -> web.Response:
    raw = await read_body(request, "onecom")
    secrets = {
        "test": request.app[CONFIG].onecom_webhook_secrets,
        "live": request.app[CONFIG].onecom_webhook_secrets_live,
    }
    envelope = verified(
        request, "onecom", lambda: verify_standard(raw, request.headers, secrets, int(time.time()))
    )
    return await accept(request, envelope, normalize_onecom(envelope))


def relay_settings(config: GatewayConfig) -> RelaySettings:
    return RelaySettings(
        apply_deadline_s=config.webhook_apply_deadline_s,
        unknown_session_window_s=config.webhook_unknown_session_window_s,
        retry_base_s=config.webhook_retry_base_s,
        retry_max_s=config.webhook_retry_max_s,
        interval_s=config.webhook_relay_interval_s,
        lease_s=config.webhook_lease_s,
        busy_defer_s=config.webhook_busy_defer_s,
    )


async def _drain_inline(app: web.Application) -> None:
    await app[INLINE].drain(SHUTDOWN_DRAIN_S)


def setup(app: web.Application) -> None:
    config = app[CONFIG]
    processor = EventProcessor(InboxRepository(app[POOL]), app[CLIENTS].session, relay_settings(config))
    app[PROCESSOR] = processor
    app[WRITER] = InboxWriter(InboxRepository(app[POOL]))
    app[GAUGE] = IngressGauge(config.webhook_busy_in_flight)
    app[INLINE] = InlineApplier(processor, config.webhook_max_inline_applies, app[GAUGE])
    app.on_shutdown.append(_drain_inline)
    app.router.add_post("/webhooks/stripe", counted(app, stripe_webhook))
    app.router.add_post("/webhooks/onecom", counted(app, onecom_webhook))


def background(app: web.Application) -> list[Callable[[], Awaitable[None]]]:
    async def relay() -> None:
        await run_relay(app[PROCESSOR], gauge=app[GAUGE])

    return [relay]
