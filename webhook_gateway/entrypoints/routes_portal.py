"""Routes of this area are registered here (placeholder until the area lands)."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    return None
