"""Parsing of object ids that arrive as text. A malformed id names nothing, so callers answer NOT_FOUND."""

from __future__ import annotations

import uuid

from paygate_runtime.errors import InvalidArgument


def parse_uuid(value: object) -> uuid.UUID | None:
    """The UUID in `value`, or None when it is empty or not a UUID."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def required_uuid(value: str, field: str) -> uuid.UUID:
    """An id the caller must supply: missing or malformed is INVALID_ARGUMENT naming the field."""
    if not value:
        raise InvalidArgument(f"missing_{field}", f"{field} is required", field=field)
    parsed = parse_uuid(value)
    if parsed is None:
        raise InvalidArgument(f"invalid_{field}", f"{field} must be a UUID", field=field)
    return parsed
