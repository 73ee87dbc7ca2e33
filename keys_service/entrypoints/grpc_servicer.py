"""gRPC adapter of the keys service: translate messages, call the service layer, translate back."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from typing import TYPE_CHECKING

import asyncpg
import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2, keys_pb2_grpc
from paygate_runtime.errors import InvalidArgument, NotFound, Unauthenticated, require

if TYPE_CHECKING:
    from keys_service.entrypoints.main import KeysConfig

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_MODES = {common_pb2.MODE_TEST: "test", common_pb2.MODE_LIVE: "live"}
_MODE_ENUM = {v: k for k, v in _MODES.items()}


def _b58(n_bytes: int) -> str:
    number = int.from_bytes(secrets.token_bytes(n_bytes), "big")
    out = ""
    while number:
        number, rem = divmod(number, 58)
        out = _B58[rem] + out
    return out.rjust(n_bytes * 138 // 100 + 1, "1")


def _ts(value) -> Timestamp:  # type: ignore[no-untyped-def]
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


class KeysServicer(keys_pb2_grpc.KeysServiceServicer):
    def __init__(self, pool: asyncpg.Pool, config: KeysConfig) -> None:
        self.pool = pool
        self.config = config

    def _merchant(self, row: asyncpg.Record) -> keys_pb2.Merchant:
        return keys_pb2.Merchant(
            id=str(row["id"]),
            name=row["name"],
            key_prefix=row["key_prefix"],
            created_at=_ts(row["created_at"]),
        )

    async def CreateMerchant(
        self, request: keys_pb2.CreateMerchantRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.CreateMerchantResponse:
        require(request.name.strip(), "name")
        require(request.key_prefix, "key_prefix")
        mode = _MODES.get(request.mode, "test")
        secret = f"sk_{mode}_{_b58(24)}"
        async with self.pool.acquire() as conn, conn.transaction():
            if request.idempotency_key:
                row = await conn.fetchrow(
                    "SELECT * FROM merchants WHERE idempotency_key = $1", request.idempotency_key
                )
                if row is not None:
                    return keys_pb2.CreateMerchantResponse(merchant=self._merchant(row))
            try:
                row = await conn.fetchrow(
                    "INSERT INTO merchants (id, name, key_prefix, idempotency_key) VALUES ($1, $2, $3, $4) RETURNING *",
                    uuid.uuid4(),
                    request.name.strip(),
                    request.key_prefix,
                    request.idempotency_key or None,
                )
            except asyncpg.CheckViolationError:
                raise InvalidArgument(
                    "invalid_key_prefix",
                    "key_prefix must be 2-16 lower-case letters or digits",
                    field="key_prefix",
                ) from None
            key_id = uuid.uuid4()
            await conn.execute(
                "INSERT INTO merchant_secret_keys (id, merchant_id, mode, key_hash, hint) VALUES ($1, $2, $3, $4, $5)",
                key_id,
                row["id"],
                mode,
                hashlib.sha256(secret.encode()).digest(),
                secret[:12] + "…" + secret[-4:],
            )
        return keys_pb2.CreateMerchantResponse(
            merchant=self._merchant(row), secret_key=secret, secret_key_id=str(key_id)
        )

    async def GetMerchant(
        self, request: keys_pb2.GetMerchantRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.Merchant:
        require(request.merchant_id, "merchant_id")
        try:
            merchant_id = uuid.UUID(request.merchant_id)
        except ValueError:
            raise NotFound("not_found", "merchant not found") from None
        row = await self.pool.fetchrow("SELECT * FROM merchants WHERE id = $1", merchant_id)
        if row is None:
            raise NotFound("not_found", "merchant not found")
        return self._merchant(row)

    async def AuthenticateMerchant(
        self, request: keys_pb2.AuthenticateMerchantRequest, context: grpc.aio.ServicerContext
    ) -> keys_pb2.AuthenticateMerchantResponse:
        presented = request.secret_key
        if not presented.startswith(("sk_test_", "sk_live_")) or len(presented) > 128:
            raise Unauthenticated("unauthenticated", "invalid API key")
        digest = hashlib.sha256(presented.encode()).digest()
        row = await self.pool.fetchrow(
            """SELECT k.id AS key_id, k.mode, k.key_hash, k.revoked_at, m.*
                 FROM merchant_secret_keys k JOIN merchants m ON m.id = k.merchant_id
                WHERE k.key_hash = $1""",
            digest,
        )
        if row is None or row["revoked_at"] is not None or not hmac.compare_digest(row["key_hash"], digest):
            raise Unauthenticated("unauthenticated", "invalid API key")
        return keys_pb2.AuthenticateMerchantResponse(
            merchant=self._merchant(row), mode=_MODE_ENUM[row["mode"]], secret_key_id=str(row["key_id"])
        )
