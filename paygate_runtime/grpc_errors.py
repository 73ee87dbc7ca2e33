"""Mapping between domain errors and gRPC status, in both directions.

The stable error code travels in the trailing metadata key `paygate-error-code`, so a caller (the gateway,
another service) can switch on it without parsing messages.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import grpc

from paygate.common.v1 import common_pb2
from paygate_runtime.errors import (
    AlreadyExists,
    DomainError,
    ErrorKind,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)

log = logging.getLogger(__name__)


ERROR_CODE_KEY = "paygate-error-code"
ERROR_FIELD_KEY = "paygate-error-field"

STATUS_BY_KIND: dict[ErrorKind, grpc.StatusCode] = {
    ErrorKind.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorKind.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorKind.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorKind.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
}

_ERROR_BY_STATUS: dict[grpc.StatusCode, type[DomainError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
}


def trailing_metadata_for(error: DomainError) -> tuple[tuple[str, str], ...]:
    metadata = [(ERROR_CODE_KEY, error.code)]
    if error.field:
        metadata.append((ERROR_FIELD_KEY, error.field))
    return tuple(metadata)


def _trailing_value(error: grpc.RpcError, wanted: str) -> str | None:
    """A text value of the failed call's trailing metadata. The grpc stubs type a sync RpcError's metadata
    as objects with .key/.value and aio's as (key, value) pairs; at run time both are pairs."""
    trailing = getattr(error, "trailing_metadata", None)
    pairs: Iterable[tuple[str, str | bytes]] = (trailing() if trailing is not None else None) or ()
    for key, value in pairs:
        if key == wanted:
            return value if isinstance(value, str) else None
    return None


def error_code(error: grpc.RpcError) -> str | None:
    """The stable paygate code carried by a failed call, if the callee set one."""
    return _trailing_value(error, ERROR_CODE_KEY)


# A call that reached no service: nothing answers at the address (a stopped `paygate up` whose stack.json was
# left behind, a wrong *_ADDR). The commands say so in one line instead of gRPC's own text.
UNREACHABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


def unreachable_text(error: grpc.RpcError, service: str, address: str) -> str | None:
    """The one line a `paygate` command prints when its call reached no `service` at `address`; None for a
    call the service answered (its own refusal is the command's to word)."""
    if error.code() not in UNREACHABLE_CODES:
        return None
    reason = error_code(error) or error.code().name.lower()
    return f"cannot reach the {service} service at {address} ({reason}); is `paygate up` running?"


def to_domain_error(error: grpc.aio.AioRpcError) -> DomainError | None:
    """Rebuild the callee's domain error, so adapters can re-raise it as their own; None for transport faults."""
    cls = _ERROR_BY_STATUS.get(error.code())
    if cls is None:
        return None
    field = _trailing_value(error, ERROR_FIELD_KEY)
    return cls(error_code(error) or error.code().name.lower(), error.details() or "", field=field)


def is_transient(error: grpc.aio.AioRpcError) -> bool:
    """Failures worth retrying later: the callee is down, overloaded or slow."""
    return error.code() in {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
    }


def item_error(error: BaseException, what: str) -> common_pb2.ItemError:
    """What the single call would have answered for a failed item of a batch: its status and stable code.
    An unexpected exception is INTERNAL without its text (as guarded_rpc for a single call) and is logged
    here instead, as `what` failed."""
    if isinstance(error, DomainError):
        return common_pb2.ItemError(
            status=STATUS_BY_KIND[error.kind].value[0], code=error.code, message=error.message
        )
    log.error("%s failed", what, extra={"error": f"{type(error).__name__}: {error}"[:300]})
    return common_pb2.ItemError(
        status=grpc.StatusCode.INTERNAL.value[0], code="internal", message="internal error"
    )


_STATUS_BY_VALUE = {status.value[0]: status for status in grpc.StatusCode}


def item_rpc_error(error: common_pb2.ItemError) -> grpc.aio.AioRpcError:
    """A failed item of a batched call as the single call would have raised it, so that callers classify
    both alike (is_transient, error_code, to_domain_error). An unknown status value reads as UNKNOWN."""
    return grpc.aio.AioRpcError(
        _STATUS_BY_VALUE.get(error.status, grpc.StatusCode.UNKNOWN),
        grpc.aio.Metadata(),
        grpc.aio.Metadata((ERROR_CODE_KEY, error.code)) if error.code else grpc.aio.Metadata(),
        details=error.message,
    )
