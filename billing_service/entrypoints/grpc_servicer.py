"""BillingService over gRPC: decode the request, call the use case, encode the answer.

Domain errors propagate to the shared RPC wrapper (`paygate_runtime.grpc_server.guarded_rpc`), which maps them
to a status and a stable code.
"""

from __future__ import annotations

import grpc

from billing_service.adapters.invoice_repository import ListFilter
from billing_service.domain.invoices import Mode
from billing_service.entrypoints import proto_mapping as pm
from billing_service.service_layer.billing import BillingService, IssueRequest
from paygate.billing.v1 import billing_pb2, billing_pb2_grpc
from paygate_runtime.errors import InvalidArgument

_FORMATS = {billing_pb2.RENDER_FORMAT_HTML: "html", billing_pb2.RENDER_FORMAT_PDF: "pdf"}


class BillingServicer(billing_pb2_grpc.BillingServiceServicer):
    def __init__(self, service: BillingService) -> None:
        self.service = service

    async def IssueInvoice(
        self, request: billing_pb2.IssueInvoiceRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.Invoice:
        if not request.HasField("amount"):
            raise InvalidArgument("missing_amount", "amount is required", field="amount")
        currency = request.amount.currency
        invoice = await self.service.issue_invoice(
            IssueRequest(
                merchant_id=request.merchant_id,
                mode=pm.mode_from_proto(request.mode),
                session_id=request.session_id,
                amount_minor=pm.parse_minor(request.amount.amount_minor, "amount"),
                currency=currency,
                exponent=request.amount.exponent,
                buyer=pm.party_from_proto(request.buyer),
                line_items=pm.line_items_from_proto(list(request.line_items), currency),
                paid_at=pm.from_timestamp(request.paid_at, request.HasField("paid_at")),
            )
        )
        return pm.invoice_to_proto(invoice)

    async def GetInvoice(
        self, request: billing_pb2.GetInvoiceRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.Invoice:
        invoice = await self.service.get_invoice(request.merchant_id, request.invoice_id, request.session_id)
        return pm.invoice_to_proto(invoice)

    async def ListInvoices(
        self, request: billing_pb2.ListInvoicesRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.ListInvoicesResponse:
        filters = ListFilter(
            merchant_id=request.merchant_id,
            mode=pm.mode_from_proto(request.mode) if request.mode else None,
            status=_enum(pm.STATUS_FROM_PROTO, request.status, "status"),
            kind=_enum(pm.KIND_FROM_PROTO, request.kind, "kind"),
            issued_from=pm.from_timestamp(request.issued_from, request.HasField("issued_from")),
            issued_to=pm.from_timestamp(request.issued_to, request.HasField("issued_to")),
        )
        page, has_more = await self.service.list_invoices(
            filters, limit=request.limit, starting_after=request.starting_after
        )
        return billing_pb2.ListInvoicesResponse(
            invoices=[pm.invoice_to_proto(i) for i in page], has_more=has_more
        )

    async def VoidInvoice(
        self, request: billing_pb2.VoidInvoiceRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.VoidInvoiceResponse:
        voided, credit_note = await self.service.void_invoice(
            request.merchant_id, request.invoice_id, request.reason
        )
        return billing_pb2.VoidInvoiceResponse(
            invoice=pm.invoice_to_proto(voided), credit_note=pm.invoice_to_proto(credit_note)
        )

    async def RenderInvoice(
        self, request: billing_pb2.RenderInvoiceRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.RenderedDocument:
        fmt = _FORMATS.get(request.format)
        if fmt is None:
            raise InvalidArgument("invalid_format", "format must be HTML or PDF", field="format")
        rendered = await self.service.render_invoice(request.merchant_id, request.invoice_id, fmt)
        return billing_pb2.RenderedDocument(
            content=rendered.content, content_type=rendered.content_type, filename=rendered.filename
        )

    async def RevenueSummary(
        self, request: billing_pb2.RevenueSummaryRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.RevenueSummaryResponse:
        interval = pm.INTERVAL_FROM_PROTO.get(request.interval)
        if interval is None:
            raise InvalidArgument("invalid_interval", "interval must be day, week or month", field="interval")
        buckets = await self.service.revenue_summary(
            request.merchant_id,
            pm.mode_from_proto(request.mode, default=Mode.LIVE),
            pm.from_timestamp(getattr(request, "from"), request.HasField("from")),
            pm.from_timestamp(request.to, request.HasField("to")),
            interval,
        )
        return billing_pb2.RevenueSummaryResponse(buckets=[pm.bucket_to_proto(b) for b in buckets])

    async def GetBillingProfile(
        self, request: billing_pb2.GetBillingProfileRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.BillingProfile:
        return pm.profile_to_proto(await self.service.get_profile(request.merchant_id))

    async def UpdateBillingProfile(
        self, request: billing_pb2.UpdateBillingProfileRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.BillingProfile:
        saved = await self.service.update_profile(pm.profile_from_proto(request.profile))
        return pm.profile_to_proto(saved)


def _enum(table: dict, value: int, field: str):  # type: ignore[no-untyped-def]
    if value == 0:
        return None
    if value not in table:
        raise InvalidArgument(f"invalid_{field}", f"unknown {field}", field=field)
    return table[value]
