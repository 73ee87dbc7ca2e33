"""Access tokens: idempotent issue, identical re-signed links, verification refusals (gRPC and HTTP 401),
revocation by jti, the JWK Set and signing-key rotation."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from keys_helpers import TEST, issue_access, signing_pem

from paygate.keys.v1 import keys_pb2
from paygate_runtime.grpc_errors import error_code
from support.stack import ServiceStack


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


async def test_issue_is_idempotent_and_link_is_rebuilt_identically(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    issued = await issue_access(stack, merchant)
    again = await stack.keys.IssueAccessToken(
        keys_pb2.IssueAccessTokenRequest(merchant_id=merchant.id, session_id=issued.session_id, mode=TEST),
        timeout=5,
    )
    assert again.id == issued.link.access_token.id
    link2 = await stack.keys.GetAccessLink(
        keys_pb2.GetAccessLinkRequest(session_id=issued.session_id, merchant_id=merchant.id), timeout=5
    )
    assert link2.token == issued.link.token and link2.url == issued.link.url
    assert issued.link.url == f"{stack.env['PAYGATE_PUBLIC_URL']}/access?token={issued.link.token}"

    kid, _ = signing_pem(stack)
    header = jwt.get_unverified_header(issued.link.token)
    assert header["alg"] == "EdDSA" and header["kid"] == kid
    claims = jwt.decode(issued.link.token, options={"verify_signature": False})
    assert set(claims) == {"iss", "aud", "sub", "sid", "iat", "exp", "jti"}
    assert claims["exp"] - claims["iat"] == 7 * 24 * 3600
    assert claims["sid"] == issued.session_id and claims["jti"] == again.id
    assert claims["iss"] == stack.env["PAYGATE_PUBLIC_URL"] and claims["aud"] == "paygate:access"
    assert claims["sub"].startswith("cus_") and merchant.id not in claims["sub"]
    # The token is not stored anywhere.
    conn = await stack.db.admin()
    try:
        dump = await conn.fetchval("SELECT string_agg(t::text, '|') FROM keys.access_tokens t")
    finally:
        await conn.close()
    assert issued.link.token.split(".")[2] not in dump


async def test_token_verifies_against_published_jwks(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    issued = await issue_access(stack, merchant)
    status, document = await stack.request("GET", "/.well-known/jwks.json")
    assert status == 200
    assert all("d" not in key for key in document["keys"])  # public halves only
    jwk_set = jwt.PyJWKSet.from_dict(document)
    kid = jwt.get_unverified_header(issued.link.token)["kid"]
    claims = jwt.decode(
        issued.link.token,
        jwk_set[kid].key,
        algorithms=["EdDSA"],
        audience="paygate:access",
        issuer=stack.env["PAYGATE_PUBLIC_URL"],
    )
    assert claims["sid"] == issued.session_id
    verified = await stack.keys.VerifyAccessToken(
        keys_pb2.VerifyAccessTokenRequest(token=issued.link.token), timeout=5
    )
    assert (verified.session_id, verified.merchant_id, verified.jti) == (
        issued.session_id,
        merchant.id,
        issued.link.access_token.id,
    )


def _forgeries(stack: ServiceStack, token: str) -> dict[str, tuple[str, str]]:
    """name -> (token, expected code)."""
    kid, pem = signing_pem(stack)
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    claims = jwt.decode(token, options={"verify_signature": False})
    header, payload, signature = token.split(".")
    now = int(time.time())

    def signed(changes: dict[str, object], *, with_kid: str = kid, signer: object = key) -> str:
        return jwt.encode({**claims, **changes}, signer, algorithm="EdDSA", headers={"kid": with_kid})

    public_raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    tampered_payload = _b64(json.dumps({**claims, "sid": str(uuid.uuid4())}).encode())
    none_header = _b64(json.dumps({"alg": "none", "kid": kid, "typ": "JWT"}).encode())
    hs_header = _b64(json.dumps({"alg": "HS256", "kid": kid, "typ": "JWT"}).encode())
    import hashlib
    import hmac

    hs_signature = _b64(hmac.new(public_raw, f"{hs_header}.{payload}".encode(), hashlib.sha256).digest())
    return {
        "tampered": (f"{header}.{tampered_payload}.{signature}", "token_invalid"),
        "bad_signature": (f"{header}.{payload}.{signature[:-4]}AAAA", "token_invalid"),
        "alg_none": (f"{none_header}.{payload}.", "token_invalid"),
        "hs256_with_public_key": (f"{hs_header}.{payload}.{hs_signature}", "token_invalid"),
        "wrong_audience": (signed({"aud": "someone-else"}), "token_wrong_audience"),
        "wrong_issuer": (signed({"iss": "https://evil.example"}), "token_wrong_issuer"),
        "expired": (signed({"iat": now - 8 * 86400, "exp": now - 86400}), "token_expired"),
        "unknown_kid": (signed({}, with_kid="nope"), "token_unknown_kid"),
        "foreign_key": (signed({}, signer=Ed25519PrivateKey.generate()), "token_invalid"),
        "garbage": ("not-a-token", "token_invalid"),
    }


async def test_forged_expired_and_confused_tokens_are_refused(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    issued = await issue_access(stack, merchant)
    for name, (token, code) in _forgeries(stack, issued.link.token).items():
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stack.keys.VerifyAccessToken(keys_pb2.VerifyAccessTokenRequest(token=token), timeout=5)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, name
        assert error_code(caught.value) == code, name
        status, body = await stack.request("GET", "/access", params={"token": token}, allow_redirects=False)
        assert status == 401, name
        assert body["error"]["code"] == code, name
        status, page = await stack.request(
            "GET", "/access", params={"token": token}, headers={"Accept": "text/html"}, allow_redirects=False
        )
        assert status == 401 and "This link is not valid" in page, name


async def test_revoked_token_is_refused(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    bob = await stack.create_merchant("Bob", "bob")
    issued = await issue_access(stack, merchant)
    jti = issued.link.access_token.id
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.keys.RevokeAccessToken(
            keys_pb2.RevokeAccessTokenRequest(jti=jti, merchant_id=bob.id), timeout=5
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    first = await stack.keys.RevokeAccessToken(keys_pb2.RevokeAccessTokenRequest(jti=jti), timeout=5)
    second = await stack.keys.RevokeAccessToken(keys_pb2.RevokeAccessTokenRequest(jti=jti), timeout=5)
    assert first.HasField("revoked_at") and first.revoked_at == second.revoked_at
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.keys.VerifyAccessToken(
            keys_pb2.VerifyAccessTokenRequest(token=issued.link.token), timeout=5
        )
    assert error_code(caught.value) == "token_revoked"
    status, body = await stack.request(
        "GET", "/access", params={"token": issued.link.token}, allow_redirects=False
    )
    assert (status, body["error"]["code"]) == (401, "token_revoked")
    conn = await stack.db.admin()
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM keys.audit_events WHERE event_type = 'ACCESS_TOKEN_REVOKED' AND object_id = $1",
            jti,
        )
    finally:
        await conn.close()
    assert count == 1


async def test_rotation_keeps_old_links_and_signs_new_ones_with_new_kid(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    old = await issue_access(stack, merchant)
    old_kid, old_pem = signing_pem(stack)
    new_pem = (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    stack.env["PAYGATE_JWT_SIGNING_KEYS"] = json.dumps(
        [{"kid": old_kid, "pem": old_pem}, {"kid": "rotated-2", "pem": new_pem}]
    )
    await stack.stop_service("keys")
    await stack.start_service("keys")
    for channel in stack.channels.values():
        await channel.close()
    stack.channels.clear()

    again = await stack.keys.GetAccessLink(
        keys_pb2.GetAccessLinkRequest(session_id=old.session_id), timeout=5
    )
    assert again.token == old.link.token  # re-signed with its stored (old) kid
    await stack.keys.VerifyAccessToken(keys_pb2.VerifyAccessTokenRequest(token=old.link.token), timeout=5)
    new = await issue_access(stack, merchant)
    assert jwt.get_unverified_header(new.link.token)["kid"] == "rotated-2"
    status, document = await stack.request("GET", "/.well-known/jwks.json")
    assert status == 200 and [k["kid"] for k in document["keys"]] == ["rotated-2", old_kid]


async def test_concurrent_issues_give_one_token_and_one_audit_row(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    session_id = str(uuid.uuid4())
    request = keys_pb2.IssueAccessTokenRequest(merchant_id=merchant.id, session_id=session_id, mode=TEST)
    replies = await asyncio.gather(*(stack.keys.IssueAccessToken(request, timeout=5) for _ in range(6)))
    assert len({r.id for r in replies}) == 1
    conn = await stack.db.admin()
    try:
        tokens = await conn.fetchval(
            "SELECT count(*) FROM keys.access_tokens WHERE session_id = $1", uuid.UUID(session_id)
        )
        audits = await conn.fetchval(
            "SELECT count(*) FROM keys.audit_events WHERE event_type = 'ACCESS_TOKEN_ISSUED' AND object_id = $1",
            replies[0].id,
        )
    finally:
        await conn.close()
    assert (tokens, audits) == (1, 1)


async def test_issue_refuses_an_unknown_merchant_and_another_merchants_session(stack: ServiceStack) -> None:
    unknown = keys_pb2.IssueAccessTokenRequest(
        merchant_id=str(uuid.uuid4()), session_id=str(uuid.uuid4()), mode=TEST
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.keys.IssueAccessToken(unknown, timeout=5)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    first = await stack.create_merchant()
    issued = await issue_access(stack, first)
    other = await stack.create_merchant(name="Other", prefix="other")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.keys.IssueAccessToken(
            keys_pb2.IssueAccessTokenRequest(merchant_id=other.id, session_id=issued.session_id, mode=TEST),
            timeout=5,
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_code(caught.value) == "session_token_conflict"
