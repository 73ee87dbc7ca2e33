"""The gateway's composition root: builds every dependency once, then the aiohttp application around them.

Route modules are handlers: each one's `setup` only adds its routes (and its page templates), and a handler
reads what it needs from the typed keys of app_keys. What talks to a provider, a database table or a worker
loop is made here, so there is one place that says what the gateway is made of and in which order.

The webhook ingestion (routes_webhooks) and the chain (routes_web3) still wire their own event processor and
chain services in their `setup`; they run before anything that needs them (the reconciler, Stripe charge
enrichment), in the order written below.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
from aiohttp import web

from webhook_gateway.adapters.billing_readiness import LiveBillingReadiness
from webhook_gateway.adapters.dashboard_sessions import DashboardSessionStore
from webhook_gateway.adapters.idempotency_store import IdempotencyStore
from webhook_gateway.adapters.inbox_repository import InboxRepository
from webhook_gateway.adapters.onecom_api import OneComApiSettings, OneComClient, ProviderMetrics
from webhook_gateway.adapters.payment_providers import OneComProvider, PaymentProvider, StripeProvider
from webhook_gateway.adapters.portal_sessions_repository import PortalSessionsRepository
from webhook_gateway.adapters.provider_payments_repository import ProviderPaymentsRepository
from webhook_gateway.adapters.refund_asks_repository import RefundAsksRepository
from webhook_gateway.adapters.service_clients import ServiceClients
from webhook_gateway.adapters.stripe_checkout import StripeCheckout, StripeCheckoutSettings
from webhook_gateway.chain.deposits_repository import AddressesRepository, DepositsRepository
from webhook_gateway.entrypoints import (
    browser_session,
    observability,
    routes_access_links,
    routes_audit,
    routes_checkout,
    routes_dashboard,
    routes_events,
    routes_invoices,
    routes_keys,
    routes_merchant_events,
    routes_merchant_keys,
    routes_openapi,
    routes_portal,
    routes_public,
    routes_quarantine,
    routes_refunds,
    routes_sessions,
    routes_web3,
    routes_webhooks,
)
from webhook_gateway.entrypoints.api_inputs import ACCEPTED_INPUTS, AUTHENTICATE_FIRST, accepted_inputs
from webhook_gateway.entrypoints.app_keys import (
    ADDRESSES,
    BILLING_READINESS,
    CLIENTS,
    CONFIG,
    DASHBOARD_SESSIONS,
    DEPOSITS,
    IDEMPOTENCY,
    INBOX,
    POOL,
    PORTAL_SESSIONS,
    PROCESSOR,
    PROVIDER_CHECKOUTS,
    PROVIDER_METRICS,
    RECONCILER,
    REFUND_ASKS,
    SUPPORT_MAIL,
)
from webhook_gateway.entrypoints.gateway_config import GatewayConfig
from webhook_gateway.entrypoints.http_errors import MAX_REQUEST_LINE_BYTES, PROTOCOL_LOG, error_middleware
from webhook_gateway.entrypoints.merchant_auth import authenticate
from webhook_gateway.entrypoints.observability import METRICS
from webhook_gateway.entrypoints.openapi_document import build_document
from webhook_gateway.entrypoints.provider_config import ProviderApiConfig
from webhook_gateway.entrypoints.request_body import MAX_EXPIRES_IN_SECONDS
from webhook_gateway.service_layer.provider_checkouts import ProviderCheckouts
from webhook_gateway.service_layer.reconciliation import Reconciler, ReconcileSettings
from webhook_gateway.service_layer.refund_asks import RefundAsker, RefundAskSettings
from webhook_gateway.service_layer.stripe_charges import ChargePaymentIntents

MAX_BODY_BYTES = 1024 * 1024
CLEANUP_INTERVAL_S = 600.0  # stale portal and dashboard sessions, and old provider checkout errors
CHECKOUT_ERROR_MARGIN_S = 24 * 3600.0  # kept a day past the longest session, whatever the clocks say

Worker = Callable[[], Awaitable[None]]

# Each area adds its routes; one module per area so that features stay apart. routes_webhooks before
# routes_web3: the web3 handler registers on the webhook ingestion's event processor.
ROUTE_MODULES = [
    observability,
    routes_public,
    routes_sessions,
    routes_quarantine,
    routes_invoices,
    routes_keys,
    routes_merchant_keys,
    routes_merchant_events,
    routes_access_links,
    routes_portal,
    routes_webhooks,
    routes_web3,
    routes_events,
    routes_checkout,
    routes_refunds,
    routes_audit,
    routes_dashboard,
    routes_openapi,
]


def build_app(config: GatewayConfig, pool: asyncpg.Pool, clients: ServiceClients) -> web.Application:
    # client_max_size makes aiohttp stop reading at 1 MiB and answer 413, instead of buffering any size.
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        middlewares=[observability.observe_middleware, error_middleware],
        # To aiohttp's protocol class under any runner: request lines up to 64 KiB reach the app, whose
        # error_middleware answers a URL over 8 KiB with a JSON 414, and aiohttp's own refusal of anything
        # longer or malformed is logged without a traceback (http_errors says why).
        handler_args={"max_line_size": MAX_REQUEST_LINE_BYTES, "logger": PROTOCOL_LOG},
    )
    app[CONFIG] = config
    app[POOL] = pool
    app[CLIENTS] = clients
    app[IDEMPOTENCY] = IdempotencyStore(pool)
    app[BILLING_READINESS] = LiveBillingReadiness(clients.billing)
    app[DASHBOARD_SESSIONS] = DashboardSessionStore(pool)
    app[PORTAL_SESSIONS] = PortalSessionsRepository(pool)
    app[INBOX] = InboxRepository(pool)
    app[DEPOSITS] = DepositsRepository(pool)
    app[ADDRESSES] = AddressesRepository(pool)
    app[SUPPORT_MAIL] = config.support_mail
    # The query parameters and body fields each merchant operation takes, read once from the OpenAPI
    # document: anything else is refused (http_errors, request_body).
    app[ACCEPTED_INPUTS] = accepted_inputs(build_document())
    app[AUTHENTICATE_FIRST] = authenticate
    for module in ROUTE_MODULES:
        module.setup(app)
    # After observability (its metrics registry) and routes_webhooks (its event processor).
    _wire_providers(app, config, pool)
    app.on_cleanup.append(_close_providers)
    return app


def _wire_providers(app: web.Application, config: GatewayConfig, pool: asyncpg.Pool) -> None:
    settings = config.providers
    app[PROVIDER_METRICS] = ProviderMetrics(app[METRICS].registry)
    providers = _providers(config, app[PROVIDER_METRICS])
    payments = ProviderPaymentsRepository(pool)
    app[PROVIDER_CHECKOUTS] = ProviderCheckouts(
        providers, payments, first_check_in_s=settings.reconcile_after_s
    )
    app[RECONCILER] = Reconciler(
        payments,
        providers,
        app[CLIENTS].session,
        app[PROCESSOR],
        ReconcileSettings(
            after_s=settings.reconcile_after_s,
            interval_s=settings.reconcile_interval_s,
            max_interval_s=settings.reconcile_max_interval_s,
            late_window_s=settings.reconcile_late_window_s,
        ),
        metrics=app[PROVIDER_METRICS],
    )
    # Refunds a provider could not be asked for are asked for again, on the reconciliation's cadence.
    app[REFUND_ASKS] = RefundAsker(
        RefundAsksRepository(pool),
        providers,
        app[CLIENTS].session,
        RefundAskSettings(interval_s=settings.reconcile_interval_s),
    )
    stripe = providers.get("stripe")
    if isinstance(stripe, StripeProvider):
        # Stripe's charge events name a PaymentIntent, not our session: ask Stripe which session it paid.
        app[PROCESSOR].enrich("stripe", ChargePaymentIntents(stripe).complete)


def _providers(config: GatewayConfig, metrics: ProviderMetrics) -> dict[str, PaymentProvider]:
    providers: dict[str, PaymentProvider] = {}
    if config.stripe_api_keys:
        # One checkout (and HTTP client) per mode with a key; StripeProvider.close closes each of them.
        providers["stripe"] = StripeProvider(
            *(
                StripeCheckout(
                    StripeCheckoutSettings(
                        api_key=api_key,
                        public_url=config.public_url,
                        api_base=config.stripe_api_base,
                        timeout_s=config.stripe_timeout_s,
                    )
                )
                for api_key in config.stripe_api_keys.values()
            )
        )
    settings: ProviderApiConfig = config.providers
    if settings.onecom_enabled:
        assert settings.onecom_api_base is not None
        client = OneComClient(
            OneComApiSettings(
                api_base=settings.onecom_api_base,
                api_keys=settings.onecom_api_keys,
                timeout_s=settings.onecom_timeout_s,
                max_attempts=settings.onecom_max_attempts,
                breaker_threshold=settings.onecom_breaker_threshold,
                breaker_cooldown_s=settings.onecom_breaker_cooldown_s,
            ),
            metrics,
        )
        providers["onecom"] = OneComProvider(client, config.public_url)
    return providers


async def _close_providers(app: web.Application) -> None:
    await app[PROVIDER_CHECKOUTS].close()


def background_workers(app: web.Application) -> list[Worker]:
    """Long-running workers: those the ingestion, chain and observability areas ask for, the provider
    reconciliation, and the clean-up of stale portal and dashboard sessions."""
    workers: list[Worker] = []
    for module in ROUTE_MODULES:
        factory = getattr(module, "background", None)
        if factory is not None:
            workers.extend(factory(app))
    if app[CONFIG].providers.reconcile_worker and app[RECONCILER].providers:
        # On every replica: claims are leases, so replicas share the work.
        workers.append(app[RECONCILER].run)
        workers.append(app[REFUND_ASKS].run)
    portal_sessions = app[PORTAL_SESSIONS]
    dashboard_sessions = app[DASHBOARD_SESSIONS]

    async def remove_stale_dashboard_sessions() -> None:
        await dashboard_sessions.remove_stale(
            routes_dashboard.SIGN_IN_WINDOW * 4, routes_dashboard.IDLE_TIMEOUT
        )

    checkouts = app[PROVIDER_CHECKOUTS]

    async def forget_old_checkout_errors() -> None:
        # A session lives at most MAX_EXPIRES_IN_SECONDS; a reason kept longer explains nothing any more.
        await checkouts.forget_old_errors(MAX_EXPIRES_IN_SECONDS + CHECKOUT_ERROR_MARGIN_S)

    workers.append(browser_session.every(CLEANUP_INTERVAL_S, forget_old_checkout_errors))
    workers.append(browser_session.every(CLEANUP_INTERVAL_S, portal_sessions.remove_expired))
    workers.append(browser_session.every(CLEANUP_INTERVAL_S, remove_stale_dashboard_sessions))
    return workers
