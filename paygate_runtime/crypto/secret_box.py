"""AES-256-GCM secret box with versioned keys, shared by the services that keep secrets they must use again
(the keys service: a customer key's plaintext between issue and its one-time reveal; the session service:
merchant webhook endpoints' signing secrets, which HMAC needs in the clear and so cannot be hashed).

Blob layout (bytes): ``version (1) | nonce (12) | ciphertext + GCM tag (16)``.

- `version` names the configured encryption key, so keys can rotate: new blobs use the current key, old
  blobs still open with the key they name, and `needs_rotation` / `reencrypt` move them forward.
- The nonce is 96 random bits per encryption. With random nonces one AES-GCM key is good for about 2^32
  encryptions, far beyond the number of keys awaiting reveal; rotation resets the count anyway.
- The associated data binds a blob to a context (which kind of secret, named by its owner, e.g.
  ``b"paygate.keys.customer_key_secret.v1"``), to the row it belongs to (`key_id`) and to its version byte,
  so copying one row's ciphertext into another row, or one kind of secret into another's column, makes
  decryption fail instead of revealing the wrong secret.

Configuration: ``PAYGATE_KEYS_ENCRYPTION_KEYS`` / ``PAYGATE_SESSION_ENCRYPTION_KEYS`` text, either one base64/base64url 32-byte key
(version 1) or ``"<version>:<key>"`` entries separated by commas or whitespace (the highest version
encrypts unless another is named).
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from paygate_runtime.crypto.key_material import decode_key_32

NONCE_BYTES = 12
TAG_BYTES = 16
_HEADER_BYTES = 1 + NONCE_BYTES
_VERSIONED_ENTRY = re.compile(r"(\d{1,3}):(.*)", re.DOTALL)


class SecretBoxError(Exception):
    """A blob that does not open: tampered, truncated, bound to another key id, or sealed with an
    encryption key that is no longer configured. Never carries plaintext or key material."""


class SecretBox:
    """Seals and opens secrets under a versioned set of AES-256 keys."""

    def __init__(
        self, keys: Mapping[int, bytes], current_version: int | None = None, *, context: bytes
    ) -> None:
        if not isinstance(context, bytes) or not context or b"\x00" in context:
            raise ValueError("secret box context: non-empty bytes without NUL")
        if not keys:
            raise ValueError("encryption keys: at least one key is required")
        ciphers: dict[int, AESGCM] = {}
        for version, key in keys.items():
            if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= 255:
                raise ValueError(f"encryption keys: version must be an integer 1..255, got {version!r}")
            if not isinstance(key, bytes) or len(key) != 32:
                raise ValueError(f"encryption key version {version}: must be 32 bytes")
            ciphers[version] = AESGCM(key)
        chosen = max(ciphers) if current_version is None else current_version
        if chosen not in ciphers:
            raise ValueError(f"encryption keys: current version {chosen} is not configured")
        self._ciphers = ciphers
        self.current_version = chosen
        self._context = context + b"\x00"

    @classmethod
    def from_config(cls, spec: str, current_version: int | None = None, *, context: bytes) -> SecretBox:
        """Parse configuration text: "<base64 key>" or "1:<base64>,2:<base64>" (see module doc)."""
        if not isinstance(spec, str) or not spec.strip():
            raise ValueError("encryption keys: not configured (empty)")
        entries = [e for e in re.split(r"[,\s]+", spec.strip()) if e]
        keys: dict[int, bytes] = {}
        for index, entry in enumerate(entries, start=1):
            match = _VERSIONED_ENTRY.fullmatch(entry)
            if match is None:
                if len(entries) > 1:
                    raise ValueError(
                        f"encryption keys: entry {index} has no '<version>:' prefix "
                        "(needed when several keys are configured)"
                    )
                version, material = 1, entry
            else:
                version, material = int(match.group(1)), match.group(2)
            if version in keys:
                raise ValueError(f"encryption keys: version {version} is configured twice")
            if not 1 <= version <= 255:
                raise ValueError(f"encryption keys: version must be 1..255, got {version}")
            keys[version] = decode_key_32(material, f"encryption key version {version}")
        return cls(keys, current_version, context=context)

    @property
    def versions(self) -> tuple[int, ...]:
        return tuple(sorted(self._ciphers))

    def encrypt(self, plaintext: str, key_id: str) -> bytes:
        """Seal `plaintext` for the row `key_id` under the current encryption key."""
        if not key_id:
            raise ValueError("key_id is required: it binds the ciphertext to its row")
        nonce = secrets.token_bytes(NONCE_BYTES)
        version = self.current_version
        sealed = self._ciphers[version].encrypt(
            nonce, plaintext.encode("utf-8"), self._associated_data(version, key_id)
        )
        return bytes([version]) + nonce + sealed

    def decrypt(self, blob: bytes, key_id: str) -> str:
        """Open a blob sealed for `key_id`; SecretBoxError when it does not authenticate."""
        if not isinstance(blob, (bytes, bytearray, memoryview)):
            raise SecretBoxError("ciphertext must be bytes")
        data = bytes(blob)
        if len(data) < _HEADER_BYTES + TAG_BYTES:
            raise SecretBoxError("ciphertext is truncated")
        version = data[0]
        cipher = self._ciphers.get(version)
        if cipher is None:
            raise SecretBoxError(
                f"ciphertext was sealed with encryption key version {version}, not configured"
            )
        nonce, sealed = data[1:_HEADER_BYTES], data[_HEADER_BYTES:]
        try:
            plaintext = cipher.decrypt(nonce, sealed, self._associated_data(version, key_id))
        except InvalidTag:
            raise SecretBoxError(
                "ciphertext failed authentication (tampered or bound to another key)"
            ) from None
        return plaintext.decode("utf-8")

    def version_of(self, blob: bytes) -> int:
        if not blob:
            raise SecretBoxError("ciphertext is empty")
        return bytes(blob[:1])[0]

    def needs_rotation(self, blob: bytes) -> bool:
        """True when the blob was sealed with an older encryption key than the current one."""
        return self.version_of(blob) != self.current_version

    def reencrypt(self, blob: bytes, key_id: str) -> bytes:
        """Open with whichever key sealed it and seal again under the current key."""
        return self.encrypt(self.decrypt(blob, key_id), key_id)

    def _associated_data(self, version: int, key_id: str) -> bytes:
        return self._context + bytes([version]) + key_id.encode("utf-8")


def generate_encryption_key_text() -> str:
    """A fresh 32-byte key as base64url text, for dev setups and documentation."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")
