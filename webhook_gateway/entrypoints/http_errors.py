"""JSON error bodies for every refusal: `{"error": {"code", "message"}}` with a stable code.

Nothing the client sends may produce a 500 with a stack trace; gRPC failures from the services are mapped to
the HTTP status a client can act on.

Over-long request URLs: aiohttp stops reading a request line at its `max_line_size` and answers a plain-text
400 itself, before any middleware runs, logging the parser error with a traceback whose message repeats the
request line (query string, access token and all). The status and body of that answer have no hook: the
parser error becomes a fixed 400 inside aiohttp's protocol class. So the app (app.py) lets aiohttp read
request lines up to MAX_REQUEST_LINE_BYTES, and `error_middleware` answers a URL longer than MAX_URL_CHARS
(the old 8 KB) with 414 `uri_too_long` in the API's error shape; past MAX_REQUEST_LINE_BYTES aiohttp's own 400
stands, and PROTOCOL_LOG (aiohttp's server logger for the app) logs it as one INFO line naming the error, with
no traceback and nothing of the request.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import asyncpg
import grpc
from aiohttp import web
from aiohttp.http import HttpProcessingError

from paygate_runtime.errors import DomainError, ErrorKind
from webhook_gateway.entrypoints.api_inputs import AUTHENTICATE_FIRST, query_refusal
from webhook_gateway.entrypoints.rpc_refusals import (
    NOT_FOUND_CODE,
    UNAVAILABLE_CODE,
    UNAVAILABLE_MESSAGE,
    refusal_for,
)

log = logging.getLogger(__name__)

# The longest request URL (path and query, as sent) a route is asked to answer; a longer one is 414.
MAX_URL_CHARS = 8 * 1024
# What aiohttp reads of a request line at all (its `max_line_size`, 8190 by default): past it, its own 400.
MAX_REQUEST_LINE_BYTES = 64 * 1024
URI_TOO_LONG_MESSAGE = f"the request URL is over the {MAX_URL_CHARS}-character limit"


class _ProtocolErrorFilter(logging.Filter):
    """A request aiohttp could not parse (a request line or header over its limit, a malformed line) is the
    client's error: one INFO line naming it instead of aiohttp's traceback, whose message repeats what the
    client sent (a query string carries access tokens). Every other record passes unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.msg = "refused a request that could not be parsed: %s (HTTP %s)"
            record.args = (type(error).__name__, error.code)
            record.exc_info = None
            record.exc_text = None
            record.levelno = min(record.levelno, logging.INFO)
            record.levelname = logging.getLevelName(record.levelno)
        return True


# aiohttp's server logger for the gateway's app (app.py passes it as the `logger` handler argument).
PROTOCOL_LOG = logging.getLogger("webhook_gateway.http_server")
PROTOCOL_LOG.addFilter(_ProtocolErrorFilter())

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


# HTML 404 pages for people, by path prefix (the dashboard's "/dashboard/"), set by the route module that owns
# the prefix; every other unknown address gets the API's JSON 404. Looked up here, once a route is missing,
# rather than in a middleware of its own, which every request (each webhook reply among them) would pass.
NOT_FOUND_PAGES: web.AppKey[dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]]] = web.AppKey(
    "not_found_pages"
)


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if len(request.raw_path) > MAX_URL_CHARS:
        return json_error(414, "uri_too_long", URI_TOO_LONG_MESSAGE)
    try:
        if request.query_string:
            # Only a request with a query pays for this (a provider webhook has none): a merchant operation's
            # parameter its OpenAPI entry does not list is refused, never ignored (api_inputs), once the
            # caller has shown a valid key.
            refusal = query_refusal(request)
            if refusal is not None:
                authenticate = request.app.get(AUTHENTICATE_FIRST)
                if authenticate is not None:
                    await authenticate(request)
                return json_error(400, *refusal)
        return await handler(request)
    except ApiError:
        raise
    except web.HTTPNotFound:
        pages = request.app.get(NOT_FOUND_PAGES)
        if pages:
            for prefix, page in pages.items():
                if request.path.startswith(prefix):
                    return await page(request)
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
