"""Configuration of the providers' APIs (One.com) and of reconciliation (contract §11)."""

from __future__ import annotations

from dataclasses import dataclass, field

from paygate_runtime.config import ConfigError, Env


@dataclass(frozen=True)
class ProviderApiConfig:
    onecom_api_base: str | None = None
    # Per mode (contract §6a); repr=False keeps the keys out of any printed config.
    onecom_api_keys: dict[str, str] = field(default_factory=dict, repr=False)
    onecom_timeout_s: float = 10.0
    onecom_max_attempts: int = 3
    onecom_breaker_threshold: int = 5
    onecom_breaker_cooldown_s: float = 30.0
    # Reconciliation: a payment with no settling webhook is read at the provider's API this long after it
    # was created, then again with backoff (doubling, capped at reconcile_max_interval_s).
    reconcile_after_s: int = 300
    reconcile_interval_s: float = 5.0
    reconcile_max_interval_s: int = 3600
    reconcile_late_window_s: int = 86_400
    reconcile_worker: bool = True

    @property
    def onecom_enabled(self) -> bool:
        return bool(self.onecom_api_base and self.onecom_api_keys)


def load_provider_api_config(env: Env) -> ProviderApiConfig:
    base = env.optional("PAYGATE_ONECOM_API_BASE")
    if base is not None and not base.startswith(("https://", "http://")):
        raise ConfigError("PAYGATE_ONECOM_API_BASE", "must be an http(s) URL")
    plain = env.optional("PAYGATE_ONECOM_API_KEY")
    test = env.optional("PAYGATE_ONECOM_API_KEY_TEST")
    # The unsuffixed variable means test; two different test keys would leave it to chance which one runs.
    if plain and test and plain != test:
        raise ConfigError(
            "PAYGATE_ONECOM_API_KEY_TEST", "differs from PAYGATE_ONECOM_API_KEY (both mean test)"
        )
    keys = {
        mode: key
        for mode, key in (("test", test or plain), ("live", env.optional("PAYGATE_ONECOM_API_KEY_LIVE")))
        if key
    }
    if keys.get("test") and keys.get("test") == keys.get("live"):
        raise ConfigError("PAYGATE_ONECOM_API_KEY_LIVE", "must not be the test key")
    if keys and base is None:
        raise ConfigError("PAYGATE_ONECOM_API_BASE", "is required when a One.com API key is set")
    if base is not None and not keys:
        raise ConfigError("PAYGATE_ONECOM_API_KEY", "is required when PAYGATE_ONECOM_API_BASE is set")
    return ProviderApiConfig(
        onecom_api_base=base.rstrip("/") if base else None,
        onecom_api_keys=keys,
        onecom_timeout_s=env.millis("PAYGATE_ONECOM_TIMEOUT_MS", 10_000, minimum=100, maximum=60_000),
        onecom_max_attempts=env.int("PAYGATE_ONECOM_MAX_ATTEMPTS", 3, minimum=1, maximum=10),
        onecom_breaker_threshold=env.int("PAYGATE_ONECOM_BREAKER_THRESHOLD", 5, minimum=1, maximum=1000),
        onecom_breaker_cooldown_s=env.millis(
            "PAYGATE_ONECOM_BREAKER_COOLDOWN_MS", 30_000, minimum=10, maximum=3_600_000
        ),
        reconcile_after_s=env.int("PAYGATE_RECONCILE_AFTER_S", 300, minimum=1, maximum=7 * 86_400),
        reconcile_interval_s=env.millis("PAYGATE_RECONCILE_INTERVAL_MS", 5000, minimum=10, maximum=600_000),
        reconcile_max_interval_s=env.int(
            "PAYGATE_RECONCILE_MAX_INTERVAL_S", 3600, minimum=1, maximum=7 * 86_400
        ),
        reconcile_late_window_s=env.int(
            "PAYGATE_RECONCILE_LATE_WINDOW_S", 86_400, minimum=0, maximum=30 * 86_400
        ),
        reconcile_worker=env.bool("PAYGATE_RECONCILE_WORKER", True),
    )
