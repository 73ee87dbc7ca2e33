"""Session service process: assembly of its gRPC server with the background workers
(outbox dispatcher, expiry sweeper)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from paygate.session.v1 import merchant_events_pb2_grpc, session_pb2_grpc
from paygate_runtime.config import ConfigError
from paygate_runtime.grpc_server import GrpcServiceSpec
from paygate_runtime.metrics import ServiceMetrics
from paygate_runtime.settings import CommonSettings
from session_service.adapters.downstream import Downstream
from session_service.adapters.mailer import SmtpMailer
from session_service.entrypoints.grpc_servicer import SessionServicer
from session_service.entrypoints.merchant_events_servicer import MerchantEventsServicer
from session_service.entrypoints.metrics import (
    fulfilment_histogram,
    merchant_webhook_metrics,
    register_session_metrics,
)
from session_service.entrypoints.session_config import SessionConfig, load_config
from session_service.service_layer.merchant_events import seal_plain_secrets
from session_service.service_layer.outbox_dispatcher import OutboxDispatcher
from session_service.service_layer.refund_effects import RefundEffects
from session_service.service_layer.sweeper import run_sweeper
from session_service.service_layer.webhook_delivery import WebhookDeliveryWorker, billing_fetcher

# `paygate serve session` calls load_config and assemble on this module (paygate_runtime.serve).
__all__ = ["SessionConfig", "assemble", "load_config"]

log = logging.getLogger(__name__)


async def assemble(config: SessionConfig, common: CommonSettings, pool: asyncpg.Pool) -> GrpcServiceSpec:
    if config.secret_box is None:
        raise ConfigError("PAYGATE_SESSION_ENCRYPTION_KEYS", "is required but not set")
    # Before anything serves or delivers: endpoint secrets still stored in plain text get sealed.
    sealed = await seal_plain_secrets(pool, config.secret_box)
    if sealed:
        log.info("sealed plain webhook endpoint secrets", extra={"count": sealed})
    servicer = SessionServicer(pool, config)
    downstream = Downstream(
        common.billing_addr, common.keys_addr, tls=common.tls, deadline_s=common.rpc_deadline_s
    )
    # Each mailer keeps a small pool of SMTP connections; both are closed (QUIT) when the service stops.
    customer_mailer = SmtpMailer(config.smtp) if config.smtp else None
    notice_mailer = SmtpMailer(config.smtp) if config.smtp else None
    mailers = [mailer for mailer in (customer_mailer, notice_mailer) if mailer is not None]
    dispatcher = OutboxDispatcher(
        pool,
        common.database_url,
        downstream,
        customer_mailer,
        config.dispatcher,
    )
    fetch_invoice = billing_fetcher(downstream.billing)
    webhooks = WebhookDeliveryWorker(
        pool,
        common.database_url,
        config.webhooks,
        fetch_invoice=fetch_invoice,
        billing=downstream.billing,
        mailer=notice_mailer,
        secret_box=config.secret_box,
    )
    # Credit notes and customer-key access after refunds and disputes (issue 19).
    effects = RefundEffects(pool, downstream)
    background: list[Callable[[], Awaitable[None]]] = []
    if config.workers:
        sweeper = functools.partial(
            run_sweeper, pool, config.sweep_interval_s, pending_grace_s=config.chain.pending_grace_s
        )
        background = [dispatcher.run, sweeper, webhooks.run, effects.run]
        servicer.refund_wake = effects.wake
    metrics = ServiceMetrics("session")
    register_session_metrics(metrics, pool)
    dispatcher.fulfilment_seconds = fulfilment_histogram(metrics)
    webhooks.deliveries_total, webhooks.delivery_seconds = merchant_webhook_metrics(metrics)
    return GrpcServiceSpec(
        name="session",
        servicers=[
            (
                session_pb2_grpc.add_SessionServiceServicer_to_server,
                servicer,
                "paygate.session.v1.SessionService",
            ),
            (
                merchant_events_pb2_grpc.add_MerchantEventsServiceServicer_to_server,
                MerchantEventsServicer(
                    pool,
                    allow_loopback=config.webhooks.allow_loopback,
                    fetch_invoice=fetch_invoice,
                    secret_box=config.secret_box,
                ),
                "paygate.session.v1.MerchantEventsService",
            ),
        ],
        background=background,
        on_stop=[downstream.close, *(mailer.aclose for mailer in mailers)],
        metrics=metrics,
    )
