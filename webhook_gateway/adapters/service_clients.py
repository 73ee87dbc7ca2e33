"""gRPC stubs of the three services the gateway calls, over channels with deadlines."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from paygate.billing.v1 import billing_pb2_grpc
from paygate.keys.v1 import keys_pb2_grpc
from paygate.session.v1 import merchant_events_pb2_grpc, session_pb2_grpc
from paygate_runtime.grpc_client import DeadlineChannel, open_channel
from paygate_runtime.settings import CommonSettings


@dataclass
class ServiceClients:
    session: session_pb2_grpc.SessionServiceStub
    billing: billing_pb2_grpc.BillingServiceStub
    keys: keys_pb2_grpc.KeysServiceStub
    # Merchant events (outbound webhooks) are one more service on the session service's process and channel.
    merchant_events: merchant_events_pb2_grpc.MerchantEventsServiceStub
    channels: dict[str, DeadlineChannel]

    @classmethod
    def connect(cls, common: CommonSettings) -> ServiceClients:
        channels = {
            "session": open_channel(
                common.session_addr, tls=common.tls, default_deadline=common.rpc_deadline_s
            ),
            "billing": open_channel(
                common.billing_addr, tls=common.tls, default_deadline=common.rpc_deadline_s
            ),
            "keys": open_channel(common.keys_addr, tls=common.tls, default_deadline=common.rpc_deadline_s),
        }
        return cls(
            session=session_pb2_grpc.SessionServiceStub(channels["session"]),
            billing=billing_pb2_grpc.BillingServiceStub(channels["billing"]),
            keys=keys_pb2_grpc.KeysServiceStub(channels["keys"]),
            merchant_events=merchant_events_pb2_grpc.MerchantEventsServiceStub(channels["session"]),
            channels=channels,
        )

    async def unhealthy(self, timeout: float = 1.0) -> list[str]:
        """Names of downstream services that do not answer SERVING."""
        bad = []
        for name, channel in self.channels.items():
            try:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=timeout
                )
                if reply.status != health_pb2.HealthCheckResponse.SERVING:
                    bad.append(name)
            except grpc.aio.AioRpcError:
                bad.append(name)
        return bad

    async def close(self) -> None:
        for channel in self.channels.values():
            with contextlib.suppress(Exception):
                await channel.close(grace=1.0)
