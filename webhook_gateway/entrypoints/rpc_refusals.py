"""The gateway's one table from a failed gRPC call to the HTTP refusal a client can act on.

Every route (JSON API, portal, checkout page, dashboard) reads a failed call through `refusal_for`, so that
one gRPC status and paygate code always gives one HTTP status and one stable code. The callee's stable code
travels in the trailing metadata (paygate_runtime.grpc_errors); a status without a row here (down,
overloaded, slow, or failing inside) is the contract's only 5xx: 503 `unavailable` (§6a).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import grpc

from paygate_runtime.grpc_errors import error_code

log = logging.getLogger(__name__)

UNAVAILABLE_CODE = "unavailable"
UNAVAILABLE_MESSAGE = "a backend service is unavailable; retry later"
NOT_FOUND_CODE = "not_found"

_S = grpc.StatusCode

# (gRPC status, paygate code or None for "any code") -> (HTTP status, stable code or None for "the callee's
# code, else the status name"). A row with a paygate code wins over the status's own row.
RPC_REFUSALS: Mapping[tuple[grpc.StatusCode, str | None], tuple[int, str | None]] = MappingProxyType(
    {
        (_S.INVALID_ARGUMENT, None): (400, None),
        (_S.OUT_OF_RANGE, None): (400, None),
        # Another merchant's object and a missing one look the same from outside: one code for both.
        (_S.NOT_FOUND, None): (404, NOT_FOUND_CODE),
        (_S.FAILED_PRECONDITION, None): (409, None),
        # The keys service counts the portal's support messages; over the limit is "slow down", not a state.
        (_S.FAILED_PRECONDITION, "rate_limited"): (429, "rate_limited"),
        (_S.ALREADY_EXISTS, None): (409, None),
        (_S.UNAUTHENTICATED, None): (401, None),
        (_S.PERMISSION_DENIED, None): (403, None),
    }
)


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str

    @property
    def unavailable(self) -> bool:
        """The dependency is down or failing: retry later; nothing the client sent is wrong."""
        return self.status == 503


def refusal_for(error: grpc.aio.AioRpcError, *, not_found_code: str = NOT_FOUND_CODE) -> Refusal:
    status = error.code()
    callee_code = error_code(error)
    row = RPC_REFUSALS.get((status, callee_code)) if callee_code else None
    row = row or RPC_REFUSALS.get((status, None))
    if row is None:
        # Also INTERNAL: a service answers it when its own database is unreachable, as for a bug. The test
        # suite holds every request to a 4xx, so a bug still shows there as this 503.
        log.warning("upstream call failed", extra={"grpc_code": status.name})
        return Refusal(503, UNAVAILABLE_CODE, UNAVAILABLE_MESSAGE)
    http_status, code = row
    if http_status == 404:
        code = not_found_code
    code = code or callee_code or status.name.lower()
    return Refusal(http_status, code, error.details() or code)
