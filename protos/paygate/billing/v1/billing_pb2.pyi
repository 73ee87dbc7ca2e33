import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from paygate.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DocumentKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DOCUMENT_KIND_UNSPECIFIED: _ClassVar[DocumentKind]
    DOCUMENT_KIND_INVOICE: _ClassVar[DocumentKind]
    DOCUMENT_KIND_CREDIT_NOTE: _ClassVar[DocumentKind]

class InvoiceStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INVOICE_STATUS_UNSPECIFIED: _ClassVar[InvoiceStatus]
    INVOICE_STATUS_ISSUED: _ClassVar[InvoiceStatus]
    INVOICE_STATUS_VOID: _ClassVar[InvoiceStatus]

class RenderFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RENDER_FORMAT_UNSPECIFIED: _ClassVar[RenderFormat]
    RENDER_FORMAT_HTML: _ClassVar[RenderFormat]
    RENDER_FORMAT_PDF: _ClassVar[RenderFormat]

class Interval(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INTERVAL_UNSPECIFIED: _ClassVar[Interval]
    INTERVAL_DAY: _ClassVar[Interval]
    INTERVAL_WEEK: _ClassVar[Interval]
    INTERVAL_MONTH: _ClassVar[Interval]
DOCUMENT_KIND_UNSPECIFIED: DocumentKind
DOCUMENT_KIND_INVOICE: DocumentKind
DOCUMENT_KIND_CREDIT_NOTE: DocumentKind
INVOICE_STATUS_UNSPECIFIED: InvoiceStatus
INVOICE_STATUS_ISSUED: InvoiceStatus
INVOICE_STATUS_VOID: InvoiceStatus
RENDER_FORMAT_UNSPECIFIED: RenderFormat
RENDER_FORMAT_HTML: RenderFormat
RENDER_FORMAT_PDF: RenderFormat
INTERVAL_UNSPECIFIED: Interval
INTERVAL_DAY: Interval
INTERVAL_WEEK: Interval
INTERVAL_MONTH: Interval

class Party(_message.Message):
    __slots__ = ("name", "email", "address", "tax_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    TAX_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    email: str
    address: _common_pb2.Address
    tax_id: str
    def __init__(self, name: _Optional[str] = ..., email: _Optional[str] = ..., address: _Optional[_Union[_common_pb2.Address, _Mapping]] = ..., tax_id: _Optional[str] = ...) -> None: ...

class LineItem(_message.Message):
    __slots__ = ("description", "quantity", "unit_amount", "amount")
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    description: str
    quantity: int
    unit_amount: _common_pb2.Money
    amount: _common_pb2.Money
    def __init__(self, description: _Optional[str] = ..., quantity: _Optional[int] = ..., unit_amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ...) -> None: ...

class Invoice(_message.Message):
    __slots__ = ("id", "number", "kind", "merchant_id", "mode", "session_id", "seller", "buyer", "line_items", "subtotal", "tax_rate_bps", "tax", "total", "issued_at", "status", "credits_invoice_id", "credit_note_id", "sequence")
    ID_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SELLER_FIELD_NUMBER: _ClassVar[int]
    BUYER_FIELD_NUMBER: _ClassVar[int]
    LINE_ITEMS_FIELD_NUMBER: _ClassVar[int]
    SUBTOTAL_FIELD_NUMBER: _ClassVar[int]
    TAX_RATE_BPS_FIELD_NUMBER: _ClassVar[int]
    TAX_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREDITS_INVOICE_ID_FIELD_NUMBER: _ClassVar[int]
    CREDIT_NOTE_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    id: str
    number: str
    kind: DocumentKind
    merchant_id: str
    mode: _common_pb2.Mode
    session_id: str
    seller: Party
    buyer: Party
    line_items: _containers.RepeatedCompositeFieldContainer[LineItem]
    subtotal: _common_pb2.Money
    tax_rate_bps: int
    tax: _common_pb2.Money
    total: _common_pb2.Money
    issued_at: _timestamp_pb2.Timestamp
    status: InvoiceStatus
    credits_invoice_id: str
    credit_note_id: str
    sequence: int
    def __init__(self, id: _Optional[str] = ..., number: _Optional[str] = ..., kind: _Optional[_Union[DocumentKind, str]] = ..., merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., session_id: _Optional[str] = ..., seller: _Optional[_Union[Party, _Mapping]] = ..., buyer: _Optional[_Union[Party, _Mapping]] = ..., line_items: _Optional[_Iterable[_Union[LineItem, _Mapping]]] = ..., subtotal: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., tax_rate_bps: _Optional[int] = ..., tax: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., total: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[_Union[InvoiceStatus, str]] = ..., credits_invoice_id: _Optional[str] = ..., credit_note_id: _Optional[str] = ..., sequence: _Optional[int] = ...) -> None: ...

class IssueInvoiceRequest(_message.Message):
    __slots__ = ("merchant_id", "mode", "session_id", "amount", "buyer", "line_items", "paid_at")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    BUYER_FIELD_NUMBER: _ClassVar[int]
    LINE_ITEMS_FIELD_NUMBER: _ClassVar[int]
    PAID_AT_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    mode: _common_pb2.Mode
    session_id: str
    amount: _common_pb2.Money
    buyer: Party
    line_items: _containers.RepeatedCompositeFieldContainer[LineItem]
    paid_at: _timestamp_pb2.Timestamp
    def __init__(self, merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., session_id: _Optional[str] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., buyer: _Optional[_Union[Party, _Mapping]] = ..., line_items: _Optional[_Iterable[_Union[LineItem, _Mapping]]] = ..., paid_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class IssueInvoicesRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[IssueInvoiceRequest]
    def __init__(self, items: _Optional[_Iterable[_Union[IssueInvoiceRequest, _Mapping]]] = ...) -> None: ...

class IssueInvoicesResult(_message.Message):
    __slots__ = ("session_id", "invoice", "error")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    INVOICE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    invoice: Invoice
    error: _common_pb2.ItemError
    def __init__(self, session_id: _Optional[str] = ..., invoice: _Optional[_Union[Invoice, _Mapping]] = ..., error: _Optional[_Union[_common_pb2.ItemError, _Mapping]] = ...) -> None: ...

class IssueInvoicesResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[IssueInvoicesResult]
    def __init__(self, results: _Optional[_Iterable[_Union[IssueInvoicesResult, _Mapping]]] = ...) -> None: ...

class GetInvoiceRequest(_message.Message):
    __slots__ = ("merchant_id", "invoice_id", "session_id", "mode")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    INVOICE_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    invoice_id: str
    session_id: str
    mode: _common_pb2.Mode
    def __init__(self, merchant_id: _Optional[str] = ..., invoice_id: _Optional[str] = ..., session_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ...) -> None: ...

class ListInvoicesRequest(_message.Message):
    __slots__ = ("merchant_id", "mode", "status", "kind", "issued_from", "issued_to", "limit", "starting_after")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ISSUED_FROM_FIELD_NUMBER: _ClassVar[int]
    ISSUED_TO_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    STARTING_AFTER_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    mode: _common_pb2.Mode
    status: InvoiceStatus
    kind: DocumentKind
    issued_from: _timestamp_pb2.Timestamp
    issued_to: _timestamp_pb2.Timestamp
    limit: int
    starting_after: str
    def __init__(self, merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., status: _Optional[_Union[InvoiceStatus, str]] = ..., kind: _Optional[_Union[DocumentKind, str]] = ..., issued_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., issued_to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., limit: _Optional[int] = ..., starting_after: _Optional[str] = ...) -> None: ...

class ListInvoicesResponse(_message.Message):
    __slots__ = ("invoices", "has_more")
    INVOICES_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    invoices: _containers.RepeatedCompositeFieldContainer[Invoice]
    has_more: bool
    def __init__(self, invoices: _Optional[_Iterable[_Union[Invoice, _Mapping]]] = ..., has_more: _Optional[bool] = ...) -> None: ...

class VoidInvoiceRequest(_message.Message):
    __slots__ = ("merchant_id", "invoice_id", "reason", "mode", "actor")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    INVOICE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    invoice_id: str
    reason: str
    mode: _common_pb2.Mode
    actor: str
    def __init__(self, merchant_id: _Optional[str] = ..., invoice_id: _Optional[str] = ..., reason: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., actor: _Optional[str] = ...) -> None: ...

class VoidInvoiceResponse(_message.Message):
    __slots__ = ("invoice", "credit_note")
    INVOICE_FIELD_NUMBER: _ClassVar[int]
    CREDIT_NOTE_FIELD_NUMBER: _ClassVar[int]
    invoice: Invoice
    credit_note: Invoice
    def __init__(self, invoice: _Optional[_Union[Invoice, _Mapping]] = ..., credit_note: _Optional[_Union[Invoice, _Mapping]] = ...) -> None: ...

class RenderInvoiceRequest(_message.Message):
    __slots__ = ("merchant_id", "invoice_id", "format", "mode")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    INVOICE_ID_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    invoice_id: str
    format: RenderFormat
    mode: _common_pb2.Mode
    def __init__(self, merchant_id: _Optional[str] = ..., invoice_id: _Optional[str] = ..., format: _Optional[_Union[RenderFormat, str]] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ...) -> None: ...

class RenderedDocument(_message.Message):
    __slots__ = ("content", "content_type", "filename")
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    content: bytes
    content_type: str
    filename: str
    def __init__(self, content: _Optional[bytes] = ..., content_type: _Optional[str] = ..., filename: _Optional[str] = ...) -> None: ...

class RevenueSummaryRequest(_message.Message):
    __slots__ = ("merchant_id", "mode", "to", "interval")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    mode: _common_pb2.Mode
    to: _timestamp_pb2.Timestamp
    interval: Interval
    def __init__(self, merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., interval: _Optional[_Union[Interval, str]] = ..., **kwargs) -> None: ...

class RevenueBucket(_message.Message):
    __slots__ = ("period_start", "currency", "invoice_count", "invoice_total", "credit_note_count", "credit_note_total", "net")
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    INVOICE_COUNT_FIELD_NUMBER: _ClassVar[int]
    INVOICE_TOTAL_FIELD_NUMBER: _ClassVar[int]
    CREDIT_NOTE_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREDIT_NOTE_TOTAL_FIELD_NUMBER: _ClassVar[int]
    NET_FIELD_NUMBER: _ClassVar[int]
    period_start: _timestamp_pb2.Timestamp
    currency: str
    invoice_count: int
    invoice_total: _common_pb2.Money
    credit_note_count: int
    credit_note_total: _common_pb2.Money
    net: _common_pb2.Money
    def __init__(self, period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., currency: _Optional[str] = ..., invoice_count: _Optional[int] = ..., invoice_total: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., credit_note_count: _Optional[int] = ..., credit_note_total: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., net: _Optional[_Union[_common_pb2.Money, _Mapping]] = ...) -> None: ...

class RevenueSummaryResponse(_message.Message):
    __slots__ = ("buckets",)
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    buckets: _containers.RepeatedCompositeFieldContainer[RevenueBucket]
    def __init__(self, buckets: _Optional[_Iterable[_Union[RevenueBucket, _Mapping]]] = ...) -> None: ...

class BillingProfile(_message.Message):
    __slots__ = ("merchant_id", "seller", "invoice_prefix", "tax_rate_bps", "reset_numbering_yearly", "support_email", "support_url", "complete", "missing_fields", "mode", "contact_email")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    SELLER_FIELD_NUMBER: _ClassVar[int]
    INVOICE_PREFIX_FIELD_NUMBER: _ClassVar[int]
    TAX_RATE_BPS_FIELD_NUMBER: _ClassVar[int]
    RESET_NUMBERING_YEARLY_FIELD_NUMBER: _ClassVar[int]
    SUPPORT_EMAIL_FIELD_NUMBER: _ClassVar[int]
    SUPPORT_URL_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELDS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    CONTACT_EMAIL_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    seller: Party
    invoice_prefix: str
    tax_rate_bps: int
    reset_numbering_yearly: bool
    support_email: str
    support_url: str
    complete: bool
    missing_fields: _containers.RepeatedScalarFieldContainer[str]
    mode: _common_pb2.Mode
    contact_email: str
    def __init__(self, merchant_id: _Optional[str] = ..., seller: _Optional[_Union[Party, _Mapping]] = ..., invoice_prefix: _Optional[str] = ..., tax_rate_bps: _Optional[int] = ..., reset_numbering_yearly: _Optional[bool] = ..., support_email: _Optional[str] = ..., support_url: _Optional[str] = ..., complete: _Optional[bool] = ..., missing_fields: _Optional[_Iterable[str]] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., contact_email: _Optional[str] = ...) -> None: ...

class GetBillingProfileRequest(_message.Message):
    __slots__ = ("merchant_id", "mode")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    mode: _common_pb2.Mode
    def __init__(self, merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ...) -> None: ...

class UpdateBillingProfileRequest(_message.Message):
    __slots__ = ("profile", "mode", "actor")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    profile: BillingProfile
    mode: _common_pb2.Mode
    actor: str
    def __init__(self, profile: _Optional[_Union[BillingProfile, _Mapping]] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., actor: _Optional[str] = ...) -> None: ...

class ListSessionDocumentsRequest(_message.Message):
    __slots__ = ("merchant_id", "mode", "session_ids")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SESSION_IDS_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    mode: _common_pb2.Mode
    session_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., session_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class IssueCreditNoteRequest(_message.Message):
    __slots__ = ("merchant_id", "mode", "session_id", "refund_id", "amount", "reason")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    REFUND_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    mode: _common_pb2.Mode
    session_id: str
    refund_id: str
    amount: _common_pb2.Money
    reason: str
    def __init__(self, merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., session_id: _Optional[str] = ..., refund_id: _Optional[str] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...
