"""Keys service process: configuration and assembly of its gRPC server.

Environment (all secrets required; a missing or malformed one stops start-up with exit code 2):
- PAYGATE_KEYS_ENCRYPTION_KEYS: AES-256 key(s) for customer key plaintext awaiting reveal, base64 of 32
  bytes, or versioned "1:<b64>,2:<b64>" (the highest version encrypts; older ones still decrypt).
- PAYGATE_JWT_SIGNING_KEYS: Ed25519 signing keys, oldest first, as JSON [{"kid": "...", "pem": "<PKCS#8 PEM>"}]
  (or {"kid": "<PEM or base64 seed>"}, or "kid=<b64 seed>,..."). The last one signs unless
  PAYGATE_JWT_ACTIVE_KID names another; every one verifies and is published in the JWK Set.
- PAYGATE_CUSTOMER_SUBJECT_SECRET: hex (>= 16 bytes), keys the opaque `sub` of access tokens.
- PAYGATE_PUBLIC_URL: the gateway's base URL; access links are <PUBLIC_URL>/access?token=...
Optional: PAYGATE_JWT_ISSUER (default PAYGATE_PUBLIC_URL), PAYGATE_JWT_AUDIENCE (default "paygate:access"),
PAYGATE_JWT_LEEWAY_SECONDS (default 60), PAYGATE_KEYS_CACHE_MAX_AGE_MS (VerifyKey cache bound, 1..1000,
default 1000), PAYGATE_KEYS_USAGE_FLUSH_MS (last_used_at batch interval, default 1000).
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
from dataclasses import dataclass

import asyncpg

from keys_service.adapters import api_key_repository, merchant_repository
from keys_service.adapters.invalidation_listener import InvalidationListener
from keys_service.adapters.usage_recorder import UsageRecorder
from keys_service.domain.access_tokens import MIN_SUBJECT_SECRET_BYTES, SigningKeyring
from keys_service.domain.secret_contexts import CUSTOMER_KEY_SECRET_CONTEXT
from keys_service.domain.verify_cache import VerifyCache
from keys_service.entrypoints.grpc_servicer import KeysServicer
from keys_service.service_layer.access_links import AccessTokenService, AccessTokenSettings
from keys_service.service_layer.customer_keys import CustomerKeyService
from keys_service.service_layer.key_verifier import KeyVerifier
from keys_service.service_layer.known_merchants import KnownMerchants
from keys_service.service_layer.merchant_event_forwarder import merchant_event_forwarder
from keys_service.service_layer.merchants import MerchantService
from paygate.keys.v1 import keys_pb2_grpc
from paygate_runtime.config import ConfigError, Env
from paygate_runtime.crypto.secret_box import SecretBox
from paygate_runtime.grpc_client import open_channel
from paygate_runtime.grpc_server import GrpcServiceSpec
from paygate_runtime.metrics import ServiceMetrics
from paygate_runtime.settings import CommonSettings

DEFAULT_AUDIENCE = "paygate:access"


@dataclass(frozen=True)
class KeysConfig:
    public_url: str
    secret_box: SecretBox
    access: AccessTokenSettings
    cache_max_age_s: float = 1.0
    usage_flush_s: float = 1.0

    def __repr__(self) -> str:
        return f"KeysConfig(public_url={self.public_url!r}, access={self.access!r})"


def _required(env: Env, name: str) -> str:
    value = env.optional(name)
    if value is None:
        raise ConfigError(name, "is required but not set")
    return value


def _subject_secret(text: str) -> bytes:
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        raise ConfigError("PAYGATE_CUSTOMER_SUBJECT_SECRET", "must be hex") from None
    if len(secret) < MIN_SUBJECT_SECRET_BYTES:
        raise ConfigError(
            "PAYGATE_CUSTOMER_SUBJECT_SECRET", f"must be at least {MIN_SUBJECT_SECRET_BYTES} bytes"
        )
    return secret


def _with_active_kid(keyring: SigningKeyring, active_kid: str | None) -> SigningKeyring:
    """The keyring signing with PAYGATE_JWT_ACTIVE_KID; checked apart from the keys so that the line names the
    variable that is wrong."""
    if active_kid is None:
        return keyring
    if active_kid not in keyring.kids:
        raise ConfigError(
            "PAYGATE_JWT_ACTIVE_KID", f"names kid {active_kid!r}, not one of PAYGATE_JWT_SIGNING_KEYS"
        )
    return SigningKeyring([keyring.signing_key(kid) for kid in keyring.kids], active_kid)


def load_config(env: Env) -> KeysConfig:
    public_url = env.http_url("PAYGATE_PUBLIC_URL", "http://127.0.0.1:8080").rstrip("/")
    try:
        box = SecretBox.from_config(
            _required(env, "PAYGATE_KEYS_ENCRYPTION_KEYS"), context=CUSTOMER_KEY_SECRET_CONTEXT
        )
    except (ValueError, binascii.Error) as error:
        raise ConfigError("PAYGATE_KEYS_ENCRYPTION_KEYS", str(error)) from None
    try:
        keyring = SigningKeyring.from_config(_required(env, "PAYGATE_JWT_SIGNING_KEYS"))
    except (ValueError, TypeError) as error:
        raise ConfigError("PAYGATE_JWT_SIGNING_KEYS", str(error)) from None
    keyring = _with_active_kid(keyring, env.optional("PAYGATE_JWT_ACTIVE_KID"))
    subject_secret = _subject_secret(_required(env, "PAYGATE_CUSTOMER_SUBJECT_SECRET"))
    access = AccessTokenSettings(
        keyring=keyring,
        issuer=env.str("PAYGATE_JWT_ISSUER", public_url),
        audience=env.str("PAYGATE_JWT_AUDIENCE", DEFAULT_AUDIENCE),
        subject_secret=subject_secret,
        public_url=public_url,
        leeway_seconds=env.int("PAYGATE_JWT_LEEWAY_SECONDS", 60, minimum=0, maximum=300),
    )
    return KeysConfig(
        public_url=public_url,
        secret_box=box,
        access=access,
        cache_max_age_s=env.millis("PAYGATE_KEYS_CACHE_MAX_AGE_MS", 1000, minimum=1, maximum=1000),
        usage_flush_s=env.millis("PAYGATE_KEYS_USAGE_FLUSH_MS", 1000, minimum=10, maximum=60_000),
    )


@dataclass
class KeysRuntime:
    """The assembled parts, for tests and benchmarks that look inside a running service."""

    servicer: KeysServicer
    verifier: KeyVerifier
    cache: VerifyCache
    listener: InvalidationListener
    usage: UsageRecorder
    merchant_usage: UsageRecorder


def build(config: KeysConfig, database_url: str, pool: asyncpg.Pool) -> KeysRuntime:
    cache = VerifyCache(max_age=config.cache_max_age_s)
    listener = InvalidationListener(database_url, cache)
    usage = UsageRecorder(pool, interval=config.usage_flush_s, counts_writer=api_key_repository.record_usage)
    merchant_usage = UsageRecorder(
        pool,
        interval=config.usage_flush_s,
        writer=merchant_repository.touch_last_used,
        what="merchant secret key",
    )
    verifier = KeyVerifier(pool, cache, usage, cache_enabled=lambda: listener.listening)
    merchants = KnownMerchants(pool)
    servicer = KeysServicer(
        MerchantService(pool, merchant_usage),
        CustomerKeyService(pool, config.secret_box, verifier, merchants),
        verifier,
        AccessTokenService(pool, config.access, merchants),
    )
    return KeysRuntime(servicer, verifier, cache, listener, usage, merchant_usage)


async def assemble(config: KeysConfig, common: CommonSettings, pool: asyncpg.Pool) -> GrpcServiceSpec:
    runtime = build(config, common.database_url, pool)

    async def final_flush() -> None:
        for recorder in (runtime.usage, runtime.merchant_usage):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(recorder.flush(), timeout=2)

    # customer_key.revoked goes to the session service, which owns merchant events (contract §7).
    session_channel = open_channel(
        common.session_addr, tls=common.tls, default_deadline=common.rpc_deadline_s
    )
    forwarder = merchant_event_forwarder(pool, common.database_url, session_channel)

    async def close_session_channel() -> None:
        with contextlib.suppress(Exception):
            await session_channel.close(grace=1.0)

    metrics = ServiceMetrics("keys")
    metrics.watch_pool(pool)
    spec = GrpcServiceSpec(
        name="keys",
        servicers=[
            (keys_pb2_grpc.add_KeysServiceServicer_to_server, runtime.servicer, "paygate.keys.v1.KeysService")
        ],
        background=[runtime.listener.run, runtime.usage.run, runtime.merchant_usage.run, forwarder.run],
        on_stop=[final_flush, close_session_channel],
        metrics=metrics,
    )
    spec.runtime = runtime  # type: ignore[attr-defined]  # tests reach the running service's parts through the spec
    return spec
