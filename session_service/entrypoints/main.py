"""Session service process: configuration, and assembly of its gRPC server with the background workers
(outbox dispatcher, expiry sweeper)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import asyncpg

from paygate.session.v1 import session_pb2_grpc
from paygate_runtime.config import ConfigError, Env
from paygate_runtime.grpc_server import GrpcServiceSpec
from paygate_runtime.settings import CommonSettings
from session_service.adapters.downstream import Downstream
from session_service.adapters.mailer import SmtpMailer, SmtpSettings
from session_service.domain.fulfilment import BackoffPolicy
from session_service.entrypoints.grpc_servicer import SessionServicer
from session_service.service_layer.outbox_dispatcher import DispatcherSettings, OutboxDispatcher
from session_service.service_layer.sweeper import run_sweeper


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


def load_config(env: Env) -> SessionConfig:
    host = env.optional("PAYGATE_SMTP_HOST")
    smtp = None
    if host:
        sender = env.str("PAYGATE_MAIL_FROM", "paygate@localhost")
        if "@" not in sender:
            raise ConfigError("PAYGATE_MAIL_FROM", f"must be an email address, got {sender!r}")
        smtp = SmtpSettings(host, env.port("PAYGATE_SMTP_PORT", 25), sender)
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
    )


async def assemble(config: SessionConfig, common: CommonSettings, pool: asyncpg.Pool) -> GrpcServiceSpec:
    servicer = SessionServicer(pool, config)
    downstream = Downstream(
        common.billing_addr, common.keys_addr, tls=common.tls, deadline_s=common.rpc_deadline_s
    )
    dispatcher = OutboxDispatcher(
        pool,
        common.database_url,
        downstream,
        SmtpMailer(config.smtp) if config.smtp else None,
        config.dispatcher,
    )
    background = []
    if config.workers:
        background = [dispatcher.run, functools.partial(run_sweeper, pool, config.sweep_interval_s)]
    return GrpcServiceSpec(
        name="session",
        servicers=[
            (
                session_pb2_grpc.add_SessionServiceServicer_to_server,
                servicer,
                "paygate.session.v1.SessionService",
            )
        ],
        background=background,
        on_stop=[downstream.close],
    )
