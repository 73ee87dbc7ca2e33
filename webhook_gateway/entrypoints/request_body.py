"""Reading JSON request bodies exactly: numbers become Decimal, never float."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from aiohttp import web

from webhook_gateway.entrypoints.http_errors import ApiError


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def parse_json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw, parse_float=Decimal, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise ApiError(400, "invalid_json", "request body must be a JSON object")
    return value


async def read_json_object(request: web.Request, *, allow_empty: bool = False) -> dict[str, Any]:
    raw = await request.read()
    if allow_empty and not raw.strip():
        return {}
    return parse_json_object(raw)


def format_minor(amount_minor: int, exponent: int) -> str:
    """Major-unit decimal string of an integer minor amount: (9999, 2) -> "99.99", (100, 0) -> "100"."""
    sign = "-" if amount_minor < 0 else ""
    digits = str(abs(amount_minor))
    if exponent == 0:
        return sign + digits
    digits = digits.rjust(exponent + 1, "0")
    return f"{sign}{digits[:-exponent]}.{digits[-exponent:]}"


def page_limit(query: Mapping[str, str], default: int = 20) -> int:
    """The `limit` query parameter of every list route: a whole number from 1 to 100."""
    raw = query.get("limit")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise ApiError(400, "invalid_limit", "limit must be an integer from 1 to 100")
    return int(raw)
