"""Session service process: configuration, and assembly of its gRPC server with the background workers
(outbox dispatcher, expiry sweeper)."""

from __future__ import annotations

import binascii
import functools
import logging
from dataclasses import dataclass, field

import asyncpg

from paygate.session.v1 import merchant_events_pb2_grpc, session_pb2_grpc
from paygate_runtime.config import ConfigError, Env
from paygate_runtime.crypto.secret_box import SecretBox
from paygate_runtime.grpc_server import GrpcServiceSpec
from paygate_runtime.metrics import ServiceMetrics
from paygate_runtime.settings import CommonSettings
from paygate_runtime.smtp import load_smtp_settings
from session_service.adapters.downstream import Downstream
from session_service.adapters.mailer import SmtpMailer, SmtpSettings
from session_service.domain.fulfilment import BackoffPolicy
from session_service.entrypoints.grpc_servicer import SessionServicer
from session_service.entrypoints.merchant_events_servicer import MerchantEventsServicer
from session_service.entrypoints.metrics import (
    fulfilment_histogram,
    merchant_webhook_metrics,
    register_session_metrics,
)
from session_service.service_layer.merchant_events import load_secret_box, seal_plain_secrets
from session_service.service_layer.outbox_dispatcher import DispatcherSettings, OutboxDispatcher
from session_service.service_layer.refund_effects import RefundEffects
from session_service.service_layer.sweeper import (
    SessionChainSettings,
    load_session_chain_settings,
    run_sweeper,
)
from session_service.service_layer.webhook_delivery import (
    WebhookDeliveryWorker,
    WebhookSettings,
    billing_fetcher,
    load_webhook_settings,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionConfig:
    # Largest amount a session may ask for, in major units of its currency.
    max_amount_major: int
    smtp: SmtpSettings | None
    dispatcher: DispatcherSettings
    sweep_interval_s: float
    # Most events one ApplyPaymentEvent group commit may hold (1: every event commits on its own).
    event_group_max: int = 64
    # Off only for tools that want the RPCs without background work (benchmarks of one part).
    workers: bool = True
    # Chains per mode, the web3 pending grace and the payment-settings chain checks (issue 13).
    chain: SessionChainSettings = field(default_factory=SessionChainSettings)
    # Merchant events (contract §7): the delivery worker and the endpoint URL rules.
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    # Seals merchant webhook endpoints' signing secrets at rest (PAYGATE_SESSION_ENCRYPTION_KEYS).
    secret_box: SecretBox | None = None


def load_config(env: Env) -> SessionConfig:
    # PAYGATE_SMTP_* (STARTTLS policy and credentials included): paygate_runtime.smtp.
    smtp = load_smtp_settings(env)
    encryption_keys = env.optional("PAYGATE_SESSION_ENCRYPTION_KEYS")
    if encryption_keys is None:
        raise ConfigError("PAYGATE_SESSION_ENCRYPTION_KEYS", "is required but not set")
    try:
        secret_box = load_secret_box(encryption_keys)
    except (ValueError, binascii.Error) as error:
        raise ConfigError("PAYGATE_SESSION_ENCRYPTION_KEYS", str(error)) from None
    base_ms = env.int("PAYGATE_FULFILMENT_BACKOFF_BASE_MS", 500, minimum=1, maximum=60_000)
    cap_ms = env.int("PAYGATE_FULFILMENT_BACKOFF_CAP_MS", 300_000, minimum=base_ms, maximum=3_600_000)
    return SessionConfig(
        max_amount_major=env.int("PAYGATE_MAX_AMOUNT", 1_000_000, minimum=1),
        smtp=smtp,
        dispatcher=DispatcherSettings(
            lease_s=env.millis("PAYGATE_OUTBOX_LEASE_MS", 30_000, minimum=100, maximum=3_600_000),
            poll_s=env.millis("PAYGATE_OUTBOX_POLL_MS", 1000, minimum=10, maximum=60_000),
            concurrency=env.int("PAYGATE_OUTBOX_CONCURRENCY", 64, minimum=1, maximum=1000),
            policy=BackoffPolicy(base_seconds=base_ms / 1000, cap_seconds=cap_ms / 1000),
        ),
        sweep_interval_s=env.millis("PAYGATE_SWEEP_INTERVAL_MS", 5000, minimum=10, maximum=3_600_000),
        workers=env.bool("PAYGATE_SESSION_WORKERS", True),
        event_group_max=env.int("PAYGATE_EVENT_GROUP_MAX", 64, minimum=1, maximum=1000),
        chain=load_session_chain_settings(env),
        webhooks=load_webhook_settings(env),
        secret_box=secret_box,
    )


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
    background = []
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
