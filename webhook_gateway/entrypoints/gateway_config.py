"""The gateway's configuration, read from the environment once at start (PAYGATE_*)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from paygate_runtime.config import ConfigError, Env
from webhook_gateway.adapters.stripe_checkout import key_mode_name
from webhook_gateway.chain.config import GatewayChainConfig, load_gateway_chain_config
from webhook_gateway.entrypoints.client_address import Network, parse_trusted_proxies
from webhook_gateway.entrypoints.portal_support import SupportMailSettings
from webhook_gateway.entrypoints.portal_support import load_settings as load_support_mail
from webhook_gateway.entrypoints.provider_config import ProviderApiConfig, load_provider_api_config

_STRIPE_KEY = "PAYGATE_STRIPE_API_KEY"


@dataclass(frozen=True)
class GatewayConfig:
    public_url: str
    stripe_webhook_secrets: list[str] = field(default_factory=list)
    # Standard Webhooks secrets per mode (contract §6a): the secret that verifies a One.com or web3 event is
    # what says whether it is test or live. The unsuffixed lists are the test mode's.
    onecom_webhook_secrets: list[str] = field(default_factory=list)
    web3_webhook_secrets: list[str] = field(default_factory=list)
    onecom_webhook_secrets_live: list[str] = field(default_factory=list)
    web3_webhook_secrets_live: list[str] = field(default_factory=list)
    # Stripe's API (Checkout, refunds, reconciliation, charge lookups), one key per mode ("test"/"live"): a mode
    # without a key has no Stripe API. repr=False keeps the secret keys out of any printed config.
    stripe_api_keys: dict[str, str] = field(default_factory=dict, repr=False)
    stripe_api_base: str | None = None
    stripe_timeout_s: float = 10.0
    # Webhook inbox and relay (issue 6). The apply runs after the 200, so these bound the background work only.
    webhook_apply_deadline_s: float = 2.0
    webhook_unknown_session_window_s: float = 600.0
    webhook_retry_base_s: float = 1.0
    webhook_retry_max_s: float = 300.0
    webhook_relay_interval_s: float = 1.0
    webhook_lease_s: float = 10.0
    webhook_max_inline_applies: int = 32
    webhook_busy_in_flight: int = 8
    webhook_busy_defer_s: float = 1.0
    # On-chain payments (issue 7): off without an RPC URL. One chain per gateway.
    chain_rpc_url: str | None = None
    chain_id: int | None = None
    chain_rpc_timeout_s: float = 10.0
    chain_watcher_enabled: bool = True
    chain_poll_interval_s: float = 1.0
    chain_rescan_blocks: int = 12
    chain_reorg_depth: int = 64
    chain_max_blocks_per_pass: int = 500
    chain_late_window_s: int = 86_400
    chain_tx_wait_s: float = 600.0
    chain_start_block: int | None = None
    # Per-mode chains, internal transfers, creation skew and per-address backoff (issue 13).
    chain: GatewayChainConfig = field(default_factory=GatewayChainConfig)
    # The portal's contact form mail (issue 23): PAYGATE_SMTP_HOST/PORT, PAYGATE_MAIL_FROM; None = off.
    support_mail: SupportMailSettings | None = None
    # One.com's API and reconciliation (issue 22, contract §11).
    providers: ProviderApiConfig = field(default_factory=ProviderApiConfig)
    # Reverse proxies whose X-Forwarded-For is believed (PAYGATE_TRUSTED_PROXIES, CIDRs); empty: none.
    trusted_proxies: tuple[Network, ...] = ()


def load_config(env: Env) -> GatewayConfig:
    onecom_test, onecom_live = _standard_webhook_secrets(env, "ONECOM")
    web3_test, web3_live = _standard_webhook_secrets(env, "WEB3")
    return GatewayConfig(
        public_url=env.http_url("PAYGATE_PUBLIC_URL", "http://127.0.0.1:8080").rstrip("/"),
        stripe_webhook_secrets=env.list("PAYGATE_STRIPE_WEBHOOK_SECRETS"),
        onecom_webhook_secrets=onecom_test,
        onecom_webhook_secrets_live=onecom_live,
        web3_webhook_secrets=web3_test,
        web3_webhook_secrets_live=web3_live,
        stripe_api_keys=_stripe_api_keys(env),
        stripe_api_base=env.optional("PAYGATE_STRIPE_API_BASE"),
        stripe_timeout_s=env.millis("PAYGATE_STRIPE_TIMEOUT_MS", 10_000, minimum=100, maximum=60_000),
        webhook_apply_deadline_s=env.millis(
            "PAYGATE_WEBHOOK_APPLY_DEADLINE_MS", 2000, minimum=50, maximum=60_000
        ),
        webhook_unknown_session_window_s=env.int(
            "PAYGATE_WEBHOOK_UNKNOWN_SESSION_WINDOW_S", 600, minimum=0, maximum=7 * 86400
        ),
        webhook_retry_base_s=env.millis("PAYGATE_WEBHOOK_RETRY_BASE_MS", 1000, minimum=10, maximum=600_000),
        webhook_retry_max_s=env.millis(
            "PAYGATE_WEBHOOK_RETRY_MAX_MS", 300_000, minimum=10, maximum=86_400_000
        ),
        webhook_relay_interval_s=env.millis(
            "PAYGATE_WEBHOOK_RELAY_INTERVAL_MS", 1000, minimum=10, maximum=600_000
        ),
        webhook_lease_s=env.millis("PAYGATE_WEBHOOK_LEASE_MS", 10_000, minimum=100, maximum=3_600_000),
        webhook_max_inline_applies=env.int(
            "PAYGATE_WEBHOOK_MAX_INLINE_APPLIES", 32, minimum=0, maximum=10_000
        ),
        webhook_busy_in_flight=env.int("PAYGATE_WEBHOOK_BUSY_IN_FLIGHT", 8, minimum=0, maximum=100_000),
        webhook_busy_defer_s=env.millis("PAYGATE_WEBHOOK_BUSY_DEFER_MS", 1000, minimum=0, maximum=60_000),
        **_chain_config(env),
        support_mail=load_support_mail(env),
        providers=load_provider_api_config(env),
        trusted_proxies=env.parsed("PAYGATE_TRUSTED_PROXIES", parse_trusted_proxies, ()),
    )


def _standard_webhook_secrets(env: Env, variable: str) -> tuple[list[str], list[str]]:
    """(test, live): PAYGATE_<P>_WEBHOOK_SECRETS and ..._TEST (both test: the unsuffixed variable means
    test), and ..._LIVE. One secret in both modes would let a test signer make live events: refused at start."""
    base = f"PAYGATE_{variable}_WEBHOOK_SECRETS"
    test = list(dict.fromkeys([*env.list(base), *env.list(f"{base}_TEST")]))
    live = env.list(f"{base}_LIVE")
    if set(test) & set(live):
        raise ConfigError(f"{base}_LIVE", "a secret must not be both a test and a live secret")
    return test, live


def _stripe_api_keys(env: Env) -> dict[str, str]:
    """mode -> Stripe secret or restricted key, from PAYGATE_STRIPE_API_KEY_TEST, PAYGATE_STRIPE_API_KEY_LIVE and
    PAYGATE_STRIPE_API_KEY, which is the key of the mode its prefix names (as when it was the only variable).

    A suffixed variable holding the other mode's key (or any malformed key) is not refused here: the secret
    checks (paygate_runtime.secret_checks, run by CommonSettings.from_env before load_config) stop start-up on
    it first, naming the variable."""
    keys: dict[str, str] = {}
    for mode in ("test", "live"):
        key = env.optional(f"{_STRIPE_KEY}_{mode.upper()}")
        if key:
            keys[mode] = key
    plain = env.optional(_STRIPE_KEY)
    if plain:
        plain_mode = key_mode_name(plain)
        if plain_mode is None:
            # Refused by the secret checks already at start; a key of no mode is never used for both modes.
            raise ConfigError(_STRIPE_KEY, "is not a test or live Stripe secret or restricted key")
        if keys.get(plain_mode, plain) != plain:
            # Two different keys for one mode would leave it to chance which one runs.
            raise ConfigError(
                f"{_STRIPE_KEY}_{plain_mode.upper()}",
                f"differs from {_STRIPE_KEY} (both are {plain_mode} mode keys)",
            )
        keys[plain_mode] = plain
    if "test" in keys and keys["test"] == keys.get("live"):
        # Modes are separate worlds: one key cannot be both (the secret checks refuse it at start, too).
        raise ConfigError(f"{_STRIPE_KEY}_LIVE", "must not be the test key")
    return keys


def _chain_config(env: Env) -> dict[str, Any]:
    # Each mode has its own chain; a URL without its chain id (or the other way round) exits 2 naming the
    # missing variable. chain_rpc_url/chain_id keep meaning the test chain.
    chain = load_gateway_chain_config(env)
    test = chain.nodes.for_mode("test")
    rpc_url, chain_id = (test.rpc_url, test.chain_id) if test else (None, None)
    start_block = env.int("PAYGATE_CHAIN_START_BLOCK", -1, minimum=0)
    return {
        "chain_rpc_url": rpc_url,
        "chain_id": chain_id,
        "chain_rpc_timeout_s": env.millis(
            "PAYGATE_CHAIN_RPC_TIMEOUT_MS", 10_000, minimum=100, maximum=120_000
        ),
        "chain_watcher_enabled": env.bool("PAYGATE_CHAIN_WATCHER", True),
        "chain_poll_interval_s": env.millis("PAYGATE_CHAIN_POLL_MS", 1000, minimum=10, maximum=600_000),
        "chain_rescan_blocks": env.int("PAYGATE_CHAIN_RESCAN_BLOCKS", 12, minimum=0, maximum=10_000),
        "chain_reorg_depth": env.int("PAYGATE_CHAIN_REORG_DEPTH", 64, minimum=1, maximum=100_000),
        "chain_max_blocks_per_pass": env.int(
            "PAYGATE_CHAIN_MAX_BLOCKS_PER_PASS", 500, minimum=1, maximum=100_000
        ),
        "chain_late_window_s": env.int("PAYGATE_CHAIN_LATE_WINDOW_S", 86_400, minimum=0, maximum=90 * 86_400),
        "chain_tx_wait_s": env.int("PAYGATE_CHAIN_TX_WAIT_S", 600, minimum=0, maximum=7 * 86_400),
        "chain_start_block": None if start_block < 0 else start_block,
        "chain": chain,
    }
