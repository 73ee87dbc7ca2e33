"""One.com's payments API (contract §11): create, read, cancel and refund a payment.

Every call has a total timeout and carries `Authorization: Bearer <the mode's API key>`; every write carries
an `Idempotency-Key` of its own operation (a create: the session id, so a retried create gets the same
payment back; a cancel: the payment id; a refund: the caller's refund key). Only timeouts, connection
errors and 5xx answers are retried, with exponential backoff and jitter: a 4xx is One.com's final word on that
request, and repeating it would only repeat the refusal.

A circuit breaker sits in front of the network: after `breaker_threshold` failures in a row (each failed
attempt counts) it opens, and for `breaker_cooldown_s` every call fails at once with `provider_unavailable`
instead of tying up a checkout page or the reconciliation worker on timeouts. Then a single trial call is let
through (half-open): its success closes the circuit, its failure opens it again. The state is exported as
`paygate_provider_circuit_state{provider="onecom"}` (0 closed, 1 half-open, 2 open; read when scraped), with
the number of openings and of API calls by operation and result beside it.

No secret is ever logged: log lines name the operation, the status and One.com's error code only, and the
settings' repr leaves the keys out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge

from webhook_gateway.adapters.provider_errors import ProviderError

log = logging.getLogger(__name__)

PROVIDER: Final = "onecom"
# One.com's payment states (contract §11).
REQUIRES_ACTION: Final = "requires_action"
PROCESSING: Final = "processing"
SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
CANCELED: Final = "canceled"
PAYMENT_STATUSES: Final[frozenset[str]] = frozenset(
    {REQUIRES_ACTION, PROCESSING, SUCCEEDED, FAILED, CANCELED}
)
FINAL_STATUSES: Final[frozenset[str]] = frozenset({SUCCEEDED, FAILED, CANCELED})

CLOSED: Final = "closed"
HALF_OPEN: Final = "half_open"
OPEN: Final = "open"
_STATE_VALUES: Final[dict[str, int]] = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}
_MAX_ERROR_TEXT: Final = 200


@dataclass(frozen=True, slots=True)
class OneComApiSettings:
    api_base: str
    # One key per mode (contract §6a); a mode without a key has no One.com API.
    api_keys: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout_s: float = 10.0
    max_attempts: int = 3
    backoff_base_s: float = 0.2
    backoff_max_s: float = 2.0
    breaker_threshold: int = 5
    breaker_cooldown_s: float = 30.0

    def __repr__(self) -> str:  # the keys never reach a log line or a traceback
        return (
            f"OneComApiSettings(api_base={self.api_base!r}, modes={sorted(self.api_keys)}, "
            f"timeout_s={self.timeout_s})"
        )


@dataclass(frozen=True, slots=True)
class OneComPayment:
    """A payment as One.com's API reports it. `amount_received_minor` is what was actually paid, once
    `succeeded` (our own addition to §11's reply: a test double pays short on purpose); absent, the
    requested `amount_minor` was paid."""

    id: str
    status: str
    redirect_url: str | None
    amount_minor: int | None
    currency: str | None
    reference: str | None
    amount_received_minor: int | None = None

    @property
    def paid_minor(self) -> int | None:
        return self.amount_received_minor if self.amount_received_minor is not None else self.amount_minor


@dataclass(frozen=True, slots=True)
class OneComRefund:
    id: str
    status: str
    amount_minor: int | None


class ProviderMetrics:
    """Circuit state and API calls of the provider adapters, on the gateway's metrics registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.circuit_state = Gauge(
            "paygate_provider_circuit_state",
            "Provider API circuit breaker state: 0 closed, 1 half-open (one trial call), 2 open (failing fast)",
            ["provider"],
            registry=registry,
        )
        self.circuit_opened = Counter(
            "paygate_provider_circuit_opened_total",
            "Times a provider API circuit breaker opened",
            ["provider"],
            registry=registry,
        )
        self.calls = Counter(
            "paygate_provider_api_calls_total",
            "Provider API calls by operation and result (ok, rejected, unavailable, circuit_open)",
            ["provider", "operation", "result"],
            registry=registry,
        )
        self.reconciled = Counter(
            "paygate_reconcile_checks_total",
            "Reconciliation checks of provider payments by result (settled, applied, amount_mismatch, "
            "no_change, provider_unavailable, ...)",
            ["provider", "result"],
            registry=registry,
        )


class CircuitOpen(ProviderError):
    def __init__(self) -> None:
        super().__init__(
            "provider_unavailable",
            "One.com's API is failing; calls are paused for a moment (circuit open)",
            transient=True,
        )


class CircuitBreaker:
    """Consecutive-failure breaker with one trial call after the cooldown (see the module docstring)."""

    def __init__(
        self,
        name: str,
        threshold: int,
        cooldown_s: float,
        metrics: ProviderMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.threshold = max(1, threshold)
        self.cooldown_s = cooldown_s
        self.metrics = metrics
        self.clock = clock
        self.failures = 0
        self._state = CLOSED
        self._opened_at = 0.0
        self._trial_running = False
        if metrics is not None:
            # Read when scraped: once the cooldown has passed the circuit is half-open (the next call is the
            # trial) whether or not a call has come since. Set on each move instead, a quiet hour after an
            # outage showed `open` until the next call.
            metrics.circuit_state.labels(name).set_function(lambda: _STATE_VALUES[self.state])

    @property
    def state(self) -> str:
        if self._state == OPEN and self.clock() - self._opened_at >= self.cooldown_s:
            return HALF_OPEN
        return self._state

    def before_call(self) -> None:
        """Raise CircuitOpen unless a call may go out now."""
        state = self.state
        if state == CLOSED:
            return
        if state == HALF_OPEN and not self._trial_running:
            self._state = HALF_OPEN
            self._trial_running = True
            return
        raise CircuitOpen()

    def succeeded(self) -> None:
        self.failures = 0
        self._trial_running = False
        if self._state != CLOSED:
            log.info("provider circuit closed", extra={"provider": self.name})
        self._state = CLOSED

    def failed(self) -> None:
        self.failures += 1
        trial = self._trial_running
        self._trial_running = False
        if trial or (self._state == CLOSED and self.failures >= self.threshold):
            if self._state != OPEN or trial:
                log.warning(
                    "provider circuit opened", extra={"provider": self.name, "failures": self.failures}
                )
                if self.metrics is not None:
                    self.metrics.circuit_opened.labels(self.name).inc()
            self._state = OPEN
            self._opened_at = self.clock()

    def abandoned(self) -> None:
        """A trial call that was cancelled proves nothing: let the next call try."""
        self._trial_running = False


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_payment(body: Any) -> OneComPayment:
    if not isinstance(body, dict) or not _str_or_none(body.get("id")):
        raise ProviderError("provider_rejected", "One.com answered without a payment id", transient=True)
    status = body.get("status")
    if status not in PAYMENT_STATUSES:
        raise ProviderError(
            "provider_rejected", f"One.com answered an unknown payment status {status!r:.40}", transient=True
        )
    currency = _str_or_none(body.get("currency"))
    return OneComPayment(
        id=body["id"],
        status=status,
        redirect_url=_str_or_none(body.get("redirect_url")),
        amount_minor=_int_or_none(body.get("amount_minor")),
        currency=currency.upper() if currency else None,
        reference=_str_or_none(body.get("reference")),
        amount_received_minor=_int_or_none(body.get("amount_received_minor")),
    )


class OneComClient:
    def __init__(
        self,
        settings: OneComApiSettings,
        metrics: ProviderMetrics | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.base = settings.api_base.rstrip("/")
        self.metrics = metrics
        self.breaker = CircuitBreaker(
            PROVIDER, settings.breaker_threshold, settings.breaker_cooldown_s, metrics, clock
        )
        self._rng = rng or random.Random()
        self._http: aiohttp.ClientSession | None = None

    def has_mode(self, mode: str | None) -> bool:
        return bool(mode and self.settings.api_keys.get(mode))

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s),
                headers={"Accept": "application/json", "User-Agent": "paygate"},
            )
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    # ---- operations ----------------------------------------------------------------------------------

    async def create_payment(
        self,
        mode: str,
        *,
        session_id: str,
        amount_minor: int,
        currency: str,
        return_url: str,
        webhook_url: str,
    ) -> OneComPayment:
        """Create (or, retried, get back: the Idempotency-Key is the session id) the session's payment."""
        body = {
            "amount_minor": amount_minor,
            "currency": currency,
            "reference": session_id,
            "return_url": return_url,
            "webhook_url": webhook_url,
        }
        reply = await self._call("create", "POST", "/v1/payments", mode, body, idempotency_key=session_id)
        return parse_payment(reply)

    async def get_payment(self, mode: str, payment_id: str) -> OneComPayment:
        reply = await self._call("read", "GET", f"/v1/payments/{quote(payment_id, safe='')}", mode)
        return parse_payment(reply)

    async def cancel_payment(self, mode: str, payment_id: str) -> OneComPayment:
        path = f"/v1/payments/{quote(payment_id, safe='')}/cancel"
        reply = await self._call("cancel", "POST", path, mode, {}, idempotency_key=f"cancel-{payment_id}")
        return parse_payment(reply)

    async def refund(
        self, mode: str, payment_id: str, amount_minor: int, idempotency_key: str
    ) -> OneComRefund:
        """Refund part or all of a payment; `idempotency_key` names this refund (e.g. our refund id)."""
        path = f"/v1/payments/{quote(payment_id, safe='')}/refunds"
        reply = await self._call(
            "refund", "POST", path, mode, {"amount_minor": amount_minor}, idempotency_key=idempotency_key
        )
        if not isinstance(reply, dict) or not _str_or_none(reply.get("id")):
            raise ProviderError("provider_rejected", "One.com answered without a refund id", transient=True)
        return OneComRefund(
            id=reply["id"],
            status=str(reply.get("status") or ""),
            amount_minor=_int_or_none(reply.get("amount_minor")),
        )

    # ---- transport -----------------------------------------------------------------------------------

    def _count(self, operation: str, result: str) -> None:
        if self.metrics is not None:
            self.metrics.calls.labels(PROVIDER, operation, result).inc()

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.settings.backoff_max_s, self.settings.backoff_base_s * (2 ** (attempt - 1)))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    async def _call(
        self,
        operation: str,
        method: str,
        path: str,
        mode: str,
        body: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Any:
        key = self.settings.api_keys.get(mode)
        if not key:
            raise ProviderError(
                "provider_not_configured",
                f"no One.com API key is configured for {mode} mode",
                transient=False,
            )
        headers = {"Authorization": f"Bearer {key}"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        last: ProviderError | None = None
        for attempt in range(1, max(1, self.settings.max_attempts) + 1):
            if attempt > 1:
                await asyncio.sleep(self._backoff(attempt - 1))
            try:
                self.breaker.before_call()
            except CircuitOpen:
                self._count(operation, "circuit_open")
                raise
            try:
                status, reply = await self._send(method, path, headers, body)
            except asyncio.CancelledError:
                self.breaker.abandoned()
                raise
            except (aiohttp.ClientError, TimeoutError) as error:
                self.breaker.failed()
                last = ProviderError(
                    "provider_unavailable",
                    f"One.com {operation} failed: {type(error).__name__}",
                    transient=True,
                )
                log.warning(
                    "onecom api call failed",
                    extra={"operation": operation, "attempt": attempt, "error": type(error).__name__},
                )
                continue
            if status >= 500:
                self.breaker.failed()
                last = _error_from(operation, status, reply, transient=True)
                log.warning(
                    "onecom api answered a server error",
                    extra={"operation": operation, "attempt": attempt, "status": status},
                )
                continue
            self.breaker.succeeded()
            if status >= 400:
                self._count(operation, "rejected")
                refused = _error_from(operation, status, reply, transient=False)
                log.info(
                    "onecom api refused a request",
                    extra={"operation": operation, "status": status, "provider_code": refused.provider_code},
                )
                raise refused
            self._count(operation, "ok")
            return reply
        self._count(operation, "unavailable")
        assert last is not None
        raise last

    async def _send(
        self, method: str, path: str, headers: dict[str, str], body: dict[str, Any] | None
    ) -> tuple[int, Any]:
        async with self._session().request(method, self.base + path, json=body, headers=headers) as response:
            raw = await response.read()
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:  # not JSON (or not UTF-8): only the status speaks
                parsed = None
            return response.status, parsed


def _error_from(operation: str, status: int, reply: Any, *, transient: bool) -> ProviderError:
    provider_code = None
    message = ""
    if isinstance(reply, dict) and isinstance(reply.get("error"), dict):
        provider_code = _str_or_none(reply["error"].get("code"))
        message = str(reply["error"].get("message") or "")[:_MAX_ERROR_TEXT]
    text = f"One.com {operation} failed with HTTP {status}"
    if provider_code:
        text += f" ({provider_code}"
        text += f": {message})" if message else ")"
    return ProviderError(
        "provider_unavailable" if transient else "provider_rejected",
        text,
        transient=transient,
        provider_code=provider_code,
        http_status=status,
    )
