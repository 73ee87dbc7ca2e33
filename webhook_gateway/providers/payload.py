"""Reading verified JSON bodies defensively: a verified event is stored even when its content is odd."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, NoReturn

import msgspec

from webhook_gateway.providers.errors import WebhookRejected

MAX_EVENT_ID_LENGTH: Final[int] = 255
_CURRENCY_RE: Final[re.Pattern[str]] = re.compile(r"[A-Za-z]{3}")
# NUMERIC(78,0) holds 78 digits; a longer amount cannot be stored, so it is malformed.
_DIGITS_RE: Final[re.Pattern[str]] = re.compile(r"[0-9]{1,78}")


class MalformedPayload(Exception):
    """A verified body lacks or garbles a field its event type needs; the event is stored as ignored."""


def _reject_constant(name: str) -> NoReturn:
    # Python's json accepts NaN and Infinity, which are not JSON and never an amount.
    raise ValueError(f"{name} is not valid JSON")


# Every webhook body is parsed on the reply path. msgspec reads a 3 KB Stripe event in about 6 µs against the
# standard library's 15 (issue 16), with the same values: floats reach float_hook as their text, so they become
# Decimal exactly as parse_float=Decimal makes them, and integers of any size stay int.
_FAST_DECODER: Final = msgspec.json.Decoder(float_hook=Decimal)


def parse_json_object(text: str) -> dict[str, Any]:
    """Parse a verified body; floats become Decimal. Raises WebhookRejected(invalid_json|not_an_object)."""
    try:
        value = _FAST_DECODER.decode(text)
    except (msgspec.DecodeError, RecursionError, InvalidOperation):
        # msgspec refuses a little that json accepts (an unpaired surrogate escape such as "\ud800", which
        # storable_text judges later), and words its errors differently. On any refusal the standard parser
        # decides, so what is accepted, and every error, is exactly what it was with json alone.
        value = _standard_parse(text)
    if not isinstance(value, dict):
        raise WebhookRejected("not_an_object", f"body must be a JSON object, got {type(value).__name__}")
    return value


def _standard_parse(text: str) -> Any:
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise WebhookRejected("invalid_json", f"body is not valid JSON: {exc}") from None
    except InvalidOperation:
        # Decimal cannot hold a number such as 1e99999999999999999999 (its exponent limit is about 10**18),
        # and says so with an ArithmeticError, not the ValueError of other malformed JSON.
        raise WebhookRejected(
            "invalid_json", "body is not valid JSON: a number's exponent is out of range"
        ) from None


def storable_text(value: str) -> bool:
    """False for text PostgreSQL cannot store (NUL) or UTF-8 cannot encode (an unpaired surrogate, which
    JSON can spell as \\ud800). A verified body may carry either; stored as is, it would fail the inbox's
    insert, and with it every event committed in the same group."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def checked_event_id(value: object, where: str) -> str:
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > MAX_EVENT_ID_LENGTH
        or not storable_text(value)
    ):
        raise WebhookRejected(
            "missing_event_id",
            f"{where} must be a non-empty string of at most {MAX_EVENT_ID_LENGTH} characters",
        )
    return value


def event_type_of(payload: dict[str, Any]) -> str:
    value = payload.get("type")
    return value if isinstance(value, str) and storable_text(value) else ""


def canonical_session_id(value: object) -> str | None:
    """Our session ids are UUIDs; anything else (another integration's reference) is not ours."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        return None


def first_session_id(*candidates: object) -> str | None:
    for candidate in candidates:
        session_id = canonical_session_id(candidate)
        if session_id is not None:
            return session_id
    return None


def as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def required_dict(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedPayload(f"{what} must be an object")
    return value


def optional_str(value: object, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not storable_text(value):
        raise MalformedPayload(f"{what} must be a string (without NUL characters)")
    return value or None


def currency_code(value: object, what: str = "currency") -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _CURRENCY_RE.fullmatch(value):
        raise MalformedPayload(f"{what} must be a three-letter code")
    return value.upper()


def non_negative_int(value: object, what: str, *, allow_digit_string: bool = False) -> int | None:
    """An integer amount: JSON integers only (a JSON float was parsed to Decimal and is refused)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise MalformedPayload(f"{what} must not be negative")
        if value >= 10**78:
            raise MalformedPayload(f"{what} is too large")
        return value
    if allow_digit_string and isinstance(value, str) and _DIGITS_RE.fullmatch(value):
        return int(value)
    raise MalformedPayload(f"{what} must be a non-negative integer")


def unix_time(value: object) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def optional_bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None
