"""`paygate merchant ...`: operator commands for merchants and their secret keys on a running stack.

- `paygate merchant create --name N [--mode test|live] [--key-prefix P]`: a new merchant; prints its id and
  its first secret key (of that mode) once.
- `paygate merchant keys list --merchant ID [--mode test|live]`: the merchant's secret keys (never a secret).
- `paygate merchant keys create --merchant ID --mode test|live`: another key, printed once (a merchant's
  first live key comes this way: a test key cannot make one over the API).
- `paygate merchant keys roll --merchant ID --key KEY [--grace-period S]`: a new key, printed once; the old
  one works for S seconds more (0..604800, default 0).
- `paygate merchant keys revoke --merchant ID --key KEY`: revoke at once (not the mode's last active key).

These are product commands, not dev tools: they find the keys service through PAYGATE_KEYS_ADDR (with the
PAYGATE_TLS_* files for mutual TLS, as in a cluster: run them in a keys pod or as a Job), else through the
running `paygate up` stack's stack.json. Every change is audited by the keys service with the actor
"operator:cli". `--json` prints one JSON object instead of the lines meant for a person.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
from datetime import datetime
from typing import Any

import grpc

from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2, keys_pb2_grpc
from paygate_runtime.config import ConfigError, Env
from paygate_runtime.grpc_client import DeadlineChannel, open_channel
from paygate_runtime.grpc_errors import error_code, unreachable_text
from paygate_runtime.proto_convert import mode_label, to_datetime
from paygate_runtime.stack import load_stack, paygate_home, replace_stack_key
from paygate_runtime.tls import tls_from_env

MAX_GRACE_PERIOD_SECONDS = 7 * 24 * 3600
ACTOR = "operator:cli"
_MODES = {"test": common_pb2.MODE_TEST, "live": common_pb2.MODE_LIVE}
_STATUS_NAMES = {
    keys_pb2.MERCHANT_KEY_STATUS_ACTIVE: "active",
    keys_pb2.MERCHANT_KEY_STATUS_EXPIRING: "expiring",
    keys_pb2.MERCHANT_KEY_STATUS_REVOKED: "revoked",
    keys_pb2.MERCHANT_KEY_STATUS_EXPIRED: "expired",
}


def _grace_period(text: str) -> int:
    if not (text.isascii() and text.isdecimal()) or int(text) > MAX_GRACE_PERIOD_SECONDS:
        raise argparse.ArgumentTypeError(f"must be whole seconds from 0 to {MAX_GRACE_PERIOD_SECONDS}")
    return int(text)


def configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="merchant_command", required=True)
    create = sub.add_parser("create", help="create a merchant and print its secret key once")
    create.add_argument("--name", required=True)
    create.add_argument("--key-prefix", help="customer key prefix (default: derived from the name)")
    create.add_argument("--mode", choices=["test", "live"], default="test")
    create.add_argument("--json", action="store_true", help="print JSON")

    keys = sub.add_parser("keys", help="list, create, roll and revoke a merchant's secret keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    listing = keys_sub.add_parser("list", help="list the merchant's secret keys (never a secret)")
    listing.add_argument("--merchant", required=True, help="merchant id")
    listing.add_argument("--mode", choices=["test", "live"], help="only this mode's keys (default: both)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    made = keys_sub.add_parser("create", help="create another secret key and print it once")
    made.add_argument("--merchant", required=True, help="merchant id")
    made.add_argument("--mode", choices=["test", "live"], required=True)
    made.add_argument("--json", action="store_true", help="print JSON")
    roll = keys_sub.add_parser("roll", help="replace a secret key; print the new one once")
    roll.add_argument("--merchant", required=True, help="merchant id")
    roll.add_argument("--key", required=True, help="id of the key to roll")
    roll.add_argument(
        "--grace-period",
        type=_grace_period,
        default=0,
        metavar="SECONDS",
        help="how long the old key keeps working (0..604800, default 0: it stops at once)",
    )
    roll.add_argument("--json", action="store_true", help="print JSON")
    revoke = keys_sub.add_parser("revoke", help="revoke a secret key at once")
    revoke.add_argument("--merchant", required=True, help="merchant id")
    revoke.add_argument("--key", required=True, help="id of the key to revoke")
    revoke.add_argument("--json", action="store_true", help="print JSON")


def default_prefix(name: str) -> str:
    cleaned = re.sub(r"[^a-z0-9]", "", name.lower())[:16]
    return cleaned if len(cleaned) >= 2 and cleaned not in {"sk", "rk", "pk"} else "cust"


def keys_address() -> str:
    """PAYGATE_KEYS_ADDR when set, as in a cluster; else the local stack's stack.json."""
    address = Env(os.environ).optional("PAYGATE_KEYS_ADDR")
    return address if address is not None else str(load_stack()["grpc"]["keys"])


def keys_channel(address: str) -> DeadlineChannel:
    """A channel to the keys service at `address`, with mutual TLS when PAYGATE_TLS_* are set."""
    return open_channel(address, tls=tls_from_env(Env(os.environ)), default_deadline=10.0)


def _refusal(error: grpc.aio.AioRpcError, address: str) -> str:
    """The one line a failed call prints: where it could not connect, as `trigger` and `listen` say it,
    else the service's own code and message."""
    return (
        unreachable_text(error, "keys", address)
        or f"{error_code(error) or error.code().name}: {error.details()}"
    )


def _time(message: Any, field: str) -> str | None:
    if not message.HasField(field):
        return None
    stamp: datetime = to_datetime(getattr(message, field))
    return stamp.isoformat().replace("+00:00", "Z")


def key_json(key: keys_pb2.MerchantKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "prefix": key.prefix,
        "last4": key.last4,
        "mode": mode_label(key.mode),
        "status": _STATUS_NAMES.get(key.status, "revoked"),
        "created_at": _time(key, "created_at"),
        "last_used_at": _time(key, "last_used_at"),
        "expires_at": _time(key, "expires_at"),
        "revoked_at": _time(key, "revoked_at"),
    }


def _key_line(key: dict[str, Any]) -> str:
    shown = f"{key['prefix']}…{key['last4']}"
    until = f" until {key['expires_at']}" if key["status"] == "expiring" else ""
    used = key["last_used_at"] or "never"
    return f"{key['id']}  {shown:<16} {key['mode']:<4}  {key['status']}{until}  created {key['created_at']}  last used {used}"


def _emit(args: argparse.Namespace, payload: dict[str, Any], lines: list[str]) -> None:
    if args.json:
        print(json.dumps(payload, indent=2))
    else:
        for line in lines:
            print(line)


async def _create(args: argparse.Namespace, stub: keys_pb2_grpc.KeysServiceStub) -> None:
    reply = await stub.CreateMerchant(
        keys_pb2.CreateMerchantRequest(
            name=args.name,
            key_prefix=args.key_prefix or default_prefix(args.name),
            mode=_MODES[args.mode],
            actor=ACTOR,
        )
    )
    _emit(
        args,
        {"merchant_id": reply.merchant.id, "secret_key_id": reply.secret_key_id, "secret": reply.secret_key},
        [
            f"merchant id   {reply.merchant.id}",
            f"secret key    {reply.secret_key}",
            "The secret key is shown only now; paygate keeps only its hash.",
        ],
    )


async def _keys_list(args: argparse.Namespace, stub: keys_pb2_grpc.KeysServiceStub) -> None:
    keys: list[dict[str, Any]] = []
    cursor = ""
    while True:
        reply = await stub.ListMerchantKeys(
            keys_pb2.ListMerchantKeysRequest(
                merchant_id=args.merchant,
                mode=_MODES[args.mode] if args.mode else common_pb2.MODE_UNSPECIFIED,
                limit=100,
                starting_after=cursor,
            )
        )
        keys.extend(key_json(k) for k in reply.keys)
        if not reply.has_more or not reply.keys:
            break
        cursor = reply.keys[-1].id
    if not keys:
        # The list RPC answers an unknown merchant with no keys; a mistyped id must say not_found, as
        # `keys create` of it does (the RpcError is printed as one line by run()).
        await stub.GetMerchant(keys_pb2.GetMerchantRequest(merchant_id=args.merchant))
    _emit(args, {"merchant_id": args.merchant, "keys": keys}, [_key_line(k) for k in keys] or ["no keys"])


async def _keys_create(args: argparse.Namespace, stub: keys_pb2_grpc.KeysServiceStub) -> None:
    reply = await stub.CreateMerchantSecretKey(
        keys_pb2.CreateMerchantSecretKeyRequest(
            merchant_id=args.merchant, mode=_MODES[args.mode], actor=ACTOR
        )
    )
    key = key_json(reply.key)
    _emit(
        args,
        {**key, "secret": reply.secret_key},
        [
            f"key id        {key['id']}",
            f"secret key    {reply.secret_key}",
            "The secret key is shown only now; paygate keeps only its hash.",
        ],
    )


async def _stack_key_id(stub: keys_pb2_grpc.KeysServiceStub) -> tuple[str, str] | None:
    """(key id, secret) of the running stack's own merchant key, when this command talks to that stack."""
    if Env(os.environ).optional("PAYGATE_KEYS_ADDR") is not None:
        return None
    secret = str((load_stack().get("merchant") or {}).get("api_key") or "")
    if not secret:
        return None
    try:
        reply = await stub.AuthenticateMerchant(keys_pb2.AuthenticateMerchantRequest(secret_key=secret))
    except grpc.aio.AioRpcError:
        return None  # already refused: nothing in stack.json to keep in step
    return reply.secret_key_id, secret


async def _keys_roll(args: argparse.Namespace, stub: keys_pb2_grpc.KeysServiceStub) -> None:
    stack_key = await _stack_key_id(stub)
    reply = await stub.RollMerchantKey(
        keys_pb2.RollMerchantKeyRequest(
            merchant_id=args.merchant, key_id=args.key, grace_period_seconds=args.grace_period, actor=ACTOR
        )
    )
    key, previous = key_json(reply.key), key_json(reply.previous)
    ends = (
        f"works until {previous['expires_at']}" if previous["status"] == "expiring" else "stopped working now"
    )
    _emit(
        args,
        {**key, "secret": reply.secret, "previous": previous},
        [
            f"key id        {key['id']}",
            f"secret key    {reply.secret}",
            f"old key       {previous['id']} {ends}",
            "The secret key is shown only now; paygate keeps only its hash.",
        ],
    )
    if stack_key is not None and stack_key[0] == args.key:
        for path in replace_stack_key(paygate_home(), stack_key[1], reply.secret):
            print(f"updated {path} with the new key", file=sys.stderr)


async def _keys_revoke(args: argparse.Namespace, stub: keys_pb2_grpc.KeysServiceStub) -> None:
    reply = await stub.RevokeMerchantKey(
        keys_pb2.RevokeMerchantKeyRequest(merchant_id=args.merchant, key_id=args.key, actor=ACTOR)
    )
    key = key_json(reply)
    _emit(args, key, [f"revoked       {key['id']} ({key['prefix']}…{key['last4']})"])


_KEYS_COMMANDS = {"list": _keys_list, "create": _keys_create, "roll": _keys_roll, "revoke": _keys_revoke}


async def _run(args: argparse.Namespace) -> int:
    action = _create if args.merchant_command == "create" else _KEYS_COMMANDS[args.keys_command]
    try:
        address = keys_address()
        channel = keys_channel(address)
    except ConfigError as error:
        print(f"paygate: {error}", file=sys.stderr)
        return 2
    async with channel:
        try:
            await action(args, keys_pb2_grpc.KeysServiceStub(channel))
        except grpc.aio.AioRpcError as error:
            print(f"paygate: {_refusal(error, address)}", file=sys.stderr)
            return 1
    return 0


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))
