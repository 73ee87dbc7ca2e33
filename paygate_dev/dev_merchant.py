"""The test merchant that `paygate up` creates on first start and reuses afterwards.

The database keeps only the key's hash; the plaintext dev key lives in $PAYGATE_HOME/dev_merchant.json with
mode 0600 so that stack.json can show it again after a restart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2, keys_pb2_grpc
from paygate_runtime.stack import read_json, write_private_json

if TYPE_CHECKING:
    from paygate_dev.stack_plan import StackPlan

DEV_MERCHANT_IDEMPOTENCY_KEY = "paygate-up-dev-merchant"


async def ensure_dev_merchant(plan: StackPlan) -> dict[str, str]:
    path = plan.home / "dev_merchant.json"
    async with grpc.aio.insecure_channel(plan.grpc_addr("keys")) as channel:
        keys = keys_pb2_grpc.KeysServiceStub(channel)
        saved = read_json(path)
        if saved:
            try:
                reply = await keys.AuthenticateMerchant(
                    keys_pb2.AuthenticateMerchantRequest(secret_key=saved["api_key"]), timeout=5
                )
                if reply.merchant.id == saved["id"]:
                    return {"id": saved["id"], "api_key": saved["api_key"]}
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.UNAUTHENTICATED:
                    raise
        created = await keys.CreateMerchant(
            keys_pb2.CreateMerchantRequest(
                name="Test Merchant",
                key_prefix="dev",  # customer keys read dev_test_...; the mode is in the key already
                mode=common_pb2.MODE_TEST,
                idempotency_key=DEV_MERCHANT_IDEMPOTENCY_KEY,
                actor="operator:paygate-up",
            ),
            timeout=5,
        )
        secret = created.secret_key
        if not secret:
            # The merchant exists but its plaintext key was lost with the file: issue a fresh test key.
            extra = await keys.CreateMerchantSecretKey(
                keys_pb2.CreateMerchantSecretKeyRequest(
                    merchant_id=created.merchant.id, mode=common_pb2.MODE_TEST
                ),
                timeout=5,
            )
            secret = extra.secret_key
    merchant = {"id": created.merchant.id, "api_key": secret}
    write_private_json(path, merchant)
    return merchant
