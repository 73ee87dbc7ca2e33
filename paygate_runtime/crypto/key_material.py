"""Decoding of 32-byte key material from configuration (AES-256 keys, Ed25519 seeds).

Configuration arrives as text in environment variables, so keys are base64 or base64url, padded or not.
Errors are ValueError with a message that names the setting and the problem, never the material itself:
a misconfigured secret must not end up in a log.
"""

from __future__ import annotations

import base64
import binascii
import re

KEY_BYTES = 32

_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")


def decode_key_32(text: str | bytes, what: str) -> bytes:
    """Decode base64/base64url text into exactly 32 bytes; ValueError naming `what` otherwise."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError(f"{what}: not ASCII base64 text") from None
    if not isinstance(text, str):
        raise ValueError(f"{what}: expected base64 text, got {type(text).__name__}")
    compact = "".join(text.split())
    if not compact:
        raise ValueError(f"{what}: empty")
    if not _BASE64_TEXT.fullmatch(compact):
        raise ValueError(f"{what}: not base64 or base64url text")
    # One alphabet per value: a mix of '+/' and '-_' is a corrupted paste rather than a key.
    if any(c in compact for c in "+/") and any(c in compact for c in "-_"):
        raise ValueError(f"{what}: mixes the base64 and base64url alphabets")
    unpadded = compact.rstrip("=")
    standard = unpadded.replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what}: not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"{what}: must decode to {KEY_BYTES} bytes, got {len(raw)}")
    return raw
