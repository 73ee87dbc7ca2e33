"""JSON error bodies for every refusal: `{"error": {"code", "message"}}` with a stable code.

Nothing the client sends may produce a 500 with a stack trace; gRPC failures from the services are mapped to
the HTTP status a client can act on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import asyncpg
import grpc
from aiohttp import web

from paygate_runtime.errors import DomainError, ErrorKind
from webhook_gateway.entrypoints.rpc_refusals import (
    NOT_FOUND_CODE,
    UNAVAILABLE_CODE,
    UNAVAILABLE_MESSAGE,
    refusal_for,
)

log = logging.getLogger(__name__)

HTTP_STATUS_BY_KIND = {
    ErrorKind.INVALID_ARGUMENT: 400,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.FAILED_PRECONDITION: 409,
    ErrorKind.ALREADY_EXISTS: 409,
    ErrorKind.UNAUTHENTICATED: 401,
    ErrorKind.PERMISSION_DENIED: 403,
    ErrorKind.UNAVAILABLE: 503,
}


class ApiError(web.HTTPException):
    """An HTTP refusal with a JSON body; raise it from any handler."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        self.status_code = status
        super().__init__(
            text=web.json_response({"error": {"code": code, "message": message}}).text,
            content_type="application/json",
            headers=headers,
        )
        self.code = code


def json_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def unavailable() -> ApiError:
    return ApiError(503, UNAVAILABLE_CODE, UNAVAILABLE_MESSAGE)


def raise_for_rpc_error(error: grpc.aio.AioRpcError, *, not_found_code: str = NOT_FOUND_CODE) -> NoReturn:
    """Raise the refusal of the gateway's one gRPC-to-HTTP table (rpc_refusals)."""
    refusal = refusal_for(error, not_found_code=not_found_code)
    raise ApiError(refusal.status, refusal.code, refusal.message)


def raise_for_domain_error(error: DomainError) -> NoReturn:
    raise ApiError(HTTP_STATUS_BY_KIND[error.kind], error.code, error.message)


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError:
        raise
    except web.HTTPNotFound:
        return json_error(404, "not_found", "no such route")
    except web.HTTPMethodNotAllowed as exc:
        response = json_error(405, "method_not_allowed", f"{request.method} is not allowed here")
        response.headers["Allow"] = ",".join(sorted(exc.allowed_methods))
        return response
    except web.HTTPRequestEntityTooLarge:
        return json_error(413, "payload_too_large", "request body is over the 1 MiB limit")
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type != "application/json":
            return json_error(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
        raise
    except grpc.aio.AioRpcError as exc:
        try:
            raise_for_rpc_error(exc)
        except ApiError as api_error:
            return web.Response(
                status=api_error.status_code, text=api_error.text, content_type="application/json"
            )
    except DomainError as exc:
        return json_error(HTTP_STATUS_BY_KIND[exc.kind], exc.code, exc.message)
    except (OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.TooManyConnectionsError):
        # The gateway's own database (or another dependency) is unreachable or too slow: retry later.
        log.warning("dependency unavailable", extra={"path": request.path}, exc_info=True)
        return json_error(503, UNAVAILABLE_CODE, "a dependency is unavailable; retry later")
    except Exception:
        log.exception("unhandled error", extra={"path": request.path})
        return json_error(500, "internal_error", "internal error")


def error_payload(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}
