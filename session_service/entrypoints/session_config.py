"""Session service configuration: the settings read from the environment (PAYGATE_*), apart from the
process assembly so that the gRPC adapters can name `SessionConfig` without importing `main`."""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field

from paygate_runtime.config import ConfigError, Env
from paygate_runtime.crypto.secret_box import SecretBox
from paygate_runtime.smtp import load_smtp_settings
from session_service.adapters.mailer import SmtpSettings
from session_service.domain.fulfilment import BackoffPolicy
from session_service.service_layer.merchant_events import load_secret_box
from session_service.service_layer.outbox_dispatcher import DispatcherSettings
from session_service.service_layer.sweeper import SessionChainSettings, load_session_chain_settings
from session_service.service_layer.webhook_delivery import WebhookSettings, load_webhook_settings


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
