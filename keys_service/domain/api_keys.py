"""API key formats: generation, hashing, display hints and cheap classification of presented keys.

Two families of secrets live here and must never be confused:

- customer API keys, issued on payment: ``<merchant prefix>_<test|live>_<base58>`` (e.g. ``acme_test_…``);
- merchant secret keys, used against paygate's own API: ``sk_test_<base58>`` / ``sk_live_<base58>``.

A merchant prefix may not be ``sk`` (nor ``rk``/``pk``), and prefixes contain no ``_``, so the two grammars
are disjoint: `parse_customer_key` never accepts a merchant key and `parse_merchant_key` never accepts a
customer key. The service layer additionally keeps them in different tables, so a customer key cannot
authenticate as a merchant even if the grammars ever overlapped.

Timing: a presented key is never compared with a stored secret character by character. The service hashes
the whole presented string (SHA-256) and looks the hash up by equality; where it then compares hashes it
uses `hmac.compare_digest`. An attacker who varies a key's prefix or first characters therefore changes
the whole hash unpredictably, so response times say nothing about how much of a real key they guessed.
Malformed input is refused before hashing, but the refusal depends only on the presented string's shape
(public information), never on stored data.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from paygate_runtime.errors import InvalidArgument

BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

# 24 random bytes = 192 bits. A customer key's display hint shows 8 of its 33 characters (~47 bits), which
# still leaves well over 128 secret bits; 16 bytes would drop below that once the hint is public.
CUSTOMER_KEY_RANDOM_BYTES = 24
MERCHANT_KEY_RANDOM_BYTES = 24

MAX_PRESENTED_KEY_CHARS = 128
HINT_CHARS = 4
HINT_ELLIPSIS = "…"

MERCHANT_KEY_FAMILY = "sk"
RESERVED_PREFIXES = frozenset({"sk", "rk", "pk"})

_KEY_PREFIX = re.compile(r"[a-z0-9]{2,16}")
_B58_CHAR = "1-9A-HJ-NP-Za-km-z"
# The random part may be 22..64 chars so that keys of an older or newer length still classify; a wrong
# length is then simply a hash that matches nothing.
_CUSTOMER_KEY = re.compile(rf"([a-z0-9]{{2,16}})_(test|live)_([{_B58_CHAR}]{{22,64}})")
_MERCHANT_KEY = re.compile(rf"sk_(test|live)_([{_B58_CHAR}]{{22,64}})")
_SURROUNDING_WHITESPACE = " \t\r\n"


class KeyMode(StrEnum):
    """Test and live objects never mix: the mode is part of every key."""

    TEST = "test"
    LIVE = "live"


class KeyKind(StrEnum):
    CUSTOMER = "customer"
    MERCHANT = "merchant"


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    """A freshly generated secret. `secret` is shown once; only `key_hash` and `hint` are stored."""

    secret: str
    prefix: str
    mode: KeyMode
    key_hash: bytes
    hint: str

    def __repr__(self) -> str:
        # Keep the secret out of logs and tracebacks that repr() their locals.
        return f"GeneratedKey(prefix={self.prefix!r}, mode={self.mode.value!r}, hint={self.hint!r})"


@dataclass(frozen=True, slots=True)
class PresentedKey:
    """A presented string that has the shape of a key. Says nothing about whether it exists."""

    kind: KeyKind
    merchant_prefix: str | None
    mode: KeyMode
    secret: str

    @property
    def key_hash(self) -> bytes:
        return hash_key(self.secret)

    def __repr__(self) -> str:
        hint = display_hint(self.secret)
        return f"PresentedKey(kind={self.kind.value!r}, mode={self.mode.value!r}, hint={hint!r})"


def b58encode(data: bytes) -> str:
    """Bitcoin-alphabet base58; each leading zero byte becomes a leading '1'."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    number = int.from_bytes(data, "big")
    digits: list[str] = []
    while number:
        number, rem = divmod(number, 58)
        digits.append(BASE58_ALPHABET[rem])
    return "1" * zeros + "".join(reversed(digits))


def b58encode_fixed(data: bytes) -> str:
    """Base58 of `data` as a number, left-padded with '1' (zero) to the width any value of that size needs.

    Fixed width keeps every key of a kind the same length, so the length leaks nothing about the value.
    """
    width = b58_width(len(data))
    number = int.from_bytes(data, "big")
    digits = ["1"] * width
    for i in range(width - 1, -1, -1):
        number, rem = divmod(number, 58)
        digits[i] = BASE58_ALPHABET[rem]
    return "".join(digits)


def b58_width(n_bytes: int) -> int:
    """Characters needed for any n-byte value in base58."""
    return math.ceil(n_bytes * 8 / math.log2(58))


def validate_key_prefix(prefix: object) -> str:
    """A merchant's customer-key prefix: 2..16 lower-case letters or digits, not a reserved family."""
    if not isinstance(prefix, str) or not _KEY_PREFIX.fullmatch(prefix):
        raise InvalidArgument(
            "invalid_key_prefix",
            "key_prefix must be 2 to 16 lower-case letters or digits",
            field="key_prefix",
        )
    if prefix in RESERVED_PREFIXES:
        raise InvalidArgument(
            "invalid_key_prefix",
            f"key_prefix {prefix!r} is reserved for paygate's own keys",
            field="key_prefix",
        )
    return prefix


def _mode(mode: KeyMode | str) -> KeyMode:
    try:
        return KeyMode(mode)
    except ValueError:
        raise InvalidArgument("invalid_mode", "mode must be test or live", field="mode") from None


def generate_customer_key(merchant_prefix: str, mode: KeyMode | str) -> GeneratedKey:
    """A new customer API key `<prefix>_<mode>_<base58 of 192 random bits>`."""
    prefix = validate_key_prefix(merchant_prefix)
    key_mode = _mode(mode)
    visible = f"{prefix}_{key_mode.value}_"
    secret = visible + b58encode_fixed(secrets.token_bytes(CUSTOMER_KEY_RANDOM_BYTES))
    return GeneratedKey(secret, visible, key_mode, hash_key(secret), display_hint(secret))


def generate_merchant_secret_key(mode: KeyMode | str) -> GeneratedKey:
    """A new merchant secret key `sk_<mode>_<base58 of 192 random bits>`."""
    key_mode = _mode(mode)
    visible = f"{MERCHANT_KEY_FAMILY}_{key_mode.value}_"
    secret = visible + b58encode_fixed(secrets.token_bytes(MERCHANT_KEY_RANDOM_BYTES))
    return GeneratedKey(secret, visible, key_mode, hash_key(secret), display_hint(secret))


def hash_key(secret: str) -> bytes:
    """SHA-256 of the whole key: the only form a key is stored or looked up in.

    A plain hash suffices (no salt, no slow KDF) because the keys carry >= 128 random bits: there is
    nothing to brute-force, and a deterministic hash is what makes lookup by equality possible.
    """
    return hashlib.sha256(secret.encode("utf-8")).digest()


def hashes_equal(a: bytes, b: bytes) -> bool:
    """Constant-time comparison of two key hashes."""
    return hmac.compare_digest(a, b)


def display_hint(secret: str) -> str:
    """`acme_test_3xQa…9aZk`: the visible prefix, the first and last 4 random chars. Never the whole key."""
    visible, _, random_part = secret.rpartition("_")
    if len(random_part) <= 2 * HINT_CHARS:
        # Too short to show anything of without showing most of it.
        return f"{visible}_{HINT_ELLIPSIS}" if visible else HINT_ELLIPSIS
    head = f"{visible}_" if visible else ""
    return f"{head}{random_part[:HINT_CHARS]}{HINT_ELLIPSIS}{random_part[-HINT_CHARS:]}"


def key_prefix_of(secret: str) -> str:
    """The non-secret visible part, e.g. "acme_test_"."""
    visible, sep, _ = secret.rpartition("_")
    return visible + sep


def parse_presented_key(raw: object) -> PresentedKey | None:
    """Classify a presented string as a customer or merchant key by shape alone; None when it is neither.

    Never raises: empty, oversize (> 128 chars), non-ASCII, wrong type or malformed input is None and
    the caller answers NOT_FOUND (or UNAUTHENTICATED). The oversize check runs first so that a 10 MB body
    costs one len() call.
    """
    if not isinstance(raw, str) or not raw or len(raw) > MAX_PRESENTED_KEY_CHARS:
        return None
    candidate = raw.strip(_SURROUNDING_WHITESPACE)
    if not candidate or not candidate.isascii():
        return None
    if candidate.startswith("sk_"):
        merchant = _MERCHANT_KEY.fullmatch(candidate)
        if merchant is None:
            return None
        return PresentedKey(KeyKind.MERCHANT, None, KeyMode(merchant.group(1)), candidate)
    customer = _CUSTOMER_KEY.fullmatch(candidate)
    if customer is None or customer.group(1) in RESERVED_PREFIXES:
        return None
    return PresentedKey(KeyKind.CUSTOMER, customer.group(1), KeyMode(customer.group(2)), candidate)


def parse_customer_key(raw: object) -> PresentedKey | None:
    """A presented customer key, or None (including for any merchant key)."""
    presented = parse_presented_key(raw)
    return presented if presented is not None and presented.kind is KeyKind.CUSTOMER else None


def parse_merchant_key(raw: object) -> PresentedKey | None:
    """A presented merchant secret key, or None (including for any customer key)."""
    presented = parse_presented_key(raw)
    return presented if presented is not None and presented.kind is KeyKind.MERCHANT else None
