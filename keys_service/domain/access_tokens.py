"""Customer access tokens: 7-day JWTs signed with Ed25519 (JWS alg "EdDSA"), and their public JWK Set.

Why Ed25519:
- asymmetric, so the gateway and anybody holding the JWK Set can verify without a shared secret;
- deterministic signatures (RFC 8032), so GetAccessLink can rebuild the same link from the stored claims
  without storing the token: header keys are sorted by pyjwt and `AccessClaims.to_payload` fixes the claim
  order, so equal claims + the same key give byte-identical tokens.

Verification trusts nothing in the token before its signature verifies, and never lets the token choose
how it is verified: the algorithm must be exactly "EdDSA" and the key comes from our keyring by `kid`
(a `jwk`, `jku` or `x5u` header is ignored). That shuts out `alg: none` and algorithm confusion (e.g. an
HS256 token MAC'd with our public key's bytes). Revocation by jti needs the database and is the caller's
check, after this one (`TOKEN_REVOKED` is its code).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from keys_service.domain.api_keys import b58encode_fixed
from paygate_runtime.crypto.key_material import decode_key_32
from paygate_runtime.errors import Unauthenticated, require

ALGORITHM = "EdDSA"
ACCESS_TOKEN_LIFETIME_SECONDS = 7 * 24 * 3600
DEFAULT_LEEWAY_SECONDS = 60
# Our tokens are ~400 chars; anything far larger is junk and not worth parsing.
MAX_TOKEN_CHARS = 4096
REQUIRED_CLAIMS = ("iss", "aud", "sub", "sid", "iat", "exp", "jti")

# Stable error codes (all UNAUTHENTICATED, 401 at the gateway).
TOKEN_INVALID = "token_invalid"
TOKEN_EXPIRED = "token_expired"
TOKEN_UNKNOWN_KID = "token_unknown_kid"
TOKEN_WRONG_AUDIENCE = "token_wrong_audience"
TOKEN_WRONG_ISSUER = "token_wrong_issuer"
TOKEN_REVOKED = "token_revoked"

_KID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_SUBJECT_CONTEXT = b"paygate.access_token.sub.v1\x00"
_MAIL_PROOF_CONTEXT = b"paygate.access_token.mail_proof.v1\x00"
MAX_MAIL_PROOF_CHARS = 64
MIN_SUBJECT_SECRET_BYTES = 16


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """The claims of an access token. `iat` and `exp` are whole seconds since the epoch."""

    iss: str
    aud: str
    sub: str
    sid: str
    iat: int
    exp: int
    jti: str

    def to_payload(self) -> dict[str, Any]:
        """Claims in a fixed (sorted) order: determinism must not depend on how they were stored, e.g. in
        a Postgres jsonb column, which reorders keys."""
        return {
            "aud": self.aud,
            "exp": self.exp,
            "iat": self.iat,
            "iss": self.iss,
            "jti": self.jti,
            "sid": self.sid,
            "sub": self.sub,
        }

    @property
    def issued_at(self) -> datetime:
        return datetime.fromtimestamp(self.iat, UTC)

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.exp, UTC)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> AccessClaims:
        """Typed claims from a decoded payload; Unauthenticated(token_invalid) when one is missing or of the
        wrong type (a float `exp` or a list `aud` is wrong: we never issue them)."""
        values: dict[str, Any] = {}
        for name in REQUIRED_CLAIMS:
            value = payload.get(name)
            if name in ("iat", "exp"):
                ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
            else:
                ok = isinstance(value, str) and value != ""
            if not ok:
                raise Unauthenticated(TOKEN_INVALID, f"access token claim {name!r} is missing or malformed")
            values[name] = value
        return cls(**values)


def build_claims(*, iss: str, aud: str, sub: str, sid: str, iat: datetime | int, jti: str) -> AccessClaims:
    """Claims of a new token: exp = iat + 7 days. A datetime `iat` is floored to whole seconds, so claims
    rebuilt from a stored microsecond timestamp are identical to the first ones."""
    for value, field in ((iss, "iss"), (aud, "aud"), (sub, "sub"), (sid, "sid"), (jti, "jti")):
        require(value, field)
    if isinstance(iat, datetime):
        if iat.tzinfo is None:
            raise ValueError("iat must be timezone-aware")
        iat_seconds = int(iat.timestamp() // 1)
    elif isinstance(iat, int) and not isinstance(iat, bool):
        iat_seconds = iat
    else:
        raise ValueError("iat must be a datetime or whole seconds")
    return AccessClaims(
        iss=iss,
        aud=aud,
        sub=sub,
        sid=sid,
        iat=iat_seconds,
        exp=iat_seconds + ACCESS_TOKEN_LIFETIME_SECONDS,
        jti=jti,
    )


def new_jti() -> str:
    """A fresh token id (a UUID, so it fits a uuid column)."""
    return str(uuid.uuid4())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def jwk_thumbprint(public_key: Ed25519PublicKey) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url) of an Ed25519 public key."""
    canonical = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": _b64url(_raw_public(public_key))},
        separators=(",", ":"),
        sort_keys=True,
    )
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def validate_kid(kid: object) -> str:
    if not isinstance(kid, str) or not _KID.fullmatch(kid):
        raise ValueError("signing key id must be 1..64 chars of letters, digits, '.', '_' or '-'")
    return kid


def load_ed25519_private_key(material: str | bytes, what: str = "signing key") -> Ed25519PrivateKey:
    """An Ed25519 private key from PKCS#8 PEM or from a base64/base64url 32-byte seed."""
    text = material.decode("ascii", errors="replace") if isinstance(material, bytes) else material
    if not isinstance(text, str):
        raise ValueError(f"{what}: expected PEM or base64 text")
    if "-----BEGIN" in text:
        try:
            key = serialization.load_pem_private_key(text.strip().encode("ascii"), password=None)
        except (ValueError, TypeError, UnicodeEncodeError):
            raise ValueError(f"{what}: PEM does not hold an unencrypted private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{what}: PEM holds a {type(key).__name__}, not an Ed25519 key")
        return key
    return Ed25519PrivateKey.from_private_bytes(decode_key_32(text, f"{what} (Ed25519 seed)"))


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey

    @classmethod
    def from_material(cls, kid: str, material: str | bytes) -> SigningKey:
        kid = validate_kid(kid)
        return cls(kid, load_ed25519_private_key(material, f"signing key {kid!r}"))

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, str]:
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": _b64url(_raw_public(self.public_key)),
            "kid": self.kid,
            "alg": ALGORITHM,
            "use": "sig",
        }

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid!r})"


class SigningKeyring:
    """Ed25519 signing keys by kid, oldest first. The active key (default: the newest, i.e. the last)
    signs new tokens; every key verifies, so an old kid keeps working until it is dropped from
    configuration, which should happen only after its last token (7 days) has expired."""

    def __init__(self, keys: Sequence[SigningKey], active_kid: str | None = None) -> None:
        if not keys:
            raise ValueError("signing keys: at least one key is required")
        by_kid: dict[str, SigningKey] = {}
        for key in keys:
            if key.kid in by_kid:
                raise ValueError(f"signing keys: kid {key.kid!r} is configured twice")
            by_kid[key.kid] = key
        active = keys[-1].kid if active_kid is None else active_kid
        if active not in by_kid:
            raise ValueError(f"signing keys: active kid {active!r} is not configured")
        self._keys = by_kid
        self._public = {kid: key.public_key for kid, key in by_kid.items()}
        self.active_kid = active

    @classmethod
    def from_pairs(
        cls, pairs: Iterable[tuple[str, str | bytes]], active_kid: str | None = None
    ) -> SigningKeyring:
        return cls([SigningKey.from_material(kid, material) for kid, material in pairs], active_kid)

    @classmethod
    def from_config(cls, spec: str, active_kid: str | None = None) -> SigningKeyring:
        """Configuration text, oldest key first:
        - a JSON object ``{"kid": "<PEM or base64 seed>", ...}`` or list ``[{"kid": ..., "key": ...}]``
          (``"pem"`` is accepted in place of ``"key"``);
        - or compact ``kid1=<base64 seed>,kid2=<base64 seed>`` (commas or whitespace between entries).
        """
        if not isinstance(spec, str) or not spec.strip():
            raise ValueError("signing keys: not configured (empty)")
        text = spec.strip()
        pairs: list[tuple[str, str]] = []
        if text[0] in "{[":
            try:
                document = json.loads(text)
            except json.JSONDecodeError:
                raise ValueError("signing keys: configuration is not valid JSON") from None
            if isinstance(document, dict):
                items = list(document.items())
            else:
                items = []
                for entry in document:
                    # "pem" is what `paygate up` and the deployment manifests write; "key" also takes a seed.
                    material_field = "key" if isinstance(entry, dict) and "key" in entry else "pem"
                    if not isinstance(entry, dict) or "kid" not in entry or material_field not in entry:
                        raise ValueError(
                            'signing keys: each JSON list entry needs "kid" and "key" (or "pem")'
                        )
                    items.append((entry["kid"], entry[material_field]))
            for kid, material in items:
                if not isinstance(material, str):
                    raise ValueError(f"signing key {kid!r}: key must be a string")
                pairs.append((kid, material))
        else:
            for entry in re.split(r"[,\s]+", text):
                if not entry:
                    continue
                kid, sep, material = entry.partition("=")
                if not sep:
                    raise ValueError("signing keys: compact entries look like kid=<base64 seed>")
                pairs.append((kid, material))
        return cls.from_pairs(pairs, active_kid)

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def public_key(self, kid: str) -> Ed25519PublicKey | None:
        return self._public.get(kid)

    def signing_key(self, kid: str | None = None) -> SigningKey:
        chosen = self.active_kid if kid is None else kid
        key = self._keys.get(chosen)
        if key is None:
            raise ValueError(f"signing keys: kid {chosen!r} is not configured")
        return key

    def sign(self, claims: AccessClaims, kid: str | None = None) -> str:
        return sign_claims(claims, self, kid)


def sign_claims(claims: AccessClaims, keyring: SigningKeyring, kid: str | None = None) -> str:
    """Sign with `kid` (default: the active key). Deterministic: same claims + same kid = same token.
    GetAccessLink passes the kid stored with the token so a rotation does not change old links."""
    key = keyring.signing_key(kid)
    return jwt.encode(
        claims.to_payload(),
        key.private_key,
        algorithm=ALGORITHM,
        headers={"kid": key.kid, "typ": "JWT"},
        sort_headers=True,
    )


_DECODE_OPTIONS: Any = {
    "verify_signature": True,
    # Claims are checked below against the caller's `now`, with our own error codes.
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
    "require": [],
}


def verify_access_token(
    token: object,
    keyring: SigningKeyring,
    *,
    issuer: str,
    audience: str,
    now: datetime,
    leeway_seconds: int = DEFAULT_LEEWAY_SECONDS,
) -> AccessClaims:
    """The token's claims if it is genuine and current; Unauthenticated with a stable code otherwise.

    Refuses: malformed or oversize input, any alg but EdDSA (none, HS256, ...), a missing `kid`
    (token_invalid), an unknown kid (token_unknown_kid), a bad signature (token_invalid), a missing or
    ill-typed claim (token_invalid), a wrong iss/aud (token_wrong_issuer / token_wrong_audience), a token
    issued more than `leeway_seconds` in the future (token_invalid), and one past exp + leeway
    (token_expired). The caller then refuses a revoked jti (token_revoked).
    """
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        raise Unauthenticated(TOKEN_INVALID, "access token is malformed")
    if token.count(".") != 2:
        raise Unauthenticated(TOKEN_INVALID, "access token is malformed")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Unauthenticated(TOKEN_INVALID, "access token is malformed") from None
    if header.get("alg") != ALGORITHM:
        raise Unauthenticated(TOKEN_INVALID, "access token algorithm is not allowed")
    if "crit" in header:
        # We implement no JWS extensions, so a token that demands one must be refused (RFC 7515 §4.1.11).
        raise Unauthenticated(TOKEN_INVALID, "access token uses an unsupported critical header")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise Unauthenticated(TOKEN_INVALID, "access token has no key id")
    public_key = keyring.public_key(kid)
    if public_key is None:
        raise Unauthenticated(TOKEN_UNKNOWN_KID, "access token was signed with an unknown key")
    try:
        payload = jwt.decode(token, public_key, algorithms=[ALGORITHM], options=_DECODE_OPTIONS)
    except jwt.PyJWTError:
        raise Unauthenticated(TOKEN_INVALID, "access token signature does not verify") from None
    if not isinstance(payload, dict):
        raise Unauthenticated(TOKEN_INVALID, "access token payload is not a JSON object")
    claims = AccessClaims.from_payload(payload)
    if claims.iss != issuer:
        raise Unauthenticated(TOKEN_WRONG_ISSUER, "access token has the wrong issuer")
    if claims.aud != audience:
        raise Unauthenticated(TOKEN_WRONG_AUDIENCE, "access token has the wrong audience")
    if claims.exp <= claims.iat:
        raise Unauthenticated(TOKEN_INVALID, "access token expires before it was issued")
    now_seconds = now.timestamp()
    if claims.iat > now_seconds + leeway_seconds:
        raise Unauthenticated(TOKEN_INVALID, "access token is issued in the future")
    nbf = payload.get("nbf")
    if nbf is not None and (
        isinstance(nbf, bool) or not isinstance(nbf, int) or nbf > now_seconds + leeway_seconds
    ):
        raise Unauthenticated(TOKEN_INVALID, "access token is not valid yet")
    if now_seconds >= claims.exp + leeway_seconds:
        raise Unauthenticated(TOKEN_EXPIRED, "access token has expired")
    return claims


def jwks(keyring: SigningKeyring) -> dict[str, list[dict[str, str]]]:
    """The public JWK Set served at /.well-known/jwks.json: every configured kid, active one first."""
    kids = [keyring.active_kid, *[kid for kid in keyring.kids if kid != keyring.active_kid]]
    return {"keys": [keyring.signing_key(kid).public_jwk() for kid in kids]}


def mail_proof(jti: str, secret: bytes) -> str:
    """The `proof` of a token's mail link: HMAC-SHA256 of the jti under the subject secret (its own context).

    Only the customer's mail carries it, so opening a link with it shows the visitor read the mail sent to the
    purchase's address; the merchant's copy of the link lacks it. Keyed by the secret that already stands for
    the customer's identity; 128 bits, base58 like the subject.
    """
    if not isinstance(secret, bytes) or len(secret) < MIN_SUBJECT_SECRET_BYTES:
        raise ValueError(f"subject secret must be at least {MIN_SUBJECT_SECRET_BYTES} bytes")
    require(jti, "jti")
    digest = hmac.new(secret, _MAIL_PROOF_CONTEXT + jti.encode(), hashlib.sha256).digest()
    return b58encode_fixed(digest[:16])


def mail_proof_matches(jti: str, proof: str, secret: bytes) -> bool:
    """Constant-time check of a link's `proof`; False for an empty, oversized or non-ASCII one."""
    if not proof or len(proof) > MAX_MAIL_PROOF_CHARS or not proof.isascii():
        return False
    return hmac.compare_digest(mail_proof(jti, secret).encode(), proof.encode())


def opaque_subject(merchant_id: str, email_or_session: str, secret: bytes) -> str:
    """An opaque, stable customer id for `sub`: HMAC-SHA256 under a server secret, never the email.

    Keyed (not a bare hash) so nobody can test a guessed email against a token; scoped by merchant so two
    merchants' ids for one person do not link. Input is trimmed and lower-cased so "Ann@X.com " and
    "ann@x.com" map to one customer.
    """
    if not isinstance(secret, bytes) or len(secret) < MIN_SUBJECT_SECRET_BYTES:
        raise ValueError(f"subject secret must be at least {MIN_SUBJECT_SECRET_BYTES} bytes")
    require(merchant_id, "merchant_id")
    require(email_or_session, "email_or_session")
    message = _SUBJECT_CONTEXT + merchant_id.encode() + b"\x00" + email_or_session.strip().lower().encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return "cus_" + b58encode_fixed(digest[:16])


def generate_signing_key() -> tuple[str, str]:
    """A new Ed25519 key for dev setups: (kid, PKCS#8 PEM). The kid is derived from the public key's
    RFC 7638 thumbprint, so it is stable for the key and needs no registry."""
    private_key = Ed25519PrivateKey.generate()
    kid = "ed25519-" + jwk_thumbprint(private_key.public_key())[:16]
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    return kid, pem


def generate_signing_seed_text() -> str:
    """A fresh Ed25519 seed as base64url text (the compact configuration form)."""
    return _b64url(secrets.token_bytes(32))
