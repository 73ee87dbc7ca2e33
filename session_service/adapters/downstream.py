"""gRPC clients of the billing and keys services, as the fulfilment dispatcher and the mailer need them.

Every call carries a deadline, and every issuing call is idempotent on the session id downstream: that is
what makes a retry after a crash (or after a lease ran out while the first call was still running) safe.

A dispatcher pass fulfils its sessions with one IssueInvoices and one IssueCustomerAccess call (issue 16). The
access links and merchant names those replies carry are remembered here for a short while, so the customer's
mail, which follows within moments, needs no GetAccessLink or GetMerchant call of its own; a mail that comes
later (another replica, a restart, a retry) asks as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from paygate.billing.v1 import billing_pb2, billing_pb2_grpc
from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2, keys_pb2_grpc
from paygate_runtime.grpc_client import open_channel
from paygate_runtime.proto_convert import mode_enum, timestamp
from paygate_runtime.tls import TlsFiles
from session_service.domain.customer import customer_from_json


@dataclass(frozen=True, slots=True)
class IssuedInvoice:
    id: str
    number: str
    # The invoice as billing returned it: the `invoice.issued` merchant event's object is rendered from it.
    message: billing_pb2.Invoice | None = None


@dataclass(frozen=True, slots=True)
class IssuedAccess:
    api_key_id: str
    access_token_id: str


class ItemRefused(Exception):
    """One session of a batched call was refused downstream; the others went on."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def __str__(self) -> str:
        name = next((s.name for s in grpc.StatusCode if s.value[0] == self.status), str(self.status))
        return f"{name}: {self.code}: {self.message}"[:300]


# How long a merchant's name and a fresh access link are remembered for the customer's mail. A name never
# changes; a link is a bearer credential, so it is kept only for the moments between fulfilment and mail, and
# taken out when used.
MERCHANT_NAME_TTL_S = 60.0
# Where a customer reaches the merchant, the mail's Reply-To: a changed address reaches mails within this time.
CONTACT_EMAIL_TTL_S = 60.0
ACCESS_LINK_TTL_S = 30.0
MAX_REMEMBERED = 10_000


class _Remembered:
    """A bounded map whose entries expire: cleared whole when full (a cache, never the source of truth)."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._entries: dict[str, tuple[float, str]] = {}

    def put(self, key: str, value: str) -> None:
        if len(self._entries) >= MAX_REMEMBERED:
            self._entries.clear()
        self._entries[key] = (self.clock() + self.ttl_s, value)

    def get(self, key: str, *, take: bool = False) -> str | None:
        entry = self._entries.pop(key, None) if take else self._entries.get(key)
        if entry is None:
            return None
        if entry[0] < self.clock():
            self._entries.pop(key, None)
            return None
        return entry[1]


class Downstream:
    """Billing and keys stubs over channels with a default deadline."""

    def __init__(self, billing_addr: str, keys_addr: str, *, tls: TlsFiles | None, deadline_s: float) -> None:
        self.deadline_s = deadline_s
        self._names = _Remembered(MERCHANT_NAME_TTL_S)
        self._links = _Remembered(ACCESS_LINK_TTL_S)
        self._contacts = _Remembered(CONTACT_EMAIL_TTL_S)
        self._channels = [
            open_channel(billing_addr, tls=tls, default_deadline=deadline_s),
            open_channel(keys_addr, tls=tls, default_deadline=deadline_s),
        ]
        self.billing = billing_pb2_grpc.BillingServiceStub(self._channels[0])
        self.keys = keys_pb2_grpc.KeysServiceStub(self._channels[1])

    async def issue_invoice(self, session: Any) -> IssuedInvoice:
        invoice = await self.billing.IssueInvoice(_invoice_request(session), timeout=self.deadline_s)
        return IssuedInvoice(invoice.id, invoice.number, invoice)

    async def issue_invoices(self, sessions: Sequence[Any]) -> list[IssuedInvoice | BaseException]:
        """Each session's invoice (or why it was refused), in order, in one IssueInvoices call. Raises
        grpc.aio.AioRpcError when the call as a whole failed. A billing service that predates the batch
        (UNIMPLEMENTED during a rolling deploy) is asked one session at a time."""
        request = billing_pb2.IssueInvoicesRequest(items=[_invoice_request(s) for s in sessions])
        try:
            reply = await self.billing.IssueInvoices(request, timeout=self.deadline_s)
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise
            return list(
                await asyncio.gather(*(self.issue_invoice(s) for s in sessions), return_exceptions=True)
            )
        outcomes: list[IssuedInvoice | BaseException] = []
        for result in reply.results:
            if result.HasField("invoice"):
                outcomes.append(IssuedInvoice(result.invoice.id, result.invoice.number, result.invoice))
            else:
                outcomes.append(ItemRefused(result.error.status, result.error.code, result.error.message))
        _check_count(outcomes, sessions)
        return outcomes

    async def issue_customer_access(self, sessions: Sequence[Any]) -> list[IssuedAccess | BaseException]:
        """Each session's customer key and access token (or why they were refused), in order, in one
        IssueCustomerAccess call; the links and merchant names of the reply are remembered for the mail.
        Raises grpc.aio.AioRpcError when the call as a whole failed; an older keys service is asked with the
        single calls."""
        request = keys_pb2.IssueCustomerAccessRequest(
            items=[
                keys_pb2.CustomerAccessItem(
                    merchant_id=str(s["merchant_id"]),
                    mode=mode_enum(s["mode"]),
                    session_id=str(s["id"]),
                    metadata={"session_id": str(s["id"])},
                    scopes=list(s.get("scopes") or ()),
                    set_scopes=True,
                    customer_email=s.get("customer_email") or "",
                )
                for s in sessions
            ]
        )
        try:
            reply = await self.keys.IssueCustomerAccess(request, timeout=self.deadline_s)
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise
            return list(
                await asyncio.gather(*(self._key_and_token(s) for s in sessions), return_exceptions=True)
            )
        outcomes: list[IssuedAccess | BaseException] = []
        for session, result in zip(sessions, reply.results, strict=False):
            if not result.HasField("access"):
                outcomes.append(ItemRefused(result.error.status, result.error.code, result.error.message))
                continue
            access = result.access
            outcomes.append(IssuedAccess(access.key.id, access.link.access_token.id))
            if access.merchant_name:
                self._names.put(str(session["merchant_id"]), access.merchant_name)
            if access.link.url and not access.link.access_token.HasField("revoked_at"):
                self._links.put(str(session["id"]), _mail_link(access.link))
        _check_count(outcomes, sessions)
        return outcomes

    async def _key_and_token(self, session: Any) -> IssuedAccess:
        """Key first, then the access token (the portal link leads to that key)."""
        key_id = await self.issue_customer_key(session)
        return IssuedAccess(key_id, await self.issue_access_token(session))

    async def issue_customer_key(self, session: Any) -> str:
        key = await self.keys.IssueCustomerKey(
            keys_pb2.IssueCustomerKeyRequest(
                merchant_id=str(session["merchant_id"]),
                mode=mode_enum(session["mode"]),
                session_id=str(session["id"]),
                metadata={"session_id": str(session["id"])},
                scopes=list(session.get("scopes") or ()),
                set_scopes=True,
            ),
            timeout=self.deadline_s,
        )
        return key.id

    async def issue_access_token(self, session: Any) -> str:
        token = await self.keys.IssueAccessToken(
            keys_pb2.IssueAccessTokenRequest(
                merchant_id=str(session["merchant_id"]),
                session_id=str(session["id"]),
                mode=mode_enum(session["mode"]),
                # Keys the opaque `sub` to the customer (never stored there): the portal lists their receipts.
                customer_email=session.get("customer_email") or "",
            ),
            timeout=self.deadline_s,
        )
        return token.id

    async def merchant_name(self, merchant_id: str) -> str:
        remembered = self._names.get(merchant_id)
        if remembered is not None:
            return remembered
        merchant = await self.keys.GetMerchant(
            keys_pb2.GetMerchantRequest(merchant_id=merchant_id), timeout=self.deadline_s
        )
        self._names.put(merchant_id, merchant.name)
        return merchant.name

    async def contact_email(self, merchant_id: str, mode: str) -> str:
        """Where a customer reaches the merchant, from its billing profile of `mode` (billing's
        `contact_email`: the support address, else the seller's email; "" when neither is set)."""
        key = f"{merchant_id}:{mode}"
        remembered = self._contacts.get(key)
        if remembered is not None:
            return remembered
        try:
            profile = await self.billing.GetBillingProfile(
                billing_pb2.GetBillingProfileRequest(merchant_id=merchant_id, mode=mode_enum(mode)),
                timeout=self.deadline_s,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
            email = ""
        else:
            email = profile.contact_email
        self._contacts.put(key, email)
        return email

    async def access_link(self, session_id: str, merchant_id: str) -> str:
        # Taken out when used: a mail retried later asks again (the merchant may have revoked the link).
        remembered = self._links.get(session_id, take=True)
        if remembered is not None:
            return remembered
        link = await self.keys.GetAccessLink(
            keys_pb2.GetAccessLinkRequest(session_id=session_id, merchant_id=merchant_id),
            timeout=self.deadline_s,
        )
        return _mail_link(link)

    async def close(self) -> None:
        for channel in self._channels:
            with contextlib.suppress(Exception):
                await channel.close(grace=1.0)


def describe_rpc_error(error: grpc.aio.AioRpcError) -> str:
    return f"{error.code().name}: {error.details() or ''}"[:300]


def _check_count(outcomes: Sequence[object], sessions: Sequence[Any]) -> None:
    if len(outcomes) != len(sessions):
        # A reply that does not answer every item cannot be matched to the sessions safely.
        raise RuntimeError(f"batched reply has {len(outcomes)} results for {len(sessions)} items")


def _invoice_request(session: Any) -> billing_pb2.IssueInvoiceRequest:
    amount = common_pb2.Money(
        amount_minor=str(int(session["amount_minor"])),
        currency=session["currency"],
        exponent=session["exponent"],
    )
    paid_at = timestamp(session["paid_at"]) if session["paid_at"] is not None else Timestamp()
    return billing_pb2.IssueInvoiceRequest(
        merchant_id=str(session["merchant_id"]),
        mode=mode_enum(session["mode"]),
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


def _mail_link(link: keys_pb2.AccessLink) -> str:
    """The link for the customer's mail: with the proof that its reader got the mail (an older keys service
    sends none, and the plain link does)."""
    return link.mail_url or link.url
