"""`paygate trigger`: send a correctly signed provider event to the running gateway, as `stripe trigger` does.

    paygate trigger stripe payment_intent.succeeded --session <id> [--amount 9.99] [--currency EUR] [--livemode]
    paygate trigger stripe refund.created --session <id> [--amount 5.00] [--refund-id re_...] [--status failed]
    paygate trigger stripe charge.dispute.closed --session <id> [--dispute-id dp_...] [--status won|lost]
    paygate trigger onecom payment.succeeded --session <id> [--amount 9.99] [--currency EUR] [--livemode]

The gateway address and the webhook secrets come from $PAYGATE_HOME/stack.json. Without --amount and
--currency the session's own price is used (read from the session service), so the event pays it exactly.

Refund and dispute events (`refund.created`, `refund.updated`, `charge.refunded`, `charge.refund.updated`,
`charge.dispute.*`) are built from Stripe's refund, charge and dispute shapes and name the PaymentIntent that
paid the session (the session's `paid_reference`, unless --payment-intent), as Stripe's would, so the gateway
finds the session by its payment. The charge and the dispute ids derive from that PaymentIntent, so a
`charge.dispute.closed` closes the dispute an earlier `charge.dispute.created` opened. Amounts are in the
session's currency: by default a refund is what is left to refund (`refund.updated` and
`charge.refund.updated`: the session's latest Stripe refund, with its amount), a dispute the session's price.
`--livemode` sends a live-mode event: Stripe's carries `livemode: true`, One.com's is signed with the stack's
live One.com secret (`webhook_secrets.onecom_live`), since the secret that verifies it decides its mode.

When the stack runs the One.com test double (stack.json `onecom.api_base`), a One.com event's transaction is
first recorded there as the double's payment page records it (`POST /_double/payments`: the session's open
payment at the double, else a new one), so the `transaction_id` is a payment the double knows and a later
refund of the session goes through it. `payment.succeeded` of a session that is no longer payable (paid,
refunded, failed, expired) is refused with exit code 1 before anything is recorded or sent: it would be a
second payment of the session.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import aiohttp
import grpc

from paygate.session.v1 import session_pb2, session_pb2_grpc
from paygate_dev.devtools.signing import standard_delivery, stripe_delivery
from paygate_dev.devtools.stripe_fixtures import (
    ONECOM_EVENT_TYPES,
    STRIPE_DISPUTE_EVENT_TYPES,
    STRIPE_DISPUTE_STATUSES,
    STRIPE_PAYMENT_EVENT_TYPES,
    STRIPE_REFUND_EVENT_TYPES,
    STRIPE_REFUND_STATUSES,
    StripeRefund,
    build_onecom_event,
    build_stripe_event,
    build_stripe_money_back_event,
    charge_id_for,
    stripe_id,
)
from paygate_runtime.grpc_errors import error_code, unreachable_text
from paygate_runtime.money.currencies import reported_exponent as iso_exponent
from paygate_runtime.money.stripe_minor_units import iso_minor_to_stripe
from paygate_runtime.stack import load_stack
from webhook_gateway.providers.stripe_webhooks import CHARGE_REFUND_UPDATED, REFUND_UPDATED

REPLY_TIMEOUT_S = 10.0


STRIPE_TRIGGER_TYPES: tuple[str, ...] = (
    STRIPE_PAYMENT_EVENT_TYPES + STRIPE_REFUND_EVENT_TYPES + STRIPE_DISPUTE_EVENT_TYPES
)
USAGE_EXIT = 2


class TriggerError(Exception):
    """A problem to report in one line (exit code 1)."""


class TriggerUsageError(TriggerError):
    """An option that does not fit the event type (exit code 2, as argparse's usage errors)."""


@dataclass(frozen=True)
class Price:
    amount_minor: int
    currency: str


class _EventType(argparse.Action):
    """The event type positional: an unknown one is refused in one line (exit 2), not with argparse's usage
    and its list of every choice."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        known: tuple[str, ...] = self.const
        if values not in known:
            print(
                f"{parser.prog}: unknown event type {values!r}; see `{parser.prog} --help` for the ones it sends",
                file=sys.stderr,
            )
            raise SystemExit(USAGE_EXIT)
        setattr(namespace, self.dest, values)


def _listing(groups: Sequence[tuple[str, tuple[str, ...]]]) -> str:
    return "\n".join(
        textwrap.fill(", ".join(types), 100, initial_indent=f"  {title}: ", subsequent_indent="    ")
        for title, types in groups
    )


def configure(p: argparse.ArgumentParser) -> None:
    providers = p.add_subparsers(dest="provider", required=True)
    stripe = providers.add_parser(
        "stripe",
        help="a Stripe event (Stripe-Signature)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="event types:\n"
        + _listing(
            [
                ("payments", STRIPE_PAYMENT_EVENT_TYPES),
                ("refunds", STRIPE_REFUND_EVENT_TYPES),
                ("disputes", STRIPE_DISPUTE_EVENT_TYPES),
            ]
        ),
    )
    stripe.add_argument(
        "event_type", metavar="EVENT_TYPE", action=_EventType, const=STRIPE_TRIGGER_TYPES, help="see below"
    )
    stripe.add_argument("--livemode", action="store_true", help="send a live-mode event (default: test mode)")
    stripe.add_argument(
        "--payment-intent",
        help="PaymentIntent id, to send several events of one payment (refunds and disputes: default the one "
        "that paid the session)",
    )
    stripe.add_argument(
        "--payment-status", choices=["paid", "unpaid"], help="Checkout Session payment_status override"
    )
    stripe.add_argument(
        "--refund-id",
        help="refunds: the Stripe refund id (default: a fresh re_...; refund.updated and charge.refund.updated: "
        "the session's latest Stripe refund)",
    )
    stripe.add_argument(
        "--dispute-id", help="disputes: the Stripe dispute id (default: one derived from the PaymentIntent)"
    )
    stripe.add_argument(
        "--status",
        metavar="STATUS",
        help=f"refunds: the refund's status ({', '.join(STRIPE_REFUND_STATUSES)}; default succeeded); disputes: "
        f"the dispute's ({', '.join(STRIPE_DISPUTE_STATUSES)}; default needs_response, won when closed)",
    )
    onecom = providers.add_parser(
        "onecom",
        help="a One.com event (Standard Webhooks)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="event types:\n" + _listing([("payments", ONECOM_EVENT_TYPES)]),
    )
    onecom.add_argument(
        "event_type", metavar="EVENT_TYPE", action=_EventType, const=ONECOM_EVENT_TYPES, help="see below"
    )
    onecom.add_argument(
        "--transaction-id",
        help="One.com transaction id (default: the session's payment at the stack's One.com test double, "
        "else a fresh one)",
    )
    onecom.add_argument(
        "--livemode",
        action="store_true",
        help="send a live-mode event, signed with the live One.com secret (default: test mode)",
    )
    for child in (stripe, onecom):
        child.add_argument("--session", required=True, help="paygate session id")
        child.add_argument(
            "--amount",
            help="amount in major units, e.g. 9.99 (default: the session's price; a refund: what is left to "
            "refund, or the refund's own amount when it updates one)"
            if child is stripe
            else "amount in major units, e.g. 9.99 (default: the session's price)",
        )
        child.add_argument("--currency", help="currency code (default: the session's currency)")
        child.add_argument("--event-id", help="event id (default: a fresh one); reuse it to test redelivery")
        child.add_argument("--gateway-url", help="gateway base URL (default: from stack.json)")


def minor_units(amount: str, currency: str) -> int:
    """ "9.99" EUR -> 999; refuses amounts finer than the currency's minor unit."""
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise TriggerError(f"--amount {amount!r} is not a number") from None
    minor = value.scaleb(iso_exponent(currency))
    if not value.is_finite() or value < 0 or minor != minor.to_integral_value():
        raise TriggerError(f"--amount {amount} is not a valid {currency.upper()} amount")
    return int(minor)


def _unreadable(
    error: grpc.aio.AioRpcError, session_addr: str, session_id: str, advice: str = ""
) -> TriggerError:
    unreachable = unreachable_text(error, "session", session_addr)
    if unreachable is not None:
        return TriggerError(unreachable)
    reason = error_code(error) or error.code().name.lower()
    return TriggerError(f"cannot read session {session_id} ({reason}){advice}")


async def read_session(session_addr: str, session_id: str, fallback: str) -> session_pb2.Session:
    async with grpc.aio.insecure_channel(session_addr) as channel:
        try:
            return await session_pb2_grpc.SessionServiceStub(channel).GetSession(
                session_pb2.GetSessionRequest(session_id=session_id), timeout=5
            )
        except grpc.aio.AioRpcError as error:
            raise _unreadable(error, session_addr, session_id, f"; {fallback}") from None


async def session_price(session_addr: str, session_id: str) -> Price:
    session = await read_session(session_addr, session_id, "pass --amount and --currency")
    return Price(int(session.amount.amount_minor), session.amount.currency)


async def resolve_price(args: argparse.Namespace, stack: dict[str, Any]) -> Price:
    if args.amount is not None and args.currency:
        return Price(minor_units(args.amount, args.currency), args.currency.upper())
    price = await session_price(stack["grpc"]["session"], args.session)
    currency = (args.currency or price.currency).upper()
    amount = minor_units(args.amount, currency) if args.amount is not None else price.amount_minor
    return Price(amount, currency)


# The session states a payment may still be made in; any other (paid, refunded, failed, expired) is closed.
PAYABLE_STATUSES = frozenset({session_pb2.SESSION_STATUS_CREATED, session_pb2.SESSION_STATUS_PENDING})
ONECOM_PAYMENT_SUCCEEDED = "payment.succeeded"


async def refuse_unpayable(session_addr: str, session_id: str) -> None:
    """Refuse a One.com payment of a session that is no longer payable: it would be a second payment (with
    the test double running, a new payment recorded there, that a refund could then take money back from).
    A session the session service does not know is let through: its event is quarantined as unknown_session,
    which is what such a trigger is for."""
    async with grpc.aio.insecure_channel(session_addr) as channel:
        try:
            session = await session_pb2_grpc.SessionServiceStub(channel).GetSession(
                session_pb2.GetSessionRequest(session_id=session_id), timeout=5
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return
            raise _unreadable(error, session_addr, session_id) from None
    if session.status in PAYABLE_STATUSES:
        return
    status = session_pb2.SessionStatus.Name(session.status).removeprefix("SESSION_STATUS_").lower()
    state = "already paid" if status in ("paid", "refunded") else "not payable"
    raise TriggerError(
        f"session {session_id} is {state} (status {status}); a {ONECOM_PAYMENT_SUCCEEDED} would be a second "
        "payment of it, so nothing was sent (create a new session to pay again)"
    )


def _double_status(event_type: str) -> str:
    """What the double's payment looks like once this event's outcome happened."""
    return {"payment.succeeded": "succeeded", "payment.failed": "failed"}.get(event_type, "requires_action")


async def record_at_double(
    args: argparse.Namespace, stack: dict[str, Any], price: Price, gateway_url: str
) -> str | None:
    """The One.com transaction id, recorded at the stack's One.com test double as its payment page records a
    payment; None when the stack runs no double (an invented id is sent then) or the double holds no API key
    of the event's mode."""
    double_url = (stack.get("onecom") or {}).get("api_base")
    if not double_url:
        return None
    mode = "live" if args.livemode else "test"
    body: dict[str, Any] = {
        "reference": args.session,
        "amount_minor": price.amount_minor,
        "currency": price.currency,
        "mode": mode,
        "status": _double_status(args.event_type),
        "webhook_url": f"{gateway_url}/webhooks/onecom",
        "return_url": f"{gateway_url}/checkout?session={quote(args.session, safe='')}&result=success",
    }
    if args.transaction_id:
        body["id"] = args.transaction_id
    url = f"{double_url.rstrip('/')}/_double/payments"
    timeout = aiohttp.ClientTimeout(total=REPLY_TIMEOUT_S)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http, http.post(url, json=body) as reply:
            status = reply.status
            answer = await reply.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise TriggerError(
            f"the One.com test double at {double_url} did not answer: {exc or type(exc).__name__}"
        ) from None
    error = answer.get("error") if isinstance(answer, dict) else None
    if status == 409 and isinstance(error, dict) and error.get("code") == "no_api_key_for_mode":
        print(
            f"note: the One.com test double has no {mode}-mode API key; the transaction id is not known to it",
            file=sys.stderr,
        )
        return None
    if status not in (200, 201) or not isinstance(answer, dict) or not isinstance(answer.get("id"), str):
        raise TriggerError(f"the One.com test double refused the payment: HTTP {status} {answer}")
    print(f"One.com test double payment {answer['id']} ({answer['status']})")
    return str(answer["id"])


def onecom_secret(args: argparse.Namespace, stack: dict[str, Any]) -> str:
    """The Standard Webhooks secret of the event's mode: the one that verifies it decides its mode."""
    name = "onecom_live" if args.livemode else "onecom"
    secret = (stack.get("webhook_secrets") or {}).get(name)
    if not secret:
        raise TriggerError(f"stack.json has no webhook_secrets.{name}; restart the stack with `paygate up`")
    return str(secret)


def stripe_units(amount_minor: int, currency: str) -> int:
    """paygate's ISO minor units as Stripe's (ISK 100 -> 10000); refuses an amount Stripe could not move."""
    try:
        return iso_minor_to_stripe(amount_minor, currency, iso_exponent(currency))
    except ValueError as exc:
        raise TriggerError(str(exc)) from None


def _check_money_back_options(args: argparse.Namespace) -> None:
    refund = args.event_type in STRIPE_REFUND_EVENT_TYPES
    if args.refund_id is not None and not refund:
        raise TriggerUsageError(f"--refund-id is for refund events, not {args.event_type}")
    if args.dispute_id is not None and refund:
        raise TriggerUsageError(f"--dispute-id is for dispute events, not {args.event_type}")
    statuses = STRIPE_REFUND_STATUSES if refund else STRIPE_DISPUTE_STATUSES
    if args.status is not None and args.status not in statuses:
        raise TriggerUsageError(f"--status of {args.event_type} is one of {', '.join(statuses)}")


def _stripe_refunds(session: session_pb2.Session | None) -> list[tuple[str, int, str]]:
    """(Stripe refund id, ISO minor amount, status) of the session's refunds that Stripe made, oldest first."""
    if session is None:
        return []
    return [
        (r.provider_refund_id, int(r.amount.amount_minor), r.status)
        for r in session.refunds
        if r.provider_refund_id.startswith("re_") and r.amount.currency == session.amount.currency
    ]


async def money_back_event(args: argparse.Namespace, stack: dict[str, Any]) -> dict[str, Any]:
    """A refund or dispute event of the session's Stripe payment, with amounts in the session's currency."""
    _check_money_back_options(args)
    session: session_pb2.Session | None = None
    if not (args.amount is not None and args.currency and args.payment_intent):
        session = await read_session(
            stack["grpc"]["session"], args.session, "pass --amount, --currency and --payment-intent"
        )
    currency = (args.currency or (session.amount.currency if session else "")).upper()
    payment_intent = args.payment_intent
    if payment_intent is None and session is not None and session.paid_reference.startswith("pi_"):
        payment_intent = session.paid_reference
    if payment_intent is None:
        payment_intent = stripe_id("pi", args.livemode)
        print(
            f"note: session {args.session} was not paid through Stripe; the event names a PaymentIntent "
            f"unknown to it ({payment_intent}) and the gateway will not find the session",
            file=sys.stderr,
        )
    price = int(session.amount.amount_minor) if session is not None else None
    amount = minor_units(args.amount, currency) if args.amount is not None else None
    refunds = _stripe_refunds(session)
    description: str
    if args.event_type in STRIPE_REFUND_EVENT_TYPES:
        refund_id = args.refund_id
        if refund_id is None and args.event_type in (REFUND_UPDATED, CHARGE_REFUND_UPDATED) and refunds:
            refund_id = refunds[-1][0]
        refund_id = refund_id or stripe_id("re")
        if amount is None:
            known = [minor for rid, minor, _ in refunds if rid == refund_id]
            if known:
                amount = known[0]
            else:
                assert session is not None and price is not None
                amount = price - int(session.amount_refunded.amount_minor or 0)
                if amount <= 0:
                    raise TriggerError(f"session {args.session} has nothing left to refund; pass --amount")
        status = args.status or "succeeded"
        earlier = [
            StripeRefund(rid, stripe_units(minor, currency), state)
            for rid, minor, state in reversed(refunds)
            if state in STRIPE_REFUND_STATUSES
        ]
        description = f"refund {refund_id} ({status})"
        event = build_stripe_money_back_event(
            args.event_type,
            payment_intent,
            stripe_units(amount, currency),
            currency,
            session_id=args.session,
            charge_amount=stripe_units(price, currency) if price is not None else None,
            refund_id=refund_id,
            status=status,
            earlier_refunds=earlier,
            livemode=args.livemode,
            event_id=args.event_id,
        )
    else:
        if amount is None:
            assert price is not None
            amount = price
        event = build_stripe_money_back_event(
            args.event_type,
            payment_intent,
            stripe_units(amount, currency),
            currency,
            dispute_id=args.dispute_id,
            status=args.status,
            livemode=args.livemode,
            event_id=args.event_id,
        )
        obj = event["data"]["object"]
        description = f"dispute {obj['id']} ({obj['status']})"
    shown = Decimal(amount).scaleb(-iso_exponent(currency))
    print(
        f"{description} of {shown} {currency} on PaymentIntent {payment_intent} "
        f"(charge {charge_id_for(payment_intent)})"
    )
    return event


def build_delivery(
    args: argparse.Namespace,
    stack: dict[str, Any],
    price: Price,
    now: int,
    transaction_id: str | None = None,
) -> tuple[str, bytes, dict[str, str]]:
    """(path, body, headers) of the signed POST."""
    secrets = stack["webhook_secrets"]
    if args.provider == "stripe":
        try:
            event = build_stripe_event(
                args.event_type,
                args.session,
                price.amount_minor,
                price.currency,
                payment_intent_id=args.payment_intent,
                livemode=args.livemode,
                event_id=args.event_id,
                payment_status=args.payment_status,
            )
        except ValueError as exc:
            raise TriggerError(str(exc)) from None
        raw, headers = stripe_delivery(event, secrets["stripe"], now)
        return "/webhooks/stripe", raw, headers
    body = build_onecom_event(
        args.event_type,
        args.session,
        price.amount_minor,
        price.currency,
        transaction_id=transaction_id or args.transaction_id,
    )
    raw, headers = standard_delivery(body, onecom_secret(args, stack), now, args.event_id)
    return "/webhooks/onecom", raw, headers


async def trigger(args: argparse.Namespace, stack: dict[str, Any]) -> int:
    gateway_url = (args.gateway_url or stack["gateway_url"]).rstrip("/")
    if args.provider == "stripe" and args.event_type not in STRIPE_PAYMENT_EVENT_TYPES:
        event = await money_back_event(args, stack)
        path = "/webhooks/stripe"
        raw, headers = stripe_delivery(event, stack["webhook_secrets"]["stripe"], int(time.time()))
    else:
        price = await resolve_price(args, stack)
        transaction_id = None
        if args.provider == "onecom":
            onecom_secret(args, stack)  # refuse a missing secret before the double records anything
            if args.event_type == ONECOM_PAYMENT_SUCCEEDED:
                await refuse_unpayable(stack["grpc"]["session"], args.session)
            transaction_id = await record_at_double(args, stack, price, gateway_url)
        path, raw, headers = build_delivery(args, stack, price, int(time.time()), transaction_id)
    url = gateway_url + path
    event_id = json.loads(raw).get("id") or headers.get("webhook-id")
    print(f"sending {args.provider} {args.event_type} {event_id} for session {args.session} to {url}")
    timeout = aiohttp.ClientTimeout(total=REPLY_TIMEOUT_S)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.post(url, data=raw, headers=headers) as reply,
        ):
            text = await reply.text()
            status = reply.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TriggerError(f"the gateway at {url} did not answer: {exc or type(exc).__name__}") from None
    print(f"HTTP {status}")
    print(text)
    return 0 if 200 <= status < 300 else 1


def run(args: argparse.Namespace) -> int:
    stack = load_stack()
    try:
        return asyncio.run(trigger(args, stack))
    except TriggerError as exc:
        print(f"paygate: {exc}", file=sys.stderr)
        return USAGE_EXIT if isinstance(exc, TriggerUsageError) else 1
