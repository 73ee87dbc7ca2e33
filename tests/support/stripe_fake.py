"""A local HTTP server that answers like Stripe's API for Checkout Sessions (create, retrieve, expire).

Shared by the checkout, refund, gateway and One.com integration tests (refund_flows.FakeStripeRefunds extends it).

The real `stripe` library talks to it (its api base pointed here), so these tests see exactly the form
fields and headers the library sends. It keeps Stripe's idempotency rules: the same Idempotency-Key with the
same parameters replays the first answer; with other parameters it is a 400 `idempotency_error`.
"""

from __future__ import annotations

import copy
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

from paygate_dev.devtools.stripe_fixtures import stripe_shape

SHAPE = stripe_shape("checkout.session")


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class FakeStripe:
    api_key: str = "sk_test_fake_" + secrets.token_hex(8)
    requests: list[Recorded] = field(default_factory=list)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotency: dict[str, tuple[dict[str, str], int, dict[str, Any]]] = field(default_factory=dict)
    # down: answer 500 without doing anything; lose_responses: do the work, then answer 500 (a lost reply).
    down: bool = False
    lose_responses: int = 0
    on_expire: Any = None  # async callback(cs_id) run before an expiry is applied
    runner: web.AppRunner | None = None
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The gateway settings that send its Stripe API calls to this fake."""
        return {
            "PAYGATE_STRIPE_API_KEY": self.api_key,
            "PAYGATE_STRIPE_API_BASE": self.base_url,
            "PAYGATE_STRIPE_TIMEOUT_MS": "3000",
        }

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def calls(self, method: str, path_prefix: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    def creates(self) -> list[Recorded]:
        return [r for r in self.calls("POST", "/v1/checkout/sessions") if not r.path.endswith("/expire")]

    def expires(self) -> list[Recorded]:
        return [r for r in self.calls("POST", "/v1/checkout/sessions/") if r.path.endswith("/expire")]

    def _add_routes(self, app: web.Application) -> None:
        """The endpoints this fake answers; a subclass adds its own after these."""
        app.router.add_post("/v1/checkout/sessions", self._create)
        app.router.add_get("/v1/checkout/sessions/{id}", self._retrieve)
        app.router.add_post("/v1/checkout/sessions/{id}/expire", self._expire)

    async def start(self) -> Self:
        app = web.Application()
        self._add_routes(app)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    # ---- Stripe's behaviour -----------------------------------------------------------------------

    @staticmethod
    def _error(status: int, kind: str, message: str, code: str | None = None) -> web.Response:
        body = {"error": {"type": kind, "message": message, **({"code": code} if code else {})}}
        return web.json_response(body, status=status, headers={"Request-Id": "req_" + secrets.token_hex(7)})

    async def _record(self, request: web.Request) -> Recorded | web.Response:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        recorded = Recorded(request.method, request.path, dict(request.headers), form)
        self.requests.append(recorded)
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._error(401, "invalid_request_error", "Invalid API Key provided")
        if self.down:
            return self._error(500, "api_error", "Stripe is having a bad day")
        return recorded

    async def _idempotent(self, recorded: Recorded, work: Any) -> web.Response:
        key = recorded.headers.get("Idempotency-Key")
        if key is not None and key in self.idempotency:
            first_form, status, body = self.idempotency[key]
            if first_form != recorded.form:
                return self._error(
                    400,
                    "idempotency_error",
                    "Keys for idempotent requests can only be used with the same parameters they were first "
                    "used with.",
                )
            if self.lose_responses > 0:
                self.lose_responses -= 1
                return self._error(500, "api_error", "the reply was lost on the way")
            return web.json_response(body, status=status, headers={"Idempotent-Replayed": "true"})
        result = await work()
        if isinstance(result, web.Response):
            return result
        status, body = result
        if key is not None:
            self.idempotency[key] = (recorded.form, status, copy.deepcopy(body))
        if self.lose_responses > 0:
            self.lose_responses -= 1
            return self._error(500, "api_error", "the reply was lost on the way")
        return web.json_response(body, status=status)

    async def _create(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        if isinstance(recorded, web.Response):
            return recorded
        form = recorded.form

        async def work() -> tuple[int, dict[str, Any]] | web.Response:
            now = int(time.time())
            expires_at = int(form.get("expires_at", now + 86400))
            if not now + 1800 <= expires_at <= now + 86400:
                return self._error(
                    400,
                    "invalid_request_error",
                    "expires_at must be 30 minutes to 24 hours from now",
                    "parameter_invalid_integer",
                )
            cs_id = "cs_test_" + secrets.token_hex(16)
            obj = copy.deepcopy(SHAPE)
            amount = int(form["line_items[0][price_data][unit_amount]"]) * int(
                form["line_items[0][quantity]"]
            )
            obj.update(
                id=cs_id,
                object="checkout.session",
                amount_subtotal=amount,
                amount_total=amount,
                currency=form["line_items[0][price_data][currency]"],
                client_reference_id=form.get("client_reference_id"),
                metadata={k[len("metadata[") : -1]: v for k, v in form.items() if k.startswith("metadata[")},
                customer_email=form.get("customer_email"),
                created=now,
                expires_at=expires_at,
                livemode=False,
                mode=form["mode"],
                payment_intent=None,
                payment_status="unpaid",
                status="open",
                success_url=form["success_url"],
                cancel_url=form["cancel_url"],
                url=f"https://checkout.stripe.com/c/pay/{cs_id}",
            )
            self.sessions[cs_id] = obj
            return 200, obj

        return await self._idempotent(recorded, work)

    async def _retrieve(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        if isinstance(recorded, web.Response):
            return recorded
        obj = self.sessions.get(request.match_info["id"])
        if obj is None:
            return self._error(404, "invalid_request_error", "No such checkout.session", "resource_missing")
        return web.json_response(obj)

    async def _expire(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        if isinstance(recorded, web.Response):
            return recorded
        cs_id = request.match_info["id"]

        async def work() -> tuple[int, dict[str, Any]] | web.Response:
            obj = self.sessions.get(cs_id)
            if obj is None:
                return self._error(
                    404, "invalid_request_error", "No such checkout.session", "resource_missing"
                )
            if obj["status"] != "open":
                return self._error(
                    400,
                    "invalid_request_error",
                    f'Only Checkout Sessions with a status in ["open"] can be expired; this one is {obj["status"]}.',
                )
            if self.on_expire is not None:
                await self.on_expire(cs_id)
            obj.update(status="expired", url=None)
            return 200, obj

        return await self._idempotent(recorded, work)

    def complete(self, cs_id: str) -> None:
        """The customer paid on Stripe's page."""
        self.sessions[cs_id].update(status="complete", payment_status="paid", url=None)
