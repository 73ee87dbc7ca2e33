"""`paygate merchant create --name N`: create a merchant on the running stack and print its secret key once."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys

import grpc

from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2, keys_pb2_grpc
from paygate_runtime.grpc_errors import error_code
from paygate_runtime.stack import load_stack


def configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="merchant_command", required=True)
    create = sub.add_parser("create", help="create a merchant and print its secret key once")
    create.add_argument("--name", required=True)
    create.add_argument("--key-prefix", help="customer key prefix (default: derived from the name)")
    create.add_argument("--mode", choices=["test", "live"], default="test")


def default_prefix(name: str) -> str:
    cleaned = re.sub(r"[^a-z0-9]", "", name.lower())[:16]
    return cleaned if len(cleaned) >= 2 and cleaned not in {"sk", "rk", "pk"} else "cust"


async def _create(args: argparse.Namespace) -> int:
    stack = load_stack()
    async with grpc.aio.insecure_channel(stack["grpc"]["keys"]) as channel:
        try:
            reply = await keys_pb2_grpc.KeysServiceStub(channel).CreateMerchant(
                keys_pb2.CreateMerchantRequest(
                    name=args.name,
                    key_prefix=args.key_prefix or default_prefix(args.name),
                    mode=common_pb2.MODE_LIVE if args.mode == "live" else common_pb2.MODE_TEST,
                ),
                timeout=10,
            )
        except grpc.aio.AioRpcError as error:
            print(f"paygate: {error_code(error) or error.code().name}: {error.details()}", file=sys.stderr)
            return 1
    print(f"merchant id   {reply.merchant.id}")
    print(f"secret key    {reply.secret_key}")
    print("The secret key is shown only now; paygate keeps only its hash.")
    return 0


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_create(args))
