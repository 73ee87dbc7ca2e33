"""Typed keys for what the gateway's aiohttp application carries: one key per dependency.

The composition root (entrypoints.app) builds every dependency once and stores it here; a handler reads the
one it needs (`request.app[PROVIDER_CHECKOUTS]`), typed, and never builds one itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
from aiohttp import web

if TYPE_CHECKING:
    from webhook_gateway.adapters.billing_readiness import LiveBillingReadiness
    from webhook_gateway.adapters.dashboard_sessions import DashboardSessionStore
    from webhook_gateway.adapters.idempotency_store import IdempotencyStore
    from webhook_gateway.adapters.inbox_repository import InboxRepository, InboxWriter
    from webhook_gateway.adapters.onecom_api import ProviderMetrics
    from webhook_gateway.adapters.portal_sessions_repository import PortalSessionsRepository
    from webhook_gateway.adapters.service_clients import ServiceClients
    from webhook_gateway.chain.deposits_repository import AddressesRepository, DepositsRepository
    from webhook_gateway.chain.web3_service import Web3Service
    from webhook_gateway.entrypoints.gateway_config import GatewayConfig
    from webhook_gateway.entrypoints.portal_support import SupportMailSettings
    from webhook_gateway.service_layer.provider_checkouts import ProviderCheckouts
    from webhook_gateway.service_layer.reconciliation import Reconciler
    from webhook_gateway.service_layer.refund_asks import RefundAsker
    from webhook_gateway.service_layer.relay import EventProcessor, IngressGauge, InlineApplier

CLIENTS: web.AppKey[ServiceClients] = web.AppKey("clients")
POOL: web.AppKey[asyncpg.Pool] = web.AppKey("pool")
CONFIG: web.AppKey[GatewayConfig] = web.AppKey("config")

PROVIDER_METRICS: web.AppKey[ProviderMetrics] = web.AppKey("provider_metrics")
PROVIDER_CHECKOUTS: web.AppKey[ProviderCheckouts] = web.AppKey("provider_checkouts")
RECONCILER: web.AppKey[Reconciler] = web.AppKey("provider_reconciler")
REFUND_ASKS: web.AppKey[RefundAsker] = web.AppKey("provider_refund_asks")
IDEMPOTENCY: web.AppKey[IdempotencyStore] = web.AppKey("idempotency_store")
DASHBOARD_SESSIONS: web.AppKey[DashboardSessionStore] = web.AppKey("dashboard_sessions")
PORTAL_SESSIONS: web.AppKey[PortalSessionsRepository] = web.AppKey("portal_sessions")
# The portal's contact form mail (PAYGATE_SMTP_*); None: the form is switched off.
SUPPORT_MAIL: web.AppKey[SupportMailSettings | None] = web.AppKey("portal_support_mail")
INBOX: web.AppKey[InboxRepository] = web.AppKey("inbox_repository")
DEPOSITS: web.AppKey[DepositsRepository] = web.AppKey("chain_deposits")
ADDRESSES: web.AppKey[AddressesRepository] = web.AppKey("chain_addresses")
BILLING_READINESS: web.AppKey[LiveBillingReadiness] = web.AppKey("live_billing_readiness")

# Provider webhooks (routes_webhooks builds them; routes_web3 and the inbox replay use them too).
PROCESSOR: web.AppKey[EventProcessor] = web.AppKey("webhook_processor")
INLINE: web.AppKey[InlineApplier] = web.AppKey("webhook_inline_applier")
GAUGE: web.AppKey[IngressGauge] = web.AppKey("webhook_ingress_gauge")
WRITER: web.AppKey[InboxWriter] = web.AppKey("webhook_inbox_writer")
# The chain watcher's service per mode with a chain (contract §6a): "test", "live" (routes_web3 builds
# them; refunds verify chain transfers with them).
WEB3_SERVICES: web.AppKey[dict[str, Web3Service]] = web.AppKey("web3_services")
