"""Test and live never mix: every session carries its mode, and events that say otherwise are quarantined."""

from __future__ import annotations

from enum import StrEnum

from paygate_runtime.errors import InvalidArgument


class Mode(StrEnum):
    TEST = "test"
    LIVE = "live"


def parse_mode(raw: object, *, field: str = "mode") -> Mode:
    if isinstance(raw, str):
        try:
            return Mode(raw)
        except ValueError:
            pass
    raise InvalidArgument(f"invalid_{field}", f"{field} must be test or live", field=field)
