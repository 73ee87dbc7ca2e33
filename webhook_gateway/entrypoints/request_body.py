"""Parsers of everything a client sends the gateway: JSON bodies (numbers become Decimal, never float; depth
bounded), lifetimes, dates and date ranges, page sizes and cursors.

Each parser either returns a value the rest of the gateway can use as is, or raises ApiError with a 4xx and a
code that names the field. None of them lets an exception of another kind out: whatever a client sends, the
answer is a 4xx, never a 500.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDictProxy

from paygate_runtime import errors
from paygate_runtime.money import format_major, plain_decimal_text
from webhook_gateway.entrypoints.api_inputs import unknown_field_message
from webhook_gateway.entrypoints.http_errors import ApiError
from webhook_gateway.providers.payload import storable_text

# No request body of ours nests deeper than 4 (billing_profile.seller.address.lines); 32 leaves room for
# merchants' own structures while keeping the parser far from Python's recursion limit (and the C stack).
MAX_JSON_DEPTH: Final[int] = 32
# A session's lifetime: the session service holds each provider to its own, narrower window; this bound only
# keeps absurd values (2^64, 10^30) from ever reaching the int64 on the wire.
MAX_EXPIRES_IN_SECONDS: Final[int] = 90 * 24 * 3600
# Revenue without `from` covers this much before `to`.
DEFAULT_REVENUE_SPAN: Final[timedelta] = timedelta(days=30)
MAX_LIMIT: Final[int] = 100
_EARLIEST: Final[datetime] = datetime.min.replace(tzinfo=UTC)
# Strings (with their escapes) and brackets: the only tokens that matter for nesting depth.
_DEPTH_TOKENS: Final[re.Pattern[bytes]] = re.compile(rb'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def nesting_exceeds(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when `raw` opens more than `limit` arrays/objects inside each other (brackets inside strings do
    not count). Stops at the first bracket past the limit, so a hostile body costs little."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for match in _DEPTH_TOKENS.finditer(raw):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


def parse_json_value(raw: bytes) -> Any:
    """Any JSON value, parsed exactly: floats as Decimal, NaN/Infinity refused, depth at most MAX_JSON_DEPTH,
    and no string (key or value) that could not be stored or sent on: see `unstorable_text`."""
    if nesting_exceeds(raw):
        raise ApiError(400, "invalid_json", f"request body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(
            raw,
            parse_float=Decimal,
            parse_constant=_refuse_constant,
            object_pairs_hook=_object_of_unique_keys,
        )
    except _RepeatedKey as repeated:
        raise ApiError(
            400, "invalid_json", f"request body gives the key {repeated.name} more than once"
        ) from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "invalid_json", "request body is not valid JSON") from None
    except InvalidOperation:
        # Decimal cannot hold a number such as 1e99999999999999999999 (its exponent limit is about 10**18),
        # and says so with an ArithmeticError, not the ValueError of other malformed JSON.
        raise ApiError(
            400, "invalid_json", "request body has a number whose exponent is out of range"
        ) from None
    where = unstorable_text(value)
    if where is not None:
        raise ApiError(
            400, "invalid_json", f"{where}: text must not contain NUL characters or unpaired surrogates"
        )
    return value


class _RepeatedKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        # Quoted for the message; a key whose text could not be sent back is not repeated to the client.
        self.name = repr(key[:40]) if not _bad_text(key) and key.isprintable() else "(unprintable)"


def _object_of_unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different. A key given twice is refused, never resolved: Python's json
    keeps the last value, other readers of the same body (a proxy, an audit log) may keep the first."""
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKey(key)
            seen.add(key)
    return value


def _bad_text(text: str) -> bool:
    # PostgreSQL text cannot hold NUL; an unpaired surrogate ("\ud800" in JSON) has no UTF-8 form, so
    # protobuf cannot send it. Both would fail deep inside a service: refuse them at the edge.
    return not storable_text(text)


def unstorable_text(value: Any, path: str = "body") -> str | None:
    """The path (body.metadata.k) of the first string, key or value, that is NUL-bearing or not encodable
    as UTF-8; None when there is none. Depth is bounded by MAX_JSON_DEPTH before this runs."""
    if isinstance(value, str):
        return path if _bad_text(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if _bad_text(key):
                return path
            found = unstorable_text(item, f"{path}.{key[:40]}")
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = unstorable_text(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def parse_json_object(raw: bytes) -> dict[str, Any]:
    value = parse_json_value(raw)
    if not isinstance(value, dict):
        raise ApiError(400, "invalid_json", "request body must be a JSON object")
    return value


async def read_json_object(request: web.Request, *, allow_empty: bool = False) -> dict[str, Any]:
    """The request's JSON object body, its fields checked against the operation's documented ones."""
    raw = await request.read()
    if allow_empty and not raw.strip():
        return {}
    return request_json_object(request, raw)


def request_json_object(request: web.Request, raw: bytes) -> dict[str, Any]:
    """`raw` (the request's body, read already) as a JSON object, refused with 400 `unknown_field` when it
    has a field the request's merchant operation does not document (api_inputs): a misspelled or misplaced
    field is never dropped while the rest of the body is acted on."""
    body = parse_json_object(raw)
    unknown = unknown_field_message(request, body)
    if unknown is not None:
        raise ApiError(400, "unknown_field", unknown)
    return body


def body_fingerprint(raw: bytes) -> str:
    """SHA-256 of the body's canonical JSON (key order and spacing do not matter); of the raw bytes when the
    body is not JSON we accept, so that a replay of the same bad body still matches itself."""
    try:
        value = parse_json_value(raw)
        canonical = json.dumps(value, sort_keys=True, default=str).encode()
    except (ApiError, ValueError, RecursionError):
        canonical = raw
    return hashlib.sha256(canonical).hexdigest()


def format_minor(amount_minor: int, exponent: int) -> str:
    """Major-unit decimal string of an integer minor amount: (9999, 2) -> "99.99", (100, 0) -> "100"."""
    return format_major(amount_minor, exponent)


# --- fields of JSON bodies --------------------------------------------------------------------------------


def amount_text(raw: str | int | Decimal) -> str:
    """The text an amount travels as to the service that prices it: a string as the client wrote it, a JSON
    number (int, or Decimal from parse_float) in plain notation. The services read text strictly, without
    exponents, so `1e2` must arrive as "100" to mean what the client sent."""
    return raw if isinstance(raw, str) else plain_decimal_text(Decimal(raw))


def parse_expires_in(raw: object, *, field: str = "expires_in") -> int:
    """Whole seconds; absent or null is 0 on the wire, which the session service reads as the default lifetime.
    An integral JSON number written with a fraction or exponent (3600.0, 3.6e3) counts as whole. Non-numbers are
    `invalid_<field>`; whole numbers outside 1..MAX_EXPIRES_IN_SECONDS are `<field>_out_of_range`, as the session
    service names its own (narrower, per provider) bounds. A given 0 is refused here: on the wire it would mean
    "the default", which a client asking for no lifetime at all did not ask for."""
    if raw is None:
        return 0
    if isinstance(raw, bool) or not isinstance(raw, int | Decimal):
        raise ApiError(400, f"invalid_{field}", f"{field} must be a whole number of seconds")
    if isinstance(raw, Decimal):
        if not raw.is_finite() or raw != raw.to_integral_value():
            raise ApiError(400, f"invalid_{field}", f"{field} must be a whole number of seconds")
        # Compare before converting: int(Decimal("1e999999999")) would build a gigantic integer.
        if not 1 <= raw <= MAX_EXPIRES_IN_SECONDS:
            raise _expires_out_of_range(field)
        return int(raw)
    if not 1 <= raw <= MAX_EXPIRES_IN_SECONDS:
        raise _expires_out_of_range(field)
    return raw


def _expires_out_of_range(field: str) -> ApiError:
    return ApiError(
        400,
        f"{field}_out_of_range",
        f"{field} must be between 1 and {MAX_EXPIRES_IN_SECONDS} seconds (leave it out for 24 h)",
    )


# --- query parameters -------------------------------------------------------------------------------------


def page_limit(query: Mapping[str, str], default: int = 20) -> int:
    """The `limit` query parameter of every list route: a whole number from 1 to 100."""
    raw = query.get("limit")
    if raw is None:
        return default
    # isdecimal, not isdigit: "²" is a digit to Python but int() refuses it.
    if not (raw.isascii() and raw.isdecimal()) or len(raw) > 3 or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(400, "invalid_limit", f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def page_cursor(query: Mapping[str, str], field: str = "starting_after") -> str:
    """A list cursor: the id (a UUID) of the last item of the previous page, canonical; "" when absent."""
    raw = query.get(field)
    if not raw:
        return ""
    canonical = canonical_uuid(raw)
    if canonical is None:
        raise cursor_refused(field)
    return canonical


def cursor_refused(field: str = "starting_after") -> ApiError:
    """The one refusal of a list cursor (every list route): malformed, or naming no item of that list for the
    caller's merchant and mode. Another merchant's item and the other mode's item get exactly this answer,
    so a cursor never tells whether an id exists elsewhere."""
    refused = errors.cursor_refused(field)  # the services' own refusal, word for word
    return ApiError(400, refused.code, refused.message)


def canonical_uuid(raw: str) -> str | None:
    """The canonical form of a UUID string, or None. Only the 36-character hyphenated form (any case) counts:
    uuid.UUID alone would also take braces, "urn:uuid:" and bare hex."""
    if len(raw) != 36:
        return None
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        return None


def parse_instant(value: str, field: str) -> datetime:
    """ISO 8601 date (midnight UTC) or date-time, in UTC; a time without an offset is read as UTC.

    A moment whose UTC time falls outside years 1..9999 (0001-01-01T00:00:00+01:00) is `invalid_<field>`,
    like any other unreadable date."""
    moment = None
    # An unencoded "+02:00" offset arrives as " 02:00" because query strings decode "+" as a space.
    for candidate in dict.fromkeys((value, value.replace(" ", "+"))):
        try:
            moment = datetime.fromisoformat(candidate)
            break
        except ValueError:
            continue
    if moment is None:
        raise ApiError(
            400, f"invalid_{field}", f"{field} must be an ISO 8601 date or date-time, e.g. 2025-01-31"
        )
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ApiError(
            400, f"invalid_{field}", f"{field} is outside the years 1 to 9999 once converted to UTC"
        ) from None


def optional_date_range(query: Mapping[str, str]) -> tuple[datetime | None, datetime | None]:
    """`from` and `to` of a list filter, each optional; when both are given, `to` must be after `from`."""
    start = parse_instant(query["from"], "from") if query.get("from") else None
    end = parse_instant(query["to"], "to") if query.get("to") else None
    if start is not None and end is not None and end <= start:
        raise ApiError(400, "invalid_date_range", "to must be after from")
    return start, end


def reporting_range(
    query: Mapping[str, str], now: datetime, span: timedelta = DEFAULT_REVENUE_SPAN
) -> tuple[datetime, datetime]:
    """`from`/`to` of a report (revenue): `to` defaults to now and `from` to `span` before `to` (never before
    year 1). The width limit is the billing service's to enforce."""
    start, end = optional_date_range(query)
    if end is None:
        end = now.astimezone(UTC)
        if start is not None and end <= start:
            raise ApiError(400, "invalid_date_range", "from must be in the past when to is left out")
    if start is None:
        start = end - span if end - _EARLIEST >= span else _EARLIEST
    return start, end


async def read_form(request: web.Request) -> MultiDictProxy[str | bytes | bytearray | web.FileField] | None:
    """A page's POSTed form, or None when its body cannot be read: bad encoding, or a broken multipart part,
    for which aiohttp raises its own HttpProcessingError rather than a ValueError. Every form route answers
    None with its own 400 `invalid_form`, in its page's words."""
    try:
        return await request.post()
    except (ValueError, AssertionError, HttpProcessingError):
        return None
