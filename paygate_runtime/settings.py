"""Settings every service process reads: database, listen address, log level, TLS and peer addresses."""

from __future__ import annotations

from dataclasses import dataclass

from paygate_runtime.config import ConfigError, Env
from paygate_runtime.metrics import DEFAULT_METRICS_PORTS
from paygate_runtime.secret_checks import check_secrets
from paygate_runtime.tls import TlsFiles, tls_from_env

DEFAULT_PORTS = {"session": 50051, "billing": 50052, "keys": 50053, "gateway": 8080}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(value: str) -> str:
    """Any case (`info`, `Debug`), and `warn` for WARNING, as operators write it in manifests."""
    level = value.upper()
    level = "WARNING" if level == "WARN" else level
    if level not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)} (any case), got {value!r}")
    return level


def _dsn(value: str) -> str:
    if not value.startswith(("postgres://", "postgresql://")):
        raise ValueError("must be a postgresql:// URL")
    return value


# asyncpg pool bounds when PAYGATE_DB_POOL_MAX / PAYGATE_DB_POOL_MIN are unset (`paygate up` sets the floor
# to the pool's size).
DEFAULT_POOL_MAX = 10
DEFAULT_POOL_MIN = 2


@dataclass(frozen=True)
class CommonSettings:
    service: str
    database_url: str
    migrate_database_url: str | None
    host: str
    port: int
    log_level: str
    tls: TlsFiles | None
    pool_max: int
    session_addr: str
    billing_addr: str
    keys_addr: str
    rpc_deadline_s: float
    health_port: int | None = None
    # Prometheus /metrics is served here, on PAYGATE_HOST, never on the public or gRPC port.
    metrics_port: int = 0
    # Set by PAYGATE_METRICS_PORT (a port that cannot be had stops start-up), not the per-service default
    # (which is best effort: a second process of a service on one host runs without metrics rather than not).
    metrics_port_configured: bool = False
    # Connections each pool opens at start-up and keeps (asyncpg closes the ones above it after 300 idle
    # seconds). Below PAYGATE_DB_POOL_MAX, a burst after a quiet spell pays for opening the rest while it runs.
    pool_min: int = DEFAULT_POOL_MIN

    @classmethod
    def from_env(cls, service: str, env: Env) -> CommonSettings:
        database_url = env.parsed("PAYGATE_DATABASE_URL", _dsn, "")
        if not database_url:
            raise ConfigError("PAYGATE_DATABASE_URL", "is required but not set")
        port_var = "PAYGATE_HTTP_PORT" if service == "gateway" else "PAYGATE_GRPC_PORT"
        # Malformed secrets stop start-up here, before anything listens, not at the first request.
        check_secrets(service, env)
        pool_max = env.int("PAYGATE_DB_POOL_MAX", DEFAULT_POOL_MAX, minimum=1, maximum=200)
        pool_min = env.int("PAYGATE_DB_POOL_MIN", min(DEFAULT_POOL_MIN, pool_max), minimum=0, maximum=200)
        if pool_min > pool_max:
            raise ConfigError("PAYGATE_DB_POOL_MIN", f"is {pool_min}, above PAYGATE_DB_POOL_MAX ({pool_max})")
        return cls(
            service=service,
            database_url=database_url,
            migrate_database_url=env.parsed("PAYGATE_MIGRATE_DATABASE_URL", _dsn, None),
            host=env.str("PAYGATE_HOST", "127.0.0.1"),
            port=env.port(port_var, DEFAULT_PORTS[service]),
            log_level=env.parsed("PAYGATE_LOG_LEVEL", _log_level, "INFO"),
            tls=tls_from_env(env),
            pool_max=pool_max,
            pool_min=pool_min,
            session_addr=env.str("PAYGATE_SESSION_ADDR", "127.0.0.1:50051"),
            billing_addr=env.str("PAYGATE_BILLING_ADDR", "127.0.0.1:50052"),
            keys_addr=env.str("PAYGATE_KEYS_ADDR", "127.0.0.1:50053"),
            rpc_deadline_s=env.millis("PAYGATE_RPC_DEADLINE_MS", 5000, minimum=50, maximum=120_000),
            # With mTLS on, kubelet's gRPC probe cannot present a client certificate: health is then also served
            # in plaintext on this port, and nothing else is.
            health_port=env.port("PAYGATE_GRPC_HEALTH_PORT", 0) or None,
            metrics_port=env.port("PAYGATE_METRICS_PORT", 0) or DEFAULT_METRICS_PORTS[service],
            metrics_port_configured=bool(env.port("PAYGATE_METRICS_PORT", 0)),
        )
