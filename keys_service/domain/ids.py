"""Parsing of object ids that arrive as text. A malformed id names nothing, so callers answer NOT_FOUND."""

from __future__ import annotations

import uuid


def parse_uuid(value: object) -> uuid.UUID | None:
    """The UUID in `value`, or None when it is empty or not a UUID."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
