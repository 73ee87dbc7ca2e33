"""gRPC adapter of the session service (thin slice; the state machine arrives with the session issue)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

import asyncpg
import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2, session_pb2_grpc
from paygate_runtime.errors import InvalidArgument, NotFound, require

if TYPE_CHECKING:
    from session_service.entrypoints.main import SessionConfig

_EXPONENTS = {"EUR": 2, "USD": 2, "GBP": 2, "JPY": 0}
_STATUS = {
    "created": session_pb2.SESSION_STATUS_CREATED,
    "pending": session_pb2.SESSION_STATUS_PENDING,
    "paid": session_pb2.SESSION_STATUS_PAID,
    "failed": session_pb2.SESSION_STATUS_FAILED,
    "expired": session_pb2.SESSION_STATUS_EXPIRED,
}
_MODES = {common_pb2.MODE_TEST: "test", common_pb2.MODE_LIVE: "live"}


def _ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


class SessionServicer(session_pb2_grpc.SessionServiceServicer):
    def __init__(self, pool: asyncpg.Pool, config: SessionConfig) -> None:
        self.pool = pool
        self.config = config

    def _session(self, row: asyncpg.Record) -> session_pb2.Session:
        return session_pb2.Session(
            id=str(row["id"]),
            merchant_id=str(row["merchant_id"]),
            mode={v: k for k, v in _MODES.items()}[row["mode"]],
            status=_STATUS[row["status"]],
            payment_status="not_started",
            amount=common_pb2.Money(
                amount_minor=str(row["amount_minor"]), currency=row["currency"], exponent=row["exponent"]
            ),
            provider=row["provider"],
            customer_email=row["customer_email"] or "",
            metadata=json.loads(row["metadata"]),
            created_at=_ts(row["created_at"]),
            expires_at=_ts(row["expires_at"]),
            paid_at=_ts(row["paid_at"]),
            description=row["description"],
        )

    async def CreateSession(
        self, request: session_pb2.CreateSessionRequest, context: grpc.aio.ServicerContext
    ) -> session_pb2.CreateSessionResponse:
        require(request.merchant_id, "merchant_id")
        currency = (request.currency or "EUR").upper()
        exponent = _EXPONENTS.get(currency)
        if exponent is None:
            raise InvalidArgument("unknown_currency", f"unknown currency {currency}", field="currency")
        try:
            amount = Decimal(request.amount)
        except InvalidOperation:
            raise InvalidArgument("invalid_amount", "amount is not a number", field="amount") from None
        minor = amount.scaleb(exponent)
        if not amount.is_finite() or minor != minor.to_integral_value() or minor <= 0:
            raise InvalidArgument("invalid_amount", "amount is not valid for the currency", field="amount")
        now = datetime.now(UTC)
        row = await self.pool.fetchrow(
            """INSERT INTO sessions (id, merchant_id, mode, status, amount_minor, currency, exponent, provider,
                                     customer_email, metadata, expires_at)
               VALUES ($1, $2, $3, 'created', $4, $5, $6, $7, $8, $9, $10) RETURNING *""",
            uuid.uuid4(),
            uuid.UUID(request.merchant_id),
            _MODES.get(request.mode, "test"),
            int(minor),
            currency,
            exponent,
            request.provider or "onecom",
            request.customer_email or None,
            json.dumps(dict(request.metadata)),
            now + timedelta(seconds=request.expires_in_seconds or 86400),
        )
        return session_pb2.CreateSessionResponse(session=self._session(row))

    async def GetSession(
        self, request: session_pb2.GetSessionRequest, context: grpc.aio.ServicerContext
    ) -> session_pb2.Session:
        require(request.session_id, "session_id")
        try:
            session_id = uuid.UUID(request.session_id)
        except ValueError:
            raise NotFound("session_not_found", "no such session") from None
        row = await self.pool.fetchrow("SELECT * FROM sessions WHERE id = $1", session_id)
        if row is None or (request.merchant_id and str(row["merchant_id"]) != request.merchant_id):
            raise NotFound("session_not_found", "no such session")
        return self._session(row)
