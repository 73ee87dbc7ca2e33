"""Who an audit entry says acted: the free text a caller sends ("merchant_key:<id>",
"dashboard:merchant_key:<id>", "customer"), kept the same way by every service's audit trail."""

from __future__ import annotations

from typing import Final

# Every service's actor column and detail field take at most this many characters.
MAX_ACTOR_CHARS: Final[int] = 200


def clean_actor(raw: str, fallback: str = "") -> str:
    """`raw` cut to MAX_ACTOR_CHARS and stripped of what is not printable (a control character must not reach
    an audit line); `fallback` when nothing is left: what an entry said before callers named themselves, as an
    older gateway still does during a rolling deploy."""
    return "".join(c for c in raw[:MAX_ACTOR_CHARS] if c.isprintable()) or fallback
