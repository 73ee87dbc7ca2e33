"""Structured JSON logs with the request id of the current call.

One JSON object per line keeps logs machine-readable in any collector. The request id travels in a context
variable, set by the gRPC handler wrapper and the HTTP middleware, so every line of one request can be found
together. With tracing on (paygate_runtime.tracing), a line written inside a span also carries its `trace_id`
and `span_id`, so the lines of one payment can be found across services.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any

from paygate_runtime import tracing

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        if tracing.ENABLED and (ids := tracing.log_ids()) is not None:
            entry["trace_id"], entry["span_id"] = ids
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log would print query strings, and access tokens travel in them.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
