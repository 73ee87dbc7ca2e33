"""Stand-ins for the session service's stub in gateway tests that need no real one."""

from __future__ import annotations

from paygate.session.v1 import session_pb2


class BatchesAsSingleApplies:
    """ApplyPaymentEvents for a fake that defines ApplyPaymentEvent: each item answered by it, in order (the
    gateway batches the events its relay claimed together; see webhook_gateway.adapters.batched_applies)."""

    async def ApplyPaymentEvent(
        self, request: session_pb2.ApplyPaymentEventRequest, timeout: float | None = None
    ) -> session_pb2.ApplyPaymentEventResponse:
        raise NotImplementedError

    async def ApplyPaymentEvents(
        self, request: session_pb2.ApplyPaymentEventsRequest, timeout: float | None = None
    ) -> session_pb2.ApplyPaymentEventsResponse:
        results = [
            session_pb2.ApplyPaymentEventsResult(applied=await self.ApplyPaymentEvent(item, timeout))
            for item in request.items
        ]
        return session_pb2.ApplyPaymentEventsResponse(results=results)
