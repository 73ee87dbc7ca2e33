"""gRPC clients of the billing and keys services, as the fulfilment dispatcher and the mailer need them.

Every call carries a deadline, and every issuing call is idempotent on the session id downstream: that is
what makes a retry after a crash (or after a lease ran out while the first call was still running) safe.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from paygate.billing.v1 import billing_pb2, billing_pb2_grpc
from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2, keys_pb2_grpc
from paygate_runtime.grpc_client import open_channel
from paygate_runtime.tls import TlsFiles
from session_service.domain.customer import customer_from_json

MODES = {"test": common_pb2.MODE_TEST, "live": common_pb2.MODE_LIVE}


@dataclass(frozen=True, slots=True)
class IssuedInvoice:
    id: str
    number: str
    # The invoice as billing returned it: the `invoice.issued` merchant event's object is rendered from it.
    message: billing_pb2.Invoice | None = None


class Downstream:
    """Billing and keys stubs over channels with a default deadline."""

    def __init__(self, billing_addr: str, keys_addr: str, *, tls: TlsFiles | None, deadline_s: float) -> None:
        self.deadline_s = deadline_s
        self._channels = [
            open_channel(billing_addr, tls=tls, default_deadline=deadline_s),
            open_channel(keys_addr, tls=tls, default_deadline=deadline_s),
        ]
        self.billing = billing_pb2_grpc.BillingServiceStub(self._channels[0])
        self.keys = keys_pb2_grpc.KeysServiceStub(self._channels[1])

    async def issue_invoice(self, session: Any) -> IssuedInvoice:
        amount = common_pb2.Money(
            amount_minor=str(int(session["amount_minor"])),
            currency=session["currency"],
            exponent=session["exponent"],
        )
        paid_at = Timestamp()
        if session["paid_at"] is not None:
            paid_at.FromDatetime(session["paid_at"])
        request = billing_pb2.IssueInvoiceRequest(
            merchant_id=str(session["merchant_id"]),
            mode=MODES[session["mode"]],
            session_id=str(session["id"]),
            amount=amount,
            buyer=_buyer(session),
            line_items=[
                billing_pb2.LineItem(
                    description=session["description"], quantity=1, unit_amount=amount, amount=amount
                )
            ],
            paid_at=paid_at,
        )
        invoice = await self.billing.IssueInvoice(request, timeout=self.deadline_s)
        return IssuedInvoice(invoice.id, invoice.number, invoice)

    async def issue_customer_key(self, session: Any) -> str:
        key = await self.keys.IssueCustomerKey(
            keys_pb2.IssueCustomerKeyRequest(
                merchant_id=str(session["merchant_id"]),
                mode=MODES[session["mode"]],
                session_id=str(session["id"]),
                metadata={"session_id": str(session["id"])},
                scopes=list(session.get("scopes") or ()),
            ),
            timeout=self.deadline_s,
        )
        return key.id

    async def issue_access_token(self, session: Any) -> str:
        token = await self.keys.IssueAccessToken(
            keys_pb2.IssueAccessTokenRequest(
                merchant_id=str(session["merchant_id"]),
                session_id=str(session["id"]),
                mode=MODES[session["mode"]],
                # Keys the opaque `sub` to the customer (never stored there): the portal lists their receipts.
                customer_email=session.get("customer_email") or "",
            ),
            timeout=self.deadline_s,
        )
        return token.id

    async def merchant_name(self, merchant_id: str) -> str:
        merchant = await self.keys.GetMerchant(
            keys_pb2.GetMerchantRequest(merchant_id=merchant_id), timeout=self.deadline_s
        )
        return merchant.name

    async def access_link(self, session_id: str, merchant_id: str) -> str:
        link = await self.keys.GetAccessLink(
            keys_pb2.GetAccessLinkRequest(session_id=session_id, merchant_id=merchant_id),
            timeout=self.deadline_s,
        )
        return link.url

    async def close(self) -> None:
        for channel in self._channels:
            with contextlib.suppress(Exception):
                await channel.close(grace=1.0)


def describe_rpc_error(error: grpc.aio.AioRpcError) -> str:
    return f"{error.code().name}: {error.details() or ''}"[:300]


def _buyer(session: Any) -> billing_pb2.Party:
    """The invoice's buyer: the session's customer (contract §9), if any, and its email."""
    stored = session.get("customer") if hasattr(session, "get") else None
    customer = customer_from_json(json.loads(stored) if isinstance(stored, str) else stored)
    party = billing_pb2.Party(email=session["customer_email"] or "")
    if customer is not None:
        party.name = customer.name
        party.tax_id = customer.vat_id
        party.address.CopyFrom(
            common_pb2.Address(lines=list(customer.address_lines), country=customer.country)
        )
    return party
