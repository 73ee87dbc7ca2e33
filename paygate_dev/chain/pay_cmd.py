"""`paygate pay --session <id> [--amount X] [--token T]`: pay a web3 session from a local anvil dev account.

It finds the running stack through $PAYGATE_HOME/stack.json (started with `paygate up --chain`), reads the
session with the dev merchant's key, and sends the money on the chain. By default it pays exactly what the
session asks, in the session's own asset; `--amount` (major units, e.g. 0.01) pays less or more, `--token`
(an address, or a symbol such as TUSD, or ETH) pays in another asset to show that it does not count.
The chain watcher notices the payment by itself; `--notify` also sends the signed `transaction.detected`
webhook as a notifier would, and `--mine N` mines N more blocks so confirmations grow.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import aiohttp
from eth_typing import ChecksumAddress, HexStr
from web3 import AsyncWeb3
from web3.types import RPCEndpoint, TxReceipt, Wei

from paygate_dev.chain.test_token import transfer_token
from paygate_dev.devtools.signing import standard_delivery
from paygate_runtime.money.assets import NATIVE_COIN, NATIVE_DECIMALS
from paygate_runtime.stack import load_stack, paygate_home, stale_key_message
from webhook_gateway.chain.web3_service import connect_web3

NATIVE = NATIVE_COIN


class PayError(Exception):
    pass


class SessionNotPayable(PayError):
    """The session is closed (paid, refunded, failed, expired): a payment now would be money sent for
    nothing, or a second payment. Exit 1, as `paygate trigger onecom payment.succeeded` refuses it."""


# What the session API calls the states a payment may still be made in (trigger_cmd.PAYABLE_STATUSES).
PAYABLE_STATUSES = frozenset({"created", "pending"})


def refuse_unpayable(session: dict[str, Any]) -> None:
    status = session.get("status")
    if status in PAYABLE_STATUSES:
        return
    if status in ("paid", "refunded"):
        why = f"already paid (status {status}); paying would pay it a second time"
    else:
        why = f"not payable (status {status}); the money would not pay it"
    raise SessionNotPayable(
        f"session {session['id']} is {why}, so nothing was sent (create a new session to pay again)"
    )


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--session", required=True, help="the web3 session id to pay")
    parser.add_argument("--amount", help="amount in major units (default: the session's amount)")
    parser.add_argument(
        "--token", help="pay in this asset instead: ETH, a token symbol or a contract address"
    )
    parser.add_argument("--from-account", type=int, default=0, help="anvil dev account index (default 0)")
    parser.add_argument("--notify", action="store_true", help="also send the signed web3 webhook")
    parser.add_argument(
        "--mine",
        type=_block_count,
        help="mine this many more blocks afterwards (default: what the session's confirmations still need; "
        "0 leaves the payment unconfirmed)",
    )
    parser.add_argument("--home", help="state folder (default $PAYGATE_HOME or ./.paygate)")


def _block_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = -1
    if count < 0:
        raise argparse.ArgumentTypeError("must be a whole number of blocks, 0 or more")
    return count


def to_minor(amount: str, exponent: int) -> int:
    """Exact major -> minor units; refuses more digits than the asset has, and anything not positive."""
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise PayError(f"--amount {amount!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise PayError("--amount must be greater than zero")
    minor = value.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise PayError(f"--amount {amount} has more than {exponent} decimals")
    return int(minor)


def resolve_asset(
    wanted: str | None, session: dict[str, Any], chain: dict[str, Any]
) -> tuple[str | None, int, str]:
    """(token address or None for ETH, decimals, label) of what to pay with."""
    payment = session["payment"]
    if wanted is None:
        token = payment.get("token")
        return token, _decimals_of(token, session, chain), session["currency"]
    if wanted.upper() == NATIVE:
        return None, NATIVE_DECIMALS, NATIVE
    known = chain.get("token") or {}
    if wanted.upper() == str(known.get("symbol", "")).upper():
        return known["address"], int(known["decimals"]), known["symbol"]
    if AsyncWeb3.is_address(wanted):
        address = AsyncWeb3.to_checksum_address(wanted)
        if payment.get("token") and address.lower() == payment["token"].lower():
            return address, _decimals_of(address, session, chain), session["currency"]
        decimals = int(known["decimals"]) if known and address.lower() == known["address"].lower() else 18
        return address, decimals, address
    raise PayError(
        f"--token {wanted!r} is neither ETH, {known.get('symbol', 'a known symbol')} nor an address"
    )


def _decimals_of(token: str | None, session: dict[str, Any], chain: dict[str, Any]) -> int:
    if token is None:
        return 18
    known = chain.get("token") or {}
    if known and token.lower() == str(known.get("address", "")).lower():
        return int(known["decimals"])
    # The session's amount has exactly the token's decimals: amount_minor / amount.
    return len(session["amount"].partition(".")[2])


async def _get_json(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], unauthorized: str
) -> dict[str, Any]:
    async with http.get(url, headers=headers) as response:
        if response.status == 401:
            raise PayError(unauthorized)
        body = await response.json(content_type=None)
        if response.status != 200:
            raise PayError(f"GET {url} -> {response.status}: {body}")
        return body


async def pay(args: argparse.Namespace) -> dict[str, Any]:
    home = paygate_home(args.home)
    stack = load_stack(home)
    chain = stack.get("chain")
    if not chain:
        raise PayError("the running stack has no chain; start it with `paygate up --chain`")
    try:
        uuid.UUID(args.session)
    except ValueError:
        raise PayError(f"--session {args.session!r} is not a session id") from None
    headers = {"X-API-Key": stack["merchant"]["api_key"]}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        session = await _get_json(
            http,
            f"{stack['gateway_url']}/v1/sessions/{args.session}",
            headers,
            stale_key_message(stack, home),
        )
        if session.get("provider") != "web3" or not session.get("payment"):
            raise PayError(f"session {args.session} is not a web3 session")
        refuse_unpayable(session)
        token, decimals, label = resolve_asset(args.token, session, chain)
        amount_minor = (
            to_minor(args.amount, decimals)
            if args.amount
            else (
                int(session["amount_minor"]) if args.token is None else to_minor(session["amount"], decimals)
            )
        )
        w3 = connect_web3(chain["rpc_url"], 30.0)
        try:
            sent = await _send(w3, args, session, token, amount_minor)
        finally:
            await w3.provider.disconnect()
        notified = None
        if args.notify:
            body = {
                "type": "transaction.detected",
                "data": {"chain_id": chain["chain_id"], "tx_hash": sent.tx_hash, "session_id": args.session},
            }
            raw, hook_headers = standard_delivery(body, stack["webhook_secrets"]["web3"], int(time.time()))
            async with http.post(
                f"{stack['gateway_url']}/webhooks/web3", data=raw, headers=hook_headers
            ) as r:
                notified = {"status": r.status, "body": await r.json(content_type=None)}
    return {
        "session_id": args.session,
        "tx_hash": sent.tx_hash,
        "block_number": int(sent.receipt["blockNumber"]),
        "status": int(sent.receipt["status"]),
        "from": sent.sender,
        "to": sent.to,
        "asset": label,
        "amount_minor": amount_minor,
        "mined": sent.mined,
        "notified": notified,
    }


@dataclass(frozen=True)
class SentPayment:
    sender: ChecksumAddress
    to: ChecksumAddress  # the session's deposit address
    tx_hash: HexStr
    receipt: TxReceipt
    mined: int  # blocks mined after it


async def _send(
    w3: AsyncWeb3, args: argparse.Namespace, session: dict[str, Any], token: str | None, amount_minor: int
) -> SentPayment:
    """Send the payment from the chosen dev account and wait for its receipt."""
    accounts = await w3.eth.accounts
    if not 0 <= args.from_account < len(accounts):
        raise PayError(f"--from-account must be 0..{len(accounts) - 1}")
    sender = AsyncWeb3.to_checksum_address(accounts[args.from_account])
    to = AsyncWeb3.to_checksum_address(str(session["payment"]["deposit_address"]))
    if token is None:
        sent = await w3.eth.send_transaction({"from": sender, "to": to, "value": Wei(amount_minor)})
        receipt = await w3.eth.wait_for_transaction_receipt(sent)
        tx_hash = HexStr(sent.to_0x_hex())
    else:
        tx_hash = HexStr(await transfer_token(w3, token, sender, to, amount_minor))
        receipt = await w3.eth.get_transaction_receipt(tx_hash)
    mined = blocks_to_mine(args.mine, session)
    if mined > 0:
        # anvil's own RPC: not one of web3's RPCEndpoint literals.
        await w3.provider.make_request(RPCEndpoint("anvil_mine"), [hex(mined)])
    return SentPayment(sender=sender, to=to, tx_hash=tx_hash, receipt=receipt, mined=mined)


def blocks_to_mine(requested: int | None, session: dict[str, Any]) -> int:
    """The blocks to mine after the payment. A local node makes a block only for a transaction, so a payment
    would wait forever for its confirmations: by default, mine the ones the session still needs (its block is
    the first). An explicit count wins, 0 included."""
    if requested is not None:
        return max(0, requested)
    return max(0, int(session["payment"].get("min_confirmations") or 1) - 1)


def run(args: argparse.Namespace) -> int:
    try:
        result = asyncio.run(pay(args))
    except SessionNotPayable as error:
        print(f"paygate pay: {error}", file=sys.stderr)
        return 1
    except PayError as error:
        print(f"paygate pay: {error}", file=sys.stderr)
        return 2
    except (aiohttp.ClientError, OSError) as error:
        print(f"paygate pay: the stack or the chain node is not reachable: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    print(
        f"paid {result['amount_minor']} minor units of {result['asset']} in block {result['block_number']}, "
        f"then mined {result['mined']} more; watch it with: curl -H 'X-API-Key: ...' <gateway>/v1/sessions/{result['session_id']}",
        file=sys.stderr,
    )
    return 0
