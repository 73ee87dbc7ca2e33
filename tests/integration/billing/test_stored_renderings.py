"""A document once sent never changes on a later download: the first rendering of each invoice and credit note in
each format is stored (billing migration 0130) and every later download serves exactly those bytes, whatever
the rendering code or the profile data it reads say by then. Real Postgres, real gRPC, the service in-process
(so a test can change what the renderer would produce, as a release would)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import itertools
import uuid
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest
from billing_helpers import LIVE, acme_profile, issue, runtime_connection
from pypdf import PdfReader

from billing_service.adapters import render_html, render_pdf
from billing_service.domain.receipt import ReceiptView
from paygate.billing.v1 import billing_pb2
from paygate.common.v1 import common_pb2
from support.stack import ServiceStack

PDF, HTML = billing_pb2.RENDER_FORMAT_PDF, billing_pb2.RENDER_FORMAT_HTML
REFUSED = (asyncpg.InsufficientPrivilegeError, asyncpg.IntegrityConstraintViolationError)


def _profile(merchant: str, support_email: str) -> billing_pb2.BillingProfile:
    return acme_profile(merchant, "KEEP", support_email=support_email)


async def _set_support_email(stack: ServiceStack, merchant: str, email: str) -> None:
    await stack.billing.UpdateBillingProfile(
        billing_pb2.UpdateBillingProfileRequest(profile=_profile(merchant, email), mode=LIVE)
    )


async def _live_invoice(stack: ServiceStack) -> tuple[str, billing_pb2.Invoice]:
    """A live invoice that carries Factur-X (complete seller, buyer with name and country)."""
    merchant = str(uuid.uuid4())
    await _set_support_email(stack, merchant, "first@acme.example")
    buyer = billing_pb2.Party(name="Kunde SARL", address=common_pb2.Address(country="FR"))
    return merchant, await issue(stack.billing, merchant, mode=LIVE, minor=1190, buyer=buyer)


async def _download(
    stack: ServiceStack, merchant: str, document_id: str, fmt: billing_pb2.RenderFormat
) -> bytes:
    rendered = await stack.billing.RenderInvoice(
        billing_pb2.RenderInvoiceRequest(merchant_id=merchant, invoice_id=document_id, format=fmt, mode=LIVE),
        timeout=30,
    )
    return rendered.content


def _reword(monkeypatch: pytest.MonkeyPatch, title: Callable[[ReceiptView], str]) -> None:
    """What a release changing the receipt's wording does: both renderers now print another title."""
    for module in (render_pdf, render_html):
        original = module.build_receipt_view

        def reworded(
            *args: object, _original: Callable[..., ReceiptView] = original, **kw: object
        ) -> ReceiptView:
            view = _original(*args, **kw)
            return dataclasses.replace(view, title=title(view))

        monkeypatch.setattr(module, "build_receipt_view", reworded)


def _embedded_xml(pdf: bytes) -> bytes:
    return PdfReader(io.BytesIO(pdf)).attachments["factur-x.xml"][0]


@pytest.fixture
async def runtime_conn(stack: ServiceStack) -> AsyncIterator[asyncpg.Connection]:
    async with runtime_connection(stack) as conn:
        yield conn


async def test_a_later_download_serves_the_bytes_of_the_first(
    stack: ServiceStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    merchant, invoice = await _live_invoice(stack)
    first = {fmt: await _download(stack, merchant, invoice.id, fmt) for fmt in (PDF, HTML)}
    assert b"first@acme.example" in first[HTML]

    # A later release rewords the receipt, and the merchant changes the support contact the renderer reads
    # when it renders (the seller is snapshotted on the invoice at issue; the support email is not).
    _reword(monkeypatch, lambda view: "TAX INVOICE")
    await _set_support_email(stack, merchant, "changed@acme.example")

    for fmt in (PDF, HTML):
        assert await _download(stack, merchant, invoice.id, fmt) == first[fmt], fmt


async def test_a_credit_note_and_its_voided_invoice_keep_their_first_bytes(
    stack: ServiceStack, monkeypatch: pytest.MonkeyPatch, runtime_conn: asyncpg.Connection
) -> None:
    merchant, invoice = await _live_invoice(stack)
    sent_invoice = {fmt: await _download(stack, merchant, invoice.id, fmt) for fmt in (PDF, HTML)}
    reply = await stack.billing.VoidInvoice(
        billing_pb2.VoidInvoiceRequest(
            merchant_id=merchant, invoice_id=invoice.id, mode=LIVE, reason="mistake"
        )
    )
    note = reply.credit_note.id
    sent_note = {fmt: await _download(stack, merchant, note, fmt) for fmt in (PDF, HTML)}

    # A download after the void is a copy stamped VOID, never the copy that reads as a valid invoice; it is
    # stored in its turn. The copy sent before the void stays stored as it was.
    void_copy = {fmt: await _download(stack, merchant, invoice.id, fmt) for fmt in (PDF, HTML)}
    assert void_copy[PDF] != sent_invoice[PDF]
    assert b">VOID<" in void_copy[HTML] and b">VOID<" not in sent_invoice[HTML]

    _reword(monkeypatch, lambda view: f"{view.title} (REWORDED)")
    for fmt in (PDF, HTML):
        assert await _download(stack, merchant, note, fmt) == sent_note[fmt], fmt
        assert await _download(stack, merchant, invoice.id, fmt) == void_copy[fmt], fmt
    stored = await runtime_conn.fetch(
        "SELECT status, format, content FROM document_renderings WHERE document_id = $1 AND format <> 'xml'",
        uuid.UUID(invoice.id),
    )
    assert {(row["status"], row["format"]): row["content"] for row in stored} == {
        ("issued", "pdf"): sent_invoice[PDF],
        ("issued", "html"): sent_invoice[HTML],
        ("void", "pdf"): void_copy[PDF],
        ("void", "html"): void_copy[HTML],
    }


async def test_concurrent_first_downloads_return_identical_bytes(
    stack: ServiceStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    merchant, invoice = await _live_invoice(stack)
    # Every rendering now differs from every other, so only the stored first one can make them agree.
    counter = itertools.count()
    _reword(monkeypatch, lambda view: f"{view.title} #{next(counter)}")
    for fmt in (PDF, HTML):
        downloads = await asyncio.gather(*(_download(stack, merchant, invoice.id, fmt) for _ in range(8)))
        assert len(set(downloads)) == 1, (fmt, len(set(downloads)))
        assert await _download(stack, merchant, invoice.id, fmt) == downloads[0]


async def test_the_stored_rows_the_embedded_xml_and_the_hot_path(
    stack: ServiceStack, runtime_conn: asyncpg.Connection
) -> None:
    merchant, invoice = await _live_invoice(stack)
    document_id = uuid.UUID(invoice.id)
    query = """SELECT format, content, sha256, renderer_version, rendered_at FROM document_renderings
                WHERE document_id = $1 ORDER BY format"""
    # Issuing renders nothing (it is on the payment hot path): the first download does.
    assert await runtime_conn.fetch(query, document_id) == []

    pdf = await _download(stack, merchant, invoice.id, PDF)
    rows = {row["format"]: row for row in await runtime_conn.fetch(query, document_id)}
    # The PDF embeds the Factur-X XML: both are stored from that one rendering, so they are the same bytes.
    assert sorted(rows) == ["pdf", "xml"]
    assert rows["pdf"]["content"] == pdf
    assert rows["xml"]["content"] == _embedded_xml(pdf)
    html = await _download(stack, merchant, invoice.id, HTML)
    rows = {row["format"]: row for row in await runtime_conn.fetch(query, document_id)}
    assert sorted(rows) == ["html", "pdf", "xml"] and rows["html"]["content"] == html
    for row in rows.values():
        assert row["sha256"] == hashlib.sha256(row["content"]).digest()
        assert row["renderer_version"] and row["rendered_at"] is not None


async def test_stored_renderings_are_append_only(
    stack: ServiceStack, runtime_conn: asyncpg.Connection
) -> None:
    merchant, invoice = await _live_invoice(stack)
    await _download(stack, merchant, invoice.id, HTML)
    document_id = uuid.UUID(invoice.id)
    owner = await asyncpg.connect(stack.db.owner_dsn("billing"), server_settings={"search_path": "billing"})
    try:
        for conn, refused in ((runtime_conn, REFUSED), (owner, asyncpg.IntegrityConstraintViolationError)):
            for statement in (
                "UPDATE document_renderings SET content = '\\x00' WHERE document_id = $1",
                "UPDATE document_renderings SET renderer_version = 'forged' WHERE document_id = $1",
                "DELETE FROM document_renderings WHERE document_id = $1",
            ):
                with pytest.raises(refused):
                    await conn.execute(statement, document_id)
            with pytest.raises(refused):
                await conn.execute("TRUNCATE document_renderings")
    finally:
        await owner.close()
    # The sha256 column is the content's, whatever an insert claims.
    with pytest.raises(asyncpg.PostgresError):
        await runtime_conn.execute(
            """INSERT INTO document_renderings (document_id, status, format, content, sha256, renderer_version)
               VALUES ($1, 'issued', 'pdf', '\\x01', '\\x02', 'v')""",
            uuid.uuid4(),
        )
    assert await _download(stack, merchant, invoice.id, HTML) == await runtime_conn.fetchval(
        "SELECT content FROM document_renderings WHERE document_id = $1 AND format = 'html'", document_id
    )
