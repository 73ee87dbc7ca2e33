"""gRPC adapter of merchant events: `paygate.session.v1.MerchantEventsService` (contract §7)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import grpc

from paygate.common.v1 import common_pb2
from paygate.session.v1 import merchant_events_pb2 as pb
from paygate.session.v1 import merchant_events_pb2_grpc
from paygate_runtime.crypto.secret_box import SecretBox
from paygate_runtime.errors import InvalidArgument, Unavailable, require
from paygate_runtime.proto_convert import mode_enum, mode_label
from session_service.adapters import merchant_events_repository as repo
from session_service.adapters.merchant_event_objects import FetchInvoice, render_object
from session_service.adapters.session_messages import ts
from session_service.domain.merchant_events import event_body
from session_service.service_layer import merchant_events as usecases

Context = grpc.aio.ServicerContext


def _scope(merchant_id: str, mode: int) -> usecases.Scope:
    require(merchant_id, "merchant_id")
    if mode not in (common_pb2.MODE_TEST, common_pb2.MODE_LIVE):
        # Endpoints and events exist per mode; a request in no mode would see both worlds.
        raise InvalidArgument("invalid_mode", "mode must be test or live", field="mode")
    return usecases.scope(merchant_id, mode_label(mode))


def endpoint_message(row: Any, secret: str = "") -> pb.WebhookEndpoint:
    message = pb.WebhookEndpoint(
        id=str(row["id"]),
        url=row["url"],
        events=list(row["events"]),
        description=row["description"],
        status=row["status"],
        secret=secret,
        mode=mode_enum(row["mode"]),
        created_at=ts(row["created_at"]),
        updated_at=ts(row["updated_at"]),
        disabled_reason=row["disabled_reason"] or "",
    )
    # Every previous secret still signing, latest end first; the first is the latest end of them all.
    ends = row["previous_secrets_expire_at"]
    if ends:
        message.previous_secret_expires_at.CopyFrom(ts(ends[0]))
    message.previous_secrets_expire_at.extend(ts(end) for end in ends)
    if row["failing_since"] is not None:
        message.failing_since.CopyFrom(ts(row["failing_since"]))
    return message


def attempt_message(row: Any) -> pb.WebhookDeliveryAttempt:
    message = pb.WebhookDeliveryAttempt(
        id=str(row["id"]),
        endpoint_id=str(row["endpoint_id"]),
        event_id=row["event_id"],
        event_type=row["event_type"],
        attempt=row["attempt"],
        status_code=row["status_code"] or 0,
        error=row["error"] or "",
        at=ts(row["at"]),
        delivered=row["delivered"],
        latency_ms=row["latency_ms"],
        response_body=row["response_body"] or "",
    )
    if row["next_attempt_at"] is not None:
        message.next_attempt_at.CopyFrom(ts(row["next_attempt_at"]))
    return message


class MerchantEventsServicer(merchant_events_pb2_grpc.MerchantEventsServiceServicer):
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        allow_loopback: bool,
        fetch_invoice: FetchInvoice | None,
        secret_box: SecretBox,
    ) -> None:
        self.pool = pool
        self.secret_box = secret_box
        self.allow_loopback = allow_loopback
        self.fetch_invoice = fetch_invoice

    async def event_message(self, row: Any) -> pb.MerchantEvent:
        try:
            obj, fetched = await render_object(row, self.fetch_invoice)
            if fetched:  # kept, so the next listing and the deliveries send the same object without a call
                async with self.pool.acquire() as conn:
                    obj = await repo.store_object(conn, row["id"], obj)
        except grpc.aio.AioRpcError as error:
            # An invoice event not yet delivered is read from billing; without billing it cannot be shown.
            raise Unavailable("unavailable", f"billing: {error.code().name}") from None
        return pb.MerchantEvent(
            id=row["id"],
            type=row["type"],
            mode=mode_enum(row["mode"]),
            created=ts(row["created_at"]),
            body_json=event_body(row["id"], row["type"], row["created_at"], row["mode"], obj),
        )

    async def CreateWebhookEndpoint(
        self, request: pb.CreateWebhookEndpointRequest, context: Context
    ) -> pb.WebhookEndpoint:
        created = await usecases.create_endpoint(
            self.pool,
            self.secret_box,
            _scope(request.merchant_id, request.mode),
            request.url,
            list(request.events),
            request.description,
            allow_loopback=self.allow_loopback,
            idempotency_key=request.idempotency_key,
            request_fingerprint=request.request_fingerprint,
            actor=request.actor,
        )
        message = endpoint_message(created.row, created.secret)
        message.replayed = created.replayed
        return message

    async def ListWebhookEndpoints(
        self, request: pb.ListWebhookEndpointsRequest, context: Context
    ) -> pb.ListWebhookEndpointsResponse:
        rows, has_more = await usecases.list_endpoints(
            self.pool, _scope(request.merchant_id, request.mode), request.limit, request.starting_after
        )
        return pb.ListWebhookEndpointsResponse(
            endpoints=[endpoint_message(r) for r in rows], has_more=has_more
        )

    async def GetWebhookEndpoint(
        self, request: pb.WebhookEndpointRef, context: Context
    ) -> pb.WebhookEndpoint:
        return endpoint_message(
            await usecases.get_endpoint(
                self.pool, _scope(request.merchant_id, request.mode), request.endpoint_id
            )
        )

    async def UpdateWebhookEndpoint(
        self, request: pb.UpdateWebhookEndpointRequest, context: Context
    ) -> pb.WebhookEndpoint:
        return endpoint_message(
            await usecases.update_endpoint(
                self.pool,
                _scope(request.merchant_id, request.mode),
                request.endpoint_id,
                url=request.url if request.HasField("url") else None,
                events=list(request.events) if request.set_events else None,
                description=request.description if request.HasField("description") else None,
                status=request.status if request.HasField("status") else None,
                allow_loopback=self.allow_loopback,
                actor=request.actor,
            )
        )

    async def DeleteWebhookEndpoint(
        self, request: pb.WebhookEndpointRef, context: Context
    ) -> pb.WebhookEndpoint:
        return endpoint_message(
            await usecases.delete_endpoint(
                self.pool, _scope(request.merchant_id, request.mode), request.endpoint_id, actor=request.actor
            )
        )

    async def RollWebhookSecret(
        self, request: pb.RollWebhookSecretRequest, context: Context
    ) -> pb.WebhookEndpoint:
        row, secret = await usecases.roll_secret(
            self.pool,
            self.secret_box,
            _scope(request.merchant_id, request.mode),
            request.endpoint_id,
            # Not set: the default overlap; set to 0: the old secret stops at once.
            int(request.overlap_seconds) if request.HasField("overlap_seconds") else None,
            actor=request.actor,
        )
        return endpoint_message(row, secret)

    async def ListWebhookDeliveries(
        self, request: pb.ListWebhookDeliveriesRequest, context: Context
    ) -> pb.ListWebhookDeliveriesResponse:
        rows, has_more = await usecases.list_attempts(
            self.pool,
            _scope(request.merchant_id, request.mode),
            request.endpoint_id,
            request.event_id,
            request.limit,
            request.starting_after,
        )
        return pb.ListWebhookDeliveriesResponse(
            attempts=[attempt_message(r) for r in rows], has_more=has_more
        )

    async def ListMerchantEvents(
        self, request: pb.ListMerchantEventsRequest, context: Context
    ) -> pb.ListMerchantEventsResponse:
        rows, has_more = await usecases.list_events(
            self.pool,
            _scope(request.merchant_id, request.mode),
            request.type,
            request.limit,
            request.starting_after,
        )
        return pb.ListMerchantEventsResponse(
            events=await asyncio.gather(*(self.event_message(r) for r in rows)), has_more=has_more
        )

    async def RedeliverMerchantEvent(
        self, request: pb.RedeliverMerchantEventRequest, context: Context
    ) -> pb.RedeliverMerchantEventResponse:
        row = await usecases.redeliver(
            self.pool,
            _scope(request.merchant_id, request.mode),
            request.event_id,
            request.endpoint_id,
            actor=request.actor,
        )
        return pb.RedeliverMerchantEventResponse(
            event_id=request.event_id,
            endpoint_id=request.endpoint_id,
            next_attempt_at=ts(row["next_attempt_at"]),
        )

    async def RecordMerchantEvent(
        self, request: pb.RecordMerchantEventRequest, context: Context
    ) -> pb.MerchantEvent:
        try:
            obj = json.loads(request.object_json)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            raise InvalidArgument(
                "invalid_object_json", "object_json must be a JSON object", field="object_json"
            )
        row = await usecases.record_event(
            self.pool,
            _scope(request.merchant_id, request.mode),
            request.type,
            request.object_id,
            obj,
            request.source_key,
        )
        return await self.event_message(row)
