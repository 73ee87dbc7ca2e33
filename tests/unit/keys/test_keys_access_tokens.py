from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keys_service.domain.access_tokens import (
    ACCESS_TOKEN_LIFETIME_SECONDS,
    AccessClaims,
    SigningKey,
    SigningKeyring,
    build_claims,
    generate_signing_key,
    generate_signing_seed_text,
    jwk_thumbprint,
    jwks,
    new_jti,
    opaque_subject,
    sign_claims,
    verify_access_token,
)
from paygate_runtime.errors import InvalidArgument, Unauthenticated

ISS = "https://pay.example.test"
AUD = "paygate-access"
IAT = datetime(2026, 3, 1, 12, 0, 0, 654321, tzinfo=UTC)
NOW = IAT + timedelta(hours=1)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64url_json(value: object) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def seed_text(key: Ed25519PrivateKey) -> str:
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(raw).decode()


@pytest.fixture(scope="module")
def old_key() -> SigningKey:
    return SigningKey("k-2025", Ed25519PrivateKey.generate())


@pytest.fixture(scope="module")
def new_key() -> SigningKey:
    return SigningKey("k-2026", Ed25519PrivateKey.generate())


@pytest.fixture(scope="module")
def keyring(old_key: SigningKey, new_key: SigningKey) -> SigningKeyring:
    return SigningKeyring([old_key, new_key])


@pytest.fixture()
def claims() -> AccessClaims:
    return build_claims(iss=ISS, aud=AUD, sub="cus_abc", sid="sess-1", iat=IAT, jti=new_jti())


def verify(token: object, keyring: SigningKeyring, now: datetime = NOW, **kwargs: Any) -> AccessClaims:
    return verify_access_token(token, keyring, issuer=ISS, audience=AUD, now=now, **kwargs)


def refused_code(token: object, keyring: SigningKeyring, now: datetime = NOW, **kwargs: Any) -> str:
    with pytest.raises(Unauthenticated) as error:
        verify(token, keyring, now, **kwargs)
    return error.value.code


def forge(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    return f"{b64url_json(header)}.{b64url_json(payload)}.{b64url(signature)}"


def hs256(header: dict[str, Any], payload: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{b64url_json(header)}.{b64url_json(payload)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


# --- claims --------------------------------------------------------------------------------------


def test_build_claims_sets_seven_day_expiry_in_whole_seconds(claims: AccessClaims) -> None:
    assert claims.iat == int(IAT.timestamp())  # microseconds floored
    assert claims.exp - claims.iat == ACCESS_TOKEN_LIFETIME_SECONDS == 7 * 24 * 3600
    assert claims.issued_at == IAT.replace(microsecond=0)
    assert claims.expires_at == IAT.replace(microsecond=0) + timedelta(days=7)


def test_build_claims_accepts_epoch_seconds_and_refuses_bad_input() -> None:
    assert build_claims(iss=ISS, aud=AUD, sub="s", sid="x", iat=100, jti="j").exp == 100 + 604_800
    with pytest.raises(ValueError, match="timezone"):
        build_claims(iss=ISS, aud=AUD, sub="s", sid="x", iat=datetime(2026, 1, 1), jti="j")
    with pytest.raises(InvalidArgument) as error:
        build_claims(iss=ISS, aud=AUD, sub="", sid="x", iat=100, jti="j")
    assert error.value.code == "missing_sub"


def test_jti_is_unique() -> None:
    assert len({new_jti() for _ in range(1000)}) == 1000


# --- signing -------------------------------------------------------------------------------------


def test_signed_token_verifies_and_header_names_the_active_kid(
    keyring: SigningKeyring, claims: AccessClaims
) -> None:
    token = keyring.sign(claims)
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "EdDSA", "kid": "k-2026", "typ": "JWT"}
    assert verify(token, keyring) == claims


def test_resigning_the_same_claims_gives_the_same_token(
    keyring: SigningKeyring, claims: AccessClaims
) -> None:
    first = sign_claims(claims, keyring, "k-2026")
    # Rebuilt as GetAccessLink would: from stored fields, in another key order (as jsonb would return).
    stored = dict(reversed(list(claims.to_payload().items())))
    rebuilt = AccessClaims.from_payload(stored)
    assert sign_claims(rebuilt, keyring, "k-2026") == first
    again = build_claims(
        iss=ISS, aud=AUD, sub="cus_abc", sid="sess-1", iat=IAT + timedelta(microseconds=5), jti=claims.jti
    )
    assert sign_claims(again, keyring, "k-2026") == first
    # The header and payload are canonical JSON: sorted keys, no spaces.
    head, body, _ = first.split(".")
    assert base64.urlsafe_b64decode(head + "==") == b'{"alg":"EdDSA","kid":"k-2026","typ":"JWT"}'
    payload_json = base64.urlsafe_b64decode(body + "==").decode()
    assert list(json.loads(payload_json)) == sorted(json.loads(payload_json))


def test_different_claims_or_kid_give_different_tokens(keyring: SigningKeyring, claims: AccessClaims) -> None:
    other = build_claims(iss=ISS, aud=AUD, sub="cus_abc", sid="sess-2", iat=IAT, jti=claims.jti)
    assert keyring.sign(claims) != keyring.sign(other)
    assert keyring.sign(claims, "k-2025") != keyring.sign(claims, "k-2026")


def test_rotation_old_kid_still_verifies_until_dropped(
    old_key: SigningKey, new_key: SigningKey, claims: AccessClaims
) -> None:
    before = SigningKeyring([old_key])
    old_token = before.sign(claims)
    after = SigningKeyring([old_key, new_key])
    assert after.active_kid == "k-2026"
    assert verify(old_token, after) == claims
    assert jwt.get_unverified_header(after.sign(claims))["kid"] == "k-2026"
    dropped = SigningKeyring([new_key])
    assert refused_code(old_token, dropped) == "token_unknown_kid"


def test_sign_with_unconfigured_kid_is_a_config_error(keyring: SigningKeyring, claims: AccessClaims) -> None:
    with pytest.raises(ValueError, match="not configured"):
        keyring.sign(claims, "nope")


# --- verification refusals -----------------------------------------------------------------------


def test_alg_none_is_refused(keyring: SigningKeyring, claims: AccessClaims) -> None:
    for alg in ("none", "None", "NONE"):
        token = forge({"alg": alg, "kid": "k-2026", "typ": "JWT"}, claims.to_payload())
        assert refused_code(token, keyring) == "token_invalid"
    # Also with a trailing signature of a real token glued on.
    real_sig = keyring.sign(claims).split(".")[2]
    token = forge({"alg": "none", "kid": "k-2026"}, claims.to_payload()) + real_sig
    assert refused_code(token, keyring) == "token_invalid"


def test_hs256_algorithm_confusion_with_public_key_bytes_is_refused(
    keyring: SigningKeyring, new_key: SigningKey, claims: AccessClaims
) -> None:
    public = new_key.public_key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = {"alg": "HS256", "kid": "k-2026", "typ": "JWT"}
    for secret in (raw, pem, b64url(raw).encode(), json.dumps(new_key.public_jwk()).encode()):
        assert refused_code(hs256(header, claims.to_payload(), secret), keyring) == "token_invalid"


@pytest.mark.parametrize("alg", ["HS256", "HS512", "RS256", "ES256", "PS256", "Ed25519", "eddsa", None, 1])
def test_any_other_alg_header_is_refused(keyring: SigningKeyring, claims: AccessClaims, alg: object) -> None:
    # A genuine EdDSA signature under a rewritten header must not pass either.
    _, body, signature = keyring.sign(claims).split(".")
    token = f"{b64url_json({'alg': alg, 'kid': 'k-2026', 'typ': 'JWT'})}.{body}.{signature}"
    assert refused_code(token, keyring) == "token_invalid"


def test_token_signed_by_a_foreign_key_with_our_kid_is_refused(
    keyring: SigningKeyring, claims: AccessClaims
) -> None:
    impostor = SigningKeyring([SigningKey("k-2026", Ed25519PrivateKey.generate())])
    assert refused_code(impostor.sign(claims), keyring) == "token_invalid"


def test_tampered_payload_is_refused(keyring: SigningKeyring, claims: AccessClaims) -> None:
    head, _, signature = keyring.sign(claims).split(".")
    payload = claims.to_payload() | {"sid": "someone-elses-session"}
    assert refused_code(f"{head}.{b64url_json(payload)}.{signature}", keyring) == "token_invalid"


def test_tampered_signature_is_refused(keyring: SigningKeyring, claims: AccessClaims) -> None:
    token = keyring.sign(claims)
    head, body, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[0] ^= 1
    assert refused_code(f"{head}.{body}.{b64url(bytes(raw))}", keyring) == "token_invalid"
    assert refused_code(f"{head}.{body}.", keyring) == "token_invalid"


def test_wrong_audience_and_issuer_are_refused(keyring: SigningKeyring, claims: AccessClaims) -> None:
    token = keyring.sign(claims)
    with pytest.raises(Unauthenticated) as aud_error:
        verify_access_token(token, keyring, issuer=ISS, audience="other-app", now=NOW)
    assert aud_error.value.code == "token_wrong_audience"
    with pytest.raises(Unauthenticated) as iss_error:
        verify_access_token(token, keyring, issuer="https://evil.test", audience=AUD, now=NOW)
    assert iss_error.value.code == "token_wrong_issuer"


def test_list_audience_is_refused_even_if_it_contains_ours(
    keyring: SigningKeyring, new_key: SigningKey, claims: AccessClaims
) -> None:
    payload = claims.to_payload() | {"aud": [AUD, "other"]}
    token = jwt.encode(payload, new_key.private_key, algorithm="EdDSA", headers={"kid": "k-2026"})
    assert refused_code(token, keyring) == "token_invalid"


def test_expiry_allows_a_small_skew_only(keyring: SigningKeyring, claims: AccessClaims) -> None:
    token = keyring.sign(claims)
    exp = claims.expires_at
    assert verify(token, keyring, now=exp - timedelta(seconds=1)) == claims
    assert verify(token, keyring, now=exp + timedelta(seconds=59)) == claims
    assert refused_code(token, keyring, now=exp + timedelta(seconds=60)) == "token_expired"
    assert refused_code(token, keyring, now=exp + timedelta(days=1)) == "token_expired"
    assert refused_code(token, keyring, now=exp + timedelta(seconds=1), leeway_seconds=0) == "token_expired"


def test_token_from_the_future_is_refused(keyring: SigningKeyring, claims: AccessClaims) -> None:
    token = keyring.sign(claims)
    assert verify(token, keyring, now=claims.issued_at - timedelta(seconds=60)) == claims
    assert refused_code(token, keyring, now=claims.issued_at - timedelta(seconds=61)) == "token_invalid"


def test_unknown_and_missing_kid(keyring: SigningKeyring, new_key: SigningKey, claims: AccessClaims) -> None:
    stranger = SigningKeyring([SigningKey("k-9999", Ed25519PrivateKey.generate())])
    assert refused_code(stranger.sign(claims), keyring) == "token_unknown_kid"
    no_kid = jwt.encode(claims.to_payload(), new_key.private_key, algorithm="EdDSA")
    assert "kid" not in jwt.get_unverified_header(no_kid)
    assert refused_code(no_kid, keyring) == "token_invalid"
    empty_kid = jwt.encode(claims.to_payload(), new_key.private_key, algorithm="EdDSA", headers={"kid": ""})
    assert refused_code(empty_kid, keyring) == "token_invalid"


@pytest.mark.parametrize("missing", ["iss", "aud", "sub", "sid", "iat", "exp", "jti"])
def test_each_missing_claim_is_refused(
    keyring: SigningKeyring, new_key: SigningKey, claims: AccessClaims, missing: str
) -> None:
    payload = claims.to_payload()
    del payload[missing]
    token = jwt.encode(payload, new_key.private_key, algorithm="EdDSA", headers={"kid": "k-2026"})
    assert refused_code(token, keyring) == "token_invalid"


@pytest.mark.parametrize(
    "changes",
    [
        {"exp": 1.5e12},
        {"iat": "1"},
        {"exp": True},
        {"sub": ""},
        {"sid": 7},
        {"jti": None},
        {"exp": 10, "iat": 10},
    ],
)
def test_ill_typed_claims_are_refused(
    keyring: SigningKeyring, new_key: SigningKey, claims: AccessClaims, changes: dict[str, Any]
) -> None:
    payload = claims.to_payload() | changes
    token = jwt.encode(payload, new_key.private_key, algorithm="EdDSA", headers={"kid": "k-2026"})
    assert refused_code(token, keyring) == "token_invalid"


def test_crit_header_is_refused(keyring: SigningKeyring, new_key: SigningKey, claims: AccessClaims) -> None:
    head = {"alg": "EdDSA", "kid": "k-2026", "crit": ["exp"], "exp": 1}
    signing_input = f"{b64url_json(head)}.{b64url_json(claims.to_payload())}"
    token = f"{signing_input}.{b64url(new_key.private_key.sign(signing_input.encode()))}"
    assert refused_code(token, keyring) == "token_invalid"


def test_embedded_jwk_header_is_ignored(keyring: SigningKeyring, claims: AccessClaims) -> None:
    # An attacker's own key in the header must not be used to verify.
    attacker = SigningKey("k-2026", Ed25519PrivateKey.generate())
    head = {"alg": "EdDSA", "kid": "k-2026", "jwk": attacker.public_jwk()}
    signing_input = f"{b64url_json(head)}.{b64url_json(claims.to_payload())}"
    token = f"{signing_input}.{b64url(attacker.private_key.sign(signing_input.encode()))}"
    assert refused_code(token, keyring) == "token_invalid"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        "...",
        "x" * 10_000,
        "é.é.é",
        None,
        42,
        b"a.b.c",
        "eyJ.eyJ.",
        "\x00.\x00.\x00",
    ],
)
def test_garbage_is_refused_without_crashing(keyring: SigningKeyring, token: object) -> None:
    assert refused_code(token, keyring) == "token_invalid"


def test_non_object_payload_is_refused(keyring: SigningKeyring, new_key: SigningKey) -> None:
    head = {"alg": "EdDSA", "kid": "k-2026"}
    signing_input = f"{b64url_json(head)}.{b64url_json([1, 2, 3])}"
    token = f"{signing_input}.{b64url(new_key.private_key.sign(signing_input.encode()))}"
    assert refused_code(token, keyring) == "token_invalid"


# --- JWKS ----------------------------------------------------------------------------------------


def test_jwks_publishes_public_keys_only(keyring: SigningKeyring) -> None:
    document = jwks(keyring)
    assert [k["kid"] for k in document["keys"]] == ["k-2026", "k-2025"]
    for entry in document["keys"]:
        assert entry.keys() == {"kty", "crv", "x", "kid", "alg", "use"}
        assert (entry["kty"], entry["crv"], entry["alg"], entry["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
        assert "d" not in entry
        assert len(base64.urlsafe_b64decode(entry["x"] + "=")) == 32
    json.dumps(document)  # serialisable as served


def test_a_generic_jwk_loader_verifies_our_tokens(keyring: SigningKeyring, claims: AccessClaims) -> None:
    token = keyring.sign(claims)
    document = jwks(keyring)
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(k for k in document["keys"] if k["kid"] == kid)
    decoded = jwt.decode(
        token,
        jwt.PyJWK(jwk),
        algorithms=["EdDSA"],
        audience=AUD,
        issuer=ISS,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert decoded == claims.to_payload()
    key_set = jwt.PyJWKSet.from_dict(document)
    assert key_set["k-2025"].key_id == "k-2025"
    old_token = keyring.sign(claims, "k-2025")
    assert (
        jwt.decode(
            old_token, key_set["k-2025"], algorithms=["EdDSA"], audience=AUD, options={"verify_exp": False}
        )["sid"]
        == "sess-1"
    )
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            old_token, key_set["k-2026"], algorithms=["EdDSA"], audience=AUD, options={"verify_exp": False}
        )


def test_jwk_thumbprint_matches_rfc_8037_vector() -> None:
    # RFC 8037 appendix A.1/A.3.
    seed = base64.urlsafe_b64decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=")
    key = SigningKey.from_material("rfc", base64.b64encode(seed).decode())
    assert key.public_jwk()["x"] == "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    assert jwk_thumbprint(key.public_key) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


# --- keyring configuration -----------------------------------------------------------------------


def test_generate_signing_key_gives_a_loadable_pem_and_thumbprint_kid(claims: AccessClaims) -> None:
    kid, pem = generate_signing_key()
    assert pem.startswith("-----BEGIN PRIVATE KEY-----")
    ring = SigningKeyring.from_config(json.dumps({kid: pem}))
    assert kid == "ed25519-" + jwk_thumbprint(ring.signing_key(kid).public_key)[:16]
    assert verify(ring.sign(claims), ring) == claims
    other_kid, _ = generate_signing_key()
    assert other_kid != kid


def test_from_config_forms_and_order(claims: AccessClaims) -> None:
    seed_a, seed_b = generate_signing_seed_text(), generate_signing_seed_text()
    compact = SigningKeyring.from_config(f"a={seed_a}, b={seed_b}")
    assert compact.kids == ("a", "b") and compact.active_kid == "b"
    listed = SigningKeyring.from_config(
        json.dumps([{"kid": "a", "key": seed_a}, {"kid": "b", "key": seed_b}])
    )
    assert listed.active_kid == "b"
    # Same seeds, same keys: a token from one keyring verifies with the other.
    assert verify(compact.sign(claims), listed) == claims
    pinned = SigningKeyring.from_config(f"a={seed_a} b={seed_b}", active_kid="a")
    assert jwt.get_unverified_header(pinned.sign(claims))["kid"] == "a"


def test_seed_and_pem_of_the_same_key_are_the_same_key(claims: AccessClaims) -> None:
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    from_seed = SigningKeyring.from_pairs([("k", seed_text(private))])
    from_pem = SigningKeyring.from_pairs([("k", pem)])
    assert from_seed.sign(claims) == from_pem.sign(claims)


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("", "empty"),
        ("{not json", "not valid JSON"),
        ('[{"kid": "a"}]', '"kid" and "key"'),
        ('{"a": 5}', "must be a string"),
        ("a", "kid=<base64 seed>"),
        ("a=AAAA", "32 bytes"),
        ("bad!kid=" + "A" * 43, "signing key id"),
        ('{"a": "-----BEGIN PRIVATE KEY-----\\ngarbage\\n-----END PRIVATE KEY-----"}', "PEM"),
    ],
)
def test_from_config_errors_name_the_problem(spec: str, problem: str) -> None:
    with pytest.raises(ValueError) as error:
        SigningKeyring.from_config(spec)
    assert problem in str(error.value)


def test_from_config_refuses_non_ed25519_pem_and_duplicate_kids() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    with pytest.raises(ValueError, match="not an Ed25519 key"):
        SigningKeyring.from_config(json.dumps({"a": ec_pem}))
    seed = generate_signing_seed_text()
    with pytest.raises(ValueError, match="configured twice"):
        SigningKeyring.from_config(f"a={seed},a={seed}")
    with pytest.raises(ValueError, match="active kid"):
        SigningKeyring.from_config(f"a={seed}", active_kid="b")


def test_signing_key_repr_hides_private_material() -> None:
    key = SigningKey("k", Ed25519PrivateKey.generate())
    assert repr(key) == "SigningKey(kid='k')"


# --- opaque subject ------------------------------------------------------------------------------


def test_opaque_subject_is_stable_keyed_and_never_the_email() -> None:
    secret = b"s" * 32
    sub = opaque_subject("m-1", "Ann@Example.com", secret)
    assert sub.startswith("cus_")
    assert "ann" not in sub.lower() and "example" not in sub.lower()
    assert opaque_subject("m-1", " ann@example.com ", secret) == sub
    assert opaque_subject("m-2", "ann@example.com", secret) != sub
    assert opaque_subject("m-1", "bob@example.com", secret) != sub
    assert opaque_subject("m-1", "ann@example.com", b"t" * 32) != sub
    # Not a bare hash of the email that anyone could recompute.
    assert hashlib.sha256(b"ann@example.com").hexdigest()[:8] not in sub


def test_opaque_subject_refuses_weak_secret_and_empty_input() -> None:
    with pytest.raises(ValueError):
        opaque_subject("m-1", "a@b.c", b"short")
    with pytest.raises(InvalidArgument):
        opaque_subject("m-1", "", b"s" * 32)
