"""A local One.com test double: the payments API of contract §11 and a hosted payment page (dev tooling only).

`paygate up` runs it beside the stack (paygate_dev.extras) and points the gateway at it; tests start
it themselves. It keeps its payments in memory.

API (JSON, `Authorization: Bearer <api key>`, errors `{"error": {"code", "message"}}`):
- `POST /v1/payments` `{"amount_minor", "currency", "reference", "return_url", "webhook_url"}` ->
  201 `{"id", "status": "requires_action", "redirect_url", ...}`. The same `Idempotency-Key` with the same
  body answers the first payment again; with another body, 409 `idempotency_conflict`.
- `GET /v1/payments/{id}`; `POST /v1/payments/{id}/cancel` (409 `payment_not_cancelable` once it succeeded
  or failed); `POST /v1/payments/{id}/refunds` `{"amount_minor"}`.
  Besides §11's fields a payment shows `amount_received_minor`: what the customer actually paid.

The hosted page (`redirect_url`, `GET /pay/{id}`) has three buttons: "Pay", "Fail" and "Pay 1 cent short",
and a "Don't send the webhook" box. A click settles the payment, sends the Standard Webhooks event
(`payment.succeeded` / `payment.failed`, signed with the secret of the API key's mode) to the payment's
`webhook_url`, and sends the customer back to `return_url`. With the box ticked (or the global switch on) no
webhook is sent, so the gateway's reconciliation can be seen at work.

Switches for tests and people (no auth: a local dev tool): `GET /_double` shows the state;
`POST /_double/settings` `{"outage": 503|null, "drop_webhooks": bool, "delay_s": float}` makes the API
answer that status (an outage), drop every webhook, or answer slowly; `POST /_double/payments/{id}/{pay|fail|
short}` `{"drop_webhook": bool}` acts as the buttons do.

`POST /_double/payments` `{"reference", "amount_minor", "currency", "mode": "test"|"live", "status":
"succeeded"|"failed"|"requires_action", "webhook_url", "return_url", "id"?}` records a payment the way the page
leaves it, but sends no webhook: the caller sends its own signed event (`paygate trigger onecom`). It settles
the payment `id` names, else the reference's open payment of that mode (the one the gateway created for the
session), else a new one under the mode's API key; a payment already settled stays as it is. So the event's
`transaction_id` is a payment the double knows, and a refund of it works. 409 `no_api_key_for_mode` when the
double holds no API key of that mode (a key is live when its name starts with `onecom_live_`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import html
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

import aiohttp
from aiohttp import web

from paygate_dev.devtools.signing import standard_delivery

if TYPE_CHECKING:
    from paygate_dev.stack_plan import Stack

# One API call's work behind the idempotency layer: (status, JSON reply), or the error response to answer.
Work = Callable[[], Awaitable[tuple[int, dict[str, Any]] | web.Response]]

log = logging.getLogger(__name__)

ACTIONS: Final = ("pay", "fail", "short")
RECORD_STATUSES: Final = ("succeeded", "failed", "requires_action")
MODES: Final = ("test", "live")
_WEBHOOK_ATTEMPTS: Final = 3


@dataclass
class Payment:
    id: str
    api_key: str
    amount_minor: int
    currency: str
    reference: str
    return_url: str
    webhook_url: str
    status: str = "requires_action"
    amount_received_minor: int | None = None
    refunded_minor: int = 0
    created: int = field(default_factory=lambda: int(time.time()))

    def public(self, base_url: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "payment",
            "status": self.status,
            "redirect_url": f"{base_url}/pay/{self.id}",
            "amount_minor": self.amount_minor,
            "currency": self.currency,
            "reference": self.reference,
            "return_url": self.return_url,
            "amount_received_minor": self.amount_received_minor,
            "amount_refunded_minor": self.refunded_minor,
            "created": self.created,
        }


@dataclass
class Delivery:
    payment_id: str
    event_type: str
    url: str
    status: int | None  # the gateway's HTTP status; None when it could not be reached or was dropped
    dropped: bool
    body: dict[str, Any]


class OneComDouble:
    """The double's state and its aiohttp server. `api_keys` maps each accepted API key to the Standard
    Webhooks secret its webhooks are signed with (one key per mode, as at One.com)."""

    def __init__(self, api_keys: dict[str, str], host: str = "127.0.0.1", port: int = 0) -> None:
        self.api_keys = dict(api_keys)
        self.host = host
        self.port = port
        self.payments: dict[str, Payment] = {}
        self.idempotency: dict[tuple[str, str, str], tuple[str, int, dict[str, Any]]] = {}
        self._slot_locks: dict[tuple[str, str, str], asyncio.Lock] = {}
        self._background: set[asyncio.Task[None]] = set()
        self.deliveries: list[Delivery] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (method, path, headers) of API calls
        self.outage: int | None = None  # answer every API call with this status
        self.drop_webhooks = False
        self.delay_s = 0.0
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ---- lifecycle -----------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/payments", self._create)
        app.router.add_get("/v1/payments/{id}", self._get)
        app.router.add_post("/v1/payments/{id}/cancel", self._cancel)
        app.router.add_post("/v1/payments/{id}/refunds", self._refund)
        app.router.add_get("/pay/{id}", self._page)
        app.router.add_post("/pay/{id}", self._page_action)
        app.router.add_get("/_double", self._state)
        app.router.add_post("/_double/settings", self._settings)
        app.router.add_post("/_double/payments", self._control_record)
        app.router.add_post("/_double/payments/{id}/{action}", self._control_action)
        return app

    async def start(self) -> OneComDouble:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # started above, so _server is an asyncio Server
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def stop(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- the API -------------------------------------------------------------------------------------

    @staticmethod
    def _error(status: int, code: str, message: str) -> web.Response:
        return web.json_response({"error": {"code": code, "message": message}}, status=status)

    async def _guard(self, request: web.Request) -> str | web.Response:
        """The caller's API key, or the error to answer (outage, bad key)."""
        self.requests.append((request.method, request.path, dict(request.headers)))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.outage is not None:
            return self._error(
                self.outage, "service_unavailable", "One.com is having an outage (test double)"
            )
        auth = request.headers.get("Authorization", "")
        key = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        if not key or key not in self.api_keys:
            return self._error(401, "invalid_api_key", "missing or unknown API key")
        return key

    async def _json(self, request: web.Request) -> dict[str, Any] | web.Response:
        try:
            body = await request.json() if await request.read() else {}
        except ValueError:
            return self._error(400, "invalid_json", "the body is not JSON")
        if not isinstance(body, dict):
            return self._error(400, "invalid_json", "the body must be a JSON object")
        return body

    def _payment(self, key: str, payment_id: str) -> Payment | None:
        payment = self.payments.get(payment_id)
        return payment if payment is not None and payment.api_key == key else None

    async def _idempotent(
        self, request: web.Request, key: str, body: dict[str, Any], work: Work
    ) -> web.Response:
        idem = request.headers.get("Idempotency-Key")
        slot = (key, request.path, idem) if idem else None
        if slot is None:
            return await self._idempotent_once(None, body, work)
        # A retry that arrives while the first request is still running waits for it, then replays it.
        lock = self._slot_locks.setdefault(slot, asyncio.Lock())
        async with lock:
            return await self._idempotent_once(slot, body, work)

    async def _idempotent_once(
        self, slot: tuple[str, str, str] | None, body: dict[str, Any], work: Work
    ) -> web.Response:
        fingerprint = json.dumps(body, sort_keys=True)
        if slot is not None and slot in self.idempotency:
            first, status, reply = self.idempotency[slot]
            if first != fingerprint:
                return self._error(
                    409, "idempotency_conflict", "this Idempotency-Key was used with another request"
                )
            return web.json_response(reply, status=status, headers={"Idempotent-Replayed": "true"})
        result = await work()
        if isinstance(result, web.Response):
            return result
        status, reply = result
        if slot is not None:
            self.idempotency[slot] = (fingerprint, status, copy.deepcopy(reply))
        return web.json_response(reply, status=status)

    async def _create(self, request: web.Request) -> web.Response:
        key = await self._guard(request)
        if isinstance(key, web.Response):
            return key
        body = await self._json(request)
        if isinstance(body, web.Response):
            return body

        async def work() -> tuple[int, dict[str, Any]] | web.Response:
            amount = self._amount(body)
            if amount is None:
                return self._error(422, "invalid_amount", "amount_minor must be a positive integer")
            currency = body.get("currency")
            if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
                return self._error(422, "invalid_currency", "currency must be an ISO 4217 code")
            urls: dict[str, str] = {}
            for name in ("return_url", "webhook_url"):
                url = body.get(name)
                if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                    return self._error(422, f"invalid_{name}", f"{name} must be an http(s) URL")
                urls[name] = url
            reference = body.get("reference")
            if not isinstance(reference, str) or not reference:
                return self._error(422, "invalid_reference", "reference is required")
            payment = Payment(
                id="pay_" + secrets.token_hex(12),
                api_key=key,
                amount_minor=amount,
                currency=currency.upper(),
                reference=reference,
                return_url=urls["return_url"],
                webhook_url=urls["webhook_url"],
            )
            self.payments[payment.id] = payment
            return 201, payment.public(self.base_url)

        return await self._idempotent(request, key, body, work)

    def _path_payment(self, request: web.Request, key: str) -> Payment | web.Response:
        """The payment the path names, when it is this API key's; else the 404 reply."""
        payment = self._payment(key, request.match_info["id"])
        return payment if payment is not None else self._error(404, "payment_not_found", "no such payment")

    @staticmethod
    def _amount(body: dict[str, Any]) -> int | None:
        """`amount_minor` when it is a positive whole number (bools are not numbers here)."""
        amount = body.get("amount_minor")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            return None
        return amount

    async def _get(self, request: web.Request) -> web.Response:
        key = await self._guard(request)
        if isinstance(key, web.Response):
            return key
        payment = self._path_payment(request, key)
        if isinstance(payment, web.Response):
            return payment
        return web.json_response(payment.public(self.base_url))

    async def _cancel(self, request: web.Request) -> web.Response:
        key = await self._guard(request)
        if isinstance(key, web.Response):
            return key
        payment = self._path_payment(request, key)
        if isinstance(payment, web.Response):
            return payment
        if payment.status in ("succeeded", "failed"):
            return self._error(409, "payment_not_cancelable", f"the payment already {payment.status}")
        payment.status = "canceled"
        return web.json_response(payment.public(self.base_url))

    async def _refund(self, request: web.Request) -> web.Response:
        key = await self._guard(request)
        if isinstance(key, web.Response):
            return key
        body = await self._json(request)
        if isinstance(body, web.Response):
            return body
        payment = self._path_payment(request, key)
        if isinstance(payment, web.Response):
            return payment

        async def work() -> tuple[int, dict[str, Any]] | web.Response:
            amount = self._amount(body)
            if amount is None:
                return self._error(422, "invalid_amount", "amount_minor must be a positive integer")
            if payment.status != "succeeded":
                return self._error(409, "payment_not_refundable", "only a succeeded payment can be refunded")
            paid = payment.amount_received_minor or 0
            if amount > paid - payment.refunded_minor:
                return self._error(422, "amount_too_large", "more than the payment's refundable amount")
            payment.refunded_minor += amount
            refund = {"id": "re_" + secrets.token_hex(12), "status": "succeeded", "amount_minor": amount}
            # Sent after the reply, as providers do: a slow webhook endpoint never delays the API.
            self._later(
                self._send_webhook(
                    payment,
                    "payment.refunded",
                    {
                        "session_id": payment.reference,
                        "transaction_id": payment.id,
                        "refund_id": refund["id"],
                        "amount_minor": amount,
                        "currency": payment.currency,
                    },
                    drop=False,
                )
            )
            return 201, refund

        return await self._idempotent(request, key, body, work)

    # ---- the customer's side ---------------------------------------------------------------------------

    def key_for_mode(self, mode: str) -> str | None:
        """The API key of `mode` (a key is live when its name starts with `onecom_live_`, else test)."""
        return next((key for key in self.api_keys if key_mode(key) == mode), None)

    def record(
        self,
        *,
        reference: str,
        amount_minor: int,
        currency: str,
        mode: str,
        status: str,
        webhook_url: str,
        return_url: str,
        payment_id: str | None = None,
    ) -> tuple[Payment, bool] | None:
        """Record a payment as the hosted page leaves it, without a webhook: (payment, created), or None when
        the double holds no API key of `mode`.

        The payment is `payment_id`'s, else the newest open payment of `reference` under `mode`'s key (the one
        the gateway created for its session), else a new one. An open payment is settled as a button settles
        it, with `amount_minor` as what the customer paid; a settled one stays as it is."""
        key = self.key_for_mode(mode)
        if key is None:
            return None
        payment = self.payments.get(payment_id) if payment_id else None
        if payment is None and payment_id is None:
            payment = next(
                (
                    p
                    for p in reversed(self.payments.values())
                    if p.reference == reference and p.api_key == key and p.status == "requires_action"
                ),
                None,
            )
        created = payment is None
        if payment is None:
            payment = Payment(
                id=payment_id or "pay_" + secrets.token_hex(12),
                api_key=key,
                amount_minor=amount_minor,
                currency=currency.upper(),
                reference=reference,
                return_url=return_url,
                webhook_url=webhook_url,
            )
            self.payments[payment.id] = payment
        if payment.status == "requires_action" and status != "requires_action":
            payment.status = status
            if status == "succeeded":
                payment.amount_received_minor = amount_minor
        return payment, created

    async def act(self, payment: Payment, action: str, *, drop_webhook: bool = False) -> bool:
        """What a button does. False when the payment is no longer open for it."""
        if payment.status != "requires_action" or action not in ACTIONS:
            return False
        data: dict[str, str | int] = {
            "session_id": payment.reference,
            "transaction_id": payment.id,
            "currency": payment.currency,
        }
        if action == "fail":
            payment.status = "failed"
            event_type = "payment.failed"
        else:
            payment.status = "succeeded"
            payment.amount_received_minor = payment.amount_minor - (1 if action == "short" else 0)
            event_type = "payment.succeeded"
            data["amount_minor"] = payment.amount_received_minor
        await self._send_webhook(payment, event_type, data, drop=drop_webhook or self.drop_webhooks)
        return True

    async def _send_webhook(
        self, payment: Payment, event_type: str, data: dict[str, Any], *, drop: bool
    ) -> None:
        body = {"type": event_type, "data": data}
        if drop:
            self.deliveries.append(Delivery(payment.id, event_type, payment.webhook_url, None, True, body))
            log.info("onecom double dropped a webhook", extra={"payment_id": payment.id, "type": event_type})
            return
        secret = self.api_keys[payment.api_key]
        msg_id = "msg_" + secrets.token_hex(12)
        status: int | None = None
        assert self._http is not None
        for attempt in range(_WEBHOOK_ATTEMPTS):
            # Signed afresh per attempt (a new timestamp), with one message id: the gateway sees a redelivery.
            raw, headers = standard_delivery(body, secret, int(time.time()), msg_id)
            try:
                async with self._http.post(payment.webhook_url, data=raw, headers=headers) as response:
                    status = response.status
                if 200 <= status < 300:
                    break
            except (aiohttp.ClientError, TimeoutError):
                status = None
            await asyncio.sleep(0.2 * (attempt + 1))
        self.deliveries.append(Delivery(payment.id, event_type, payment.webhook_url, status, False, body))

    async def _page(self, request: web.Request) -> web.Response:
        payment = self.payments.get(request.match_info["id"])
        if payment is None:
            return web.Response(status=404, text="No such payment", content_type="text/plain")
        return web.Response(text=_page_html(payment), content_type="text/html", headers=_PAGE_HEADERS)

    async def _page_action(self, request: web.Request) -> web.Response:
        payment = self.payments.get(request.match_info["id"])
        if payment is None:
            return web.Response(status=404, text="No such payment", content_type="text/plain")
        form = await request.post()
        action = str(form.get("action", ""))
        if not await self.act(payment, action, drop_webhook=form.get("drop_webhook") == "on"):
            return web.Response(
                status=409, text=_page_html(payment), content_type="text/html", headers=_PAGE_HEADERS
            )
        target = payment.return_url
        if action == "fail":
            target = target.replace("result=success", "result=cancel")
        raise web.HTTPSeeOther(target)

    # ---- switches ------------------------------------------------------------------------------------

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "outage": self.outage,
                "drop_webhooks": self.drop_webhooks,
                "delay_s": self.delay_s,
                "payments": [p.public(self.base_url) for p in self.payments.values()],
                "deliveries": [
                    {
                        "payment_id": d.payment_id,
                        "type": d.event_type,
                        "status": d.status,
                        "dropped": d.dropped,
                    }
                    for d in self.deliveries
                ],
            }
        )

    async def _settings(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        if isinstance(body, web.Response):
            return body
        if "outage" in body:
            outage = body["outage"]
            if outage is not None and (not isinstance(outage, int) or not 400 <= outage <= 599):
                return self._error(400, "invalid_outage", "outage must be an HTTP error status or null")
            self.outage = outage
        if "drop_webhooks" in body:
            self.drop_webhooks = bool(body["drop_webhooks"])
        if "delay_s" in body:
            self.delay_s = float(body["delay_s"] or 0)
        return await self._state(request)

    async def _control_record(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        if isinstance(body, web.Response):
            return body
        amount = body.get("amount_minor")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            return self._error(422, "invalid_amount", "amount_minor must be a whole number, 0 or more")
        currency = body.get("currency")
        if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
            return self._error(422, "invalid_currency", "currency must be an ISO 4217 code")
        text: dict[str, str] = {}
        for name in ("reference", "webhook_url", "return_url"):
            value = body.get(name)
            if not isinstance(value, str) or not value:
                return self._error(422, f"invalid_{name}", f"{name} is required")
            text[name] = value
        mode = body.get("mode", "test")
        if mode not in MODES:
            return self._error(422, "invalid_mode", f"mode must be one of {', '.join(MODES)}")
        status = body.get("status", "succeeded")
        if status not in RECORD_STATUSES:
            return self._error(422, "invalid_status", f"status must be one of {', '.join(RECORD_STATUSES)}")
        payment_id = body.get("id")
        if payment_id is not None and (not isinstance(payment_id, str) or not payment_id):
            return self._error(422, "invalid_id", "id must be a non-empty string")
        recorded = self.record(
            reference=text["reference"],
            amount_minor=amount,
            currency=currency,
            mode=mode,
            status=status,
            webhook_url=text["webhook_url"],
            return_url=text["return_url"],
            payment_id=payment_id,
        )
        if recorded is None:
            return self._error(409, "no_api_key_for_mode", f"the double holds no {mode}-mode API key")
        payment, created = recorded
        return web.json_response(payment.public(self.base_url), status=201 if created else 200)

    async def _control_action(self, request: web.Request) -> web.Response:
        payment = self.payments.get(request.match_info["id"])
        if payment is None:
            return self._error(404, "payment_not_found", "no such payment")
        body = await self._json(request)
        if isinstance(body, web.Response):
            return body
        if not await self.act(
            payment, request.match_info["action"], drop_webhook=bool(body.get("drop_webhook"))
        ):
            return self._error(409, "payment_not_open", f"the payment is {payment.status}")
        return web.json_response(payment.public(self.base_url))


_PAGE_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action *; base-uri 'none'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


def key_mode(api_key: str) -> str:
    """The mode of one of the double's API keys: live when its name says so (`onecom_live_...`), else test."""
    return "live" if api_key.startswith("onecom_live_") else "test"


def _money(amount_minor: int, currency: str) -> str:
    # Display only: the double knows no exponents, so two decimals, like most of One.com's currencies.
    return f"{amount_minor // 100}.{amount_minor % 100:02d} {currency}"


def _page_html(payment: Payment) -> str:
    esc = html.escape
    open_ = payment.status == "requires_action"
    buttons = (
        f"""<form method="post" action="/pay/{quote(payment.id)}">
  <p><label><input type="checkbox" name="drop_webhook" id="drop-webhook"> Don't send the webhook
     (the gateway's reconciliation then finds the payment through the API)</label></p>
  <p><button type="submit" name="action" value="pay" id="pay">Pay</button>
     <button type="submit" name="action" value="fail" id="fail">Fail</button>
     <button type="submit" name="action" value="short" id="short">Pay 1 cent short</button></p>
</form>"""
        if open_
        else f'<p id="closed">This payment is {esc(payment.status)}.</p>'
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>One.com test payment</title>
<style>body{{font-family:sans-serif;max-width:32rem;margin:3rem auto}}button{{font-size:1rem;margin-right:.5rem}}
.badge{{background:#fd4;padding:.2rem .5rem}}</style></head>
<body><p class="badge">One.com test double: no real money moves</p>
<h1>Pay <span id="amount">{esc(_money(payment.amount_minor, payment.currency))}</span></h1>
<p>Reference <code id="reference">{esc(payment.reference)}</code>, payment <code>{esc(payment.id)}</code></p>
<p>Status: <strong id="payment-status">{esc(payment.status)}</strong></p>
{buttons}
</body></html>"""


async def _serve(args: argparse.Namespace) -> None:
    double = await OneComDouble({args.api_key: args.webhook_secret}, port=args.port).start()
    print(f"One.com test double on {double.base_url} (Ctrl-C stops it)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await double.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="A local One.com test double (payments API and page)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", required=True, help="the API key the gateway sends")
    parser.add_argument("--webhook-secret", required=True, help="Standard Webhooks secret (whsec_...)")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


# ---- `paygate up` hooks (registered in paygate_dev.extras) ----------------------------------------

UP_KEY: Final = "onecom_double"


async def start_for_stack(stack: Stack) -> None:
    """Startup hook: run the double in `up`'s own loop and point the gateway at it with a test-mode key.
    An operator who set PAYGATE_ONECOM_API_BASE (a real One.com sandbox) keeps it: no double then."""
    import os

    if os.environ.get("PAYGATE_ONECOM_API_BASE"):
        return
    plan = stack.plan
    api_key = "onecom_test_" + secrets.token_hex(16)
    port = int(os.environ.get("PAYGATE_ONECOM_DOUBLE_PORT") or 0)
    double = await OneComDouble({api_key: plan.secrets["onecom_webhook_secret"]}, port=port).start()
    stack.side.append(double)
    plan.extras[UP_KEY] = double
    plan.extras.setdefault("env", {}).update(
        {"PAYGATE_ONECOM_API_BASE": double.base_url, "PAYGATE_ONECOM_API_KEY_TEST": api_key}
    )


async def stack_facts(stack: Stack) -> dict[str, Any] | None:
    """Post-start hook: `"onecom": {"api_base": ...}` for stack.json (contract §11)."""
    double = stack.plan.extras.get(UP_KEY)
    if double is None:
        return None
    return {"onecom": {"api_base": double.base_url}}


if __name__ == "__main__":
    main()
