"""asyncpg access to the stored first renderings of documents (billing migration 0130, `document_renderings`).

A stored rendering is never replaced: the table is append-only, and the writer inserts ON CONFLICT DO NOTHING.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True, slots=True)
class Rendering:
    format: str  # "pdf" | "html" | "xml"
    content: bytes
    renderer_version: str


async def stored(
    conn: asyncpg.Connection | asyncpg.Pool, document_id: uuid.UUID, status: str, fmt: str
) -> bytes | None:
    """The stored bytes of this document in this state (issued, void) and format, or None before its first
    download in them."""
    content: bytes | None = await conn.fetchval(
        "SELECT content FROM document_renderings WHERE document_id = $1 AND status = $2 AND format = $3",
        document_id,
        status,
        fmt,
    )
    return content


async def store_first(
    conn: asyncpg.Connection, document_id: uuid.UUID, status: str, renderings: Sequence[Rendering]
) -> None:
    """Store the renderings unless this document already has them; the caller reads back what is stored.

    One transaction, rows in the caller's order (the primary format first, then what it embeds): a concurrent
    first download inserting the same document waits on the first row until this one commits and then inserts
    nothing, so the formats of one rendering are stored together, never mixed with another rendering's."""
    async with conn.transaction():
        for rendering in renderings:
            await conn.execute(
                """INSERT INTO document_renderings (document_id, status, format, content, renderer_version)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (document_id, status, format) DO NOTHING""",
                document_id,
                status,
                rendering.format,
                rendering.content,
                rendering.renderer_version,
            )
