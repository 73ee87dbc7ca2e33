"""Optional parts of `paygate up` register here: the SMTP sink and the local chain node.

A startup hook runs after the database and before the services (it may add environment for them in
`stack.plan.extras["env"]`); a post-start hook runs once the services are healthy and returns facts for
stack.json.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

STARTUP_HOOKS: list[Callable[[Any], Awaitable[None]]] = []
POST_START_HOOKS: list[Callable[[Any], Awaitable[dict[str, Any] | None]]] = []
