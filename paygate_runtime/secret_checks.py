"""Start-up checks of secrets whose shape is known, so a malformed one stops the process at once (exit 2, one
line naming the variable, never its value) instead of failing the first request that needs it.

The checks go by variable name, including the per-mode variants (`..._TEST`, `..._LIVE`), so that a secret
is checked however a service's config reads it. Each service checks only the variables it reads. The keys
service's own secrets (encryption keys, JWT signing keys, subject secret) are parsed by its `load_config`,
which raises ConfigError the same way.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass

from paygate_runtime.config import ConfigError, Env

WHSEC_PREFIX = "whsec_"
# The Standard Webhooks spec allows 24 to 64 byte keys; providers issue 24 (Svix) or 32.
STANDARD_KEY_BYTES = (24, 64)
_MODES = ("", "_TEST", "_LIVE")
# Printable ASCII without spaces: a secret that travels in an HTTP header must not carry a line break.
_TOKEN_RE = re.compile(r"[\x21-\x7e]+")


def check_standard_webhooks_secret(secret: str) -> None:
    """`whsec_` + base64 of 24..64 bytes (the prefix is optional, as in the Standard Webhooks libraries)."""
    encoded = secret[len(WHSEC_PREFIX) :] if secret.startswith(WHSEC_PREFIX) else secret
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not a Standard Webhooks secret (whsec_ followed by base64)") from None
    low, high = STANDARD_KEY_BYTES
    if not low <= len(key) <= high:
        raise ValueError(f"must decode to {low}..{high} bytes, not {len(key)}")


def check_stripe_webhook_secret(secret: str) -> None:
    """Stripe's endpoint secrets are `whsec_` and an opaque token (used as given, not base64-decoded)."""
    if not secret.startswith(WHSEC_PREFIX) or len(secret) <= len(WHSEC_PREFIX):
        raise ValueError("is not a Stripe webhook signing secret (it must start with whsec_)")
    if not _TOKEN_RE.fullmatch(secret):
        raise ValueError("must not contain spaces or control characters")


def _stripe_api_key(mode: str) -> Callable[[str], None]:
    def check(secret: str) -> None:
        if not re.fullmatch(r"(sk|rk)_(test|live)_[A-Za-z0-9_]+", secret):
            raise ValueError("is not a Stripe secret or restricted key (sk_test_..., sk_live_..., rk_...)")
        key_mode = "_LIVE" if "_live_" in secret[:8] else "_TEST"
        if mode and mode != key_mode:
            # A test key behind a live variable (or the reverse) would take money in the wrong world.
            raise ValueError(f"holds a {key_mode[1:].lower()} mode key")

    return check


def check_token(secret: str) -> None:
    if not _TOKEN_RE.fullmatch(secret):
        raise ValueError("must be printable ASCII without spaces or line breaks")


@dataclass(frozen=True)
class SecretRule:
    variable: str  # without the mode suffix
    services: frozenset[str]
    check: Callable[[str], None] | None = None
    is_list: bool = False  # a comma-separated list (rotation): every entry is checked
    # Instead of `check`: takes the mode suffix ("", "_TEST", "_LIVE") and returns the check for that mode.
    check_for_mode: Callable[[str], Callable[[str], None]] | None = None

    def checker(self, mode: str) -> Callable[[str], None]:
        if self.check_for_mode is not None:
            return self.check_for_mode(mode)
        if self.check is None:
            raise TypeError(f"{self.variable}: a SecretRule needs check or check_for_mode")
        return self.check


GATEWAY = frozenset({"gateway"})
SECRET_RULES: tuple[SecretRule, ...] = (
    SecretRule("PAYGATE_STRIPE_WEBHOOK_SECRETS", GATEWAY, check_stripe_webhook_secret, is_list=True),
    SecretRule("PAYGATE_ONECOM_WEBHOOK_SECRETS", GATEWAY, check_standard_webhooks_secret, is_list=True),
    SecretRule("PAYGATE_WEB3_WEBHOOK_SECRETS", GATEWAY, check_standard_webhooks_secret, is_list=True),
    SecretRule("PAYGATE_STRIPE_API_KEY", GATEWAY, check_for_mode=_stripe_api_key),
    SecretRule("PAYGATE_ONECOM_API_KEY", GATEWAY, check_token),
)


def check_secrets(service: str, env: Env) -> None:
    """Raise ConfigError for the first malformed secret `service` reads; the message never holds the value."""
    for rule in SECRET_RULES:
        if service not in rule.services:
            continue
        for mode in _MODES:
            name = rule.variable + mode
            value = env.optional(name)
            if value is None:
                continue
            check = rule.checker(mode)
            entries = [item.strip() for item in value.split(",")] if rule.is_list else [value]
            for position, entry in enumerate(entries, start=1):
                if not entry:
                    continue  # "a,b," reads as two secrets, as Env.list reads it
                where = f" (entry {position})" if len(entries) > 1 else ""
                try:
                    check(entry)
                except ValueError as problem:
                    raise ConfigError(name, f"{problem}{where}") from None
