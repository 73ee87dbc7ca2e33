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

class SessionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SESSION_STATUS_UNSPECIFIED: _ClassVar[SessionStatus]
    SESSION_STATUS_CREATED: _ClassVar[SessionStatus]
    SESSION_STATUS_PENDING: _ClassVar[SessionStatus]
    SESSION_STATUS_PAID: _ClassVar[SessionStatus]
    SESSION_STATUS_FAILED: _ClassVar[SessionStatus]
    SESSION_STATUS_EXPIRED: _ClassVar[SessionStatus]
    SESSION_STATUS_REFUNDED: _ClassVar[SessionStatus]

class EventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_KIND_UNSPECIFIED: _ClassVar[EventKind]
    EVENT_KIND_PENDING: _ClassVar[EventKind]
    EVENT_KIND_SUCCEEDED: _ClassVar[EventKind]
    EVENT_KIND_FAILED: _ClassVar[EventKind]
    EVENT_KIND_ATTEMPT_FAILED: _ClassVar[EventKind]
    EVENT_KIND_EXPIRED: _ClassVar[EventKind]
    EVENT_KIND_REFUNDED: _ClassVar[EventKind]
    EVENT_KIND_DISPUTED: _ClassVar[EventKind]

class ApplyOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    APPLY_OUTCOME_UNSPECIFIED: _ClassVar[ApplyOutcome]
    APPLY_OUTCOME_APPLIED: _ClassVar[ApplyOutcome]
    APPLY_OUTCOME_DUPLICATE: _ClassVar[ApplyOutcome]
    APPLY_OUTCOME_ALREADY_PAID: _ClassVar[ApplyOutcome]
    APPLY_OUTCOME_IGNORED_TERMINAL: _ClassVar[ApplyOutcome]
    APPLY_OUTCOME_AMOUNT_MISMATCH: _ClassVar[ApplyOutcome]
    APPLY_OUTCOME_OVERPAID: _ClassVar[ApplyOutcome]
    APPLY_OUTCOME_PAYMENT_ON_CLOSED_SESSION: _ClassVar[ApplyOutcome]
    APPLY_OUTCOME_MODE_MISMATCH: _ClassVar[ApplyOutcome]
    APPLY_OUTCOME_RECORDED_FOR_REVIEW: _ClassVar[ApplyOutcome]
    APPLY_OUTCOME_PROVIDER_MISMATCH: _ClassVar[ApplyOutcome]
    APPLY_OUTCOME_ALREADY_QUARANTINED: _ClassVar[ApplyOutcome]

class QuarantineDecision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUARANTINE_DECISION_UNSPECIFIED: _ClassVar[QuarantineDecision]
    QUARANTINE_DECISION_REFUNDED: _ClassVar[QuarantineDecision]
    QUARANTINE_DECISION_DISMISSED: _ClassVar[QuarantineDecision]
    QUARANTINE_DECISION_ACCEPTED: _ClassVar[QuarantineDecision]
SESSION_STATUS_UNSPECIFIED: SessionStatus
SESSION_STATUS_CREATED: SessionStatus
SESSION_STATUS_PENDING: SessionStatus
SESSION_STATUS_PAID: SessionStatus
SESSION_STATUS_FAILED: SessionStatus
SESSION_STATUS_EXPIRED: SessionStatus
SESSION_STATUS_REFUNDED: SessionStatus
EVENT_KIND_UNSPECIFIED: EventKind
EVENT_KIND_PENDING: EventKind
EVENT_KIND_SUCCEEDED: EventKind
EVENT_KIND_FAILED: EventKind
EVENT_KIND_ATTEMPT_FAILED: EventKind
EVENT_KIND_EXPIRED: EventKind
EVENT_KIND_REFUNDED: EventKind
EVENT_KIND_DISPUTED: EventKind
APPLY_OUTCOME_UNSPECIFIED: ApplyOutcome
APPLY_OUTCOME_APPLIED: ApplyOutcome
APPLY_OUTCOME_DUPLICATE: ApplyOutcome
APPLY_OUTCOME_ALREADY_PAID: ApplyOutcome
APPLY_OUTCOME_IGNORED_TERMINAL: ApplyOutcome
APPLY_OUTCOME_AMOUNT_MISMATCH: ApplyOutcome
APPLY_OUTCOME_OVERPAID: ApplyOutcome
APPLY_OUTCOME_PAYMENT_ON_CLOSED_SESSION: ApplyOutcome
APPLY_OUTCOME_MODE_MISMATCH: ApplyOutcome
APPLY_OUTCOME_RECORDED_FOR_REVIEW: ApplyOutcome
APPLY_OUTCOME_PROVIDER_MISMATCH: ApplyOutcome
APPLY_OUTCOME_ALREADY_QUARANTINED: ApplyOutcome
QUARANTINE_DECISION_UNSPECIFIED: QuarantineDecision
QUARANTINE_DECISION_REFUNDED: QuarantineDecision
QUARANTINE_DECISION_DISMISSED: QuarantineDecision
QUARANTINE_DECISION_ACCEPTED: QuarantineDecision

class Web3Payment(_message.Message):
    __slots__ = ("chain_id", "deposit_address", "token", "min_confirmations", "derivation_index")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    DEPOSIT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    MIN_CONFIRMATIONS_FIELD_NUMBER: _ClassVar[int]
    DERIVATION_INDEX_FIELD_NUMBER: _ClassVar[int]
    chain_id: int
    deposit_address: str
    token: str
    min_confirmations: int
    derivation_index: int
    def __init__(self, chain_id: _Optional[int] = ..., deposit_address: _Optional[str] = ..., token: _Optional[str] = ..., min_confirmations: _Optional[int] = ..., derivation_index: _Optional[int] = ...) -> None: ...

class Transition(_message.Message):
    __slots__ = ("from_status", "to_status", "at", "source_event_id", "note")
    FROM_STATUS_FIELD_NUMBER: _ClassVar[int]
    TO_STATUS_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    from_status: SessionStatus
    to_status: SessionStatus
    at: _timestamp_pb2.Timestamp
    source_event_id: str
    note: str
    def __init__(self, from_status: _Optional[_Union[SessionStatus, str]] = ..., to_status: _Optional[_Union[SessionStatus, str]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source_event_id: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class SessionAlert(_message.Message):
    __slots__ = ("code", "detail", "reference", "at")
    CODE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    code: str
    detail: str
    reference: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, code: _Optional[str] = ..., detail: _Optional[str] = ..., reference: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Session(_message.Message):
    __slots__ = ("id", "merchant_id", "mode", "status", "payment_status", "amount", "provider", "customer_email", "metadata", "created_at", "expires_at", "paid_at", "invoice_id", "api_key_id", "access_token_id", "fulfilment_status", "history", "provider_checkout_url", "provider_session_id", "payment", "amount_received", "alerts", "description", "invoice_number", "scopes", "amount_refunded", "refunds", "dispute_status", "paid_reference", "customer", "dispute_kind")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_STATUS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_EMAIL_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    PAID_AT_FIELD_NUMBER: _ClassVar[int]
    INVOICE_ID_FIELD_NUMBER: _ClassVar[int]
    API_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    FULFILMENT_STATUS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_CHECKOUT_URL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    INVOICE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_REFUNDED_FIELD_NUMBER: _ClassVar[int]
    REFUNDS_FIELD_NUMBER: _ClassVar[int]
    DISPUTE_STATUS_FIELD_NUMBER: _ClassVar[int]
    PAID_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    DISPUTE_KIND_FIELD_NUMBER: _ClassVar[int]
    id: str
    merchant_id: str
    mode: _common_pb2.Mode
    status: SessionStatus
    payment_status: str
    amount: _common_pb2.Money
    provider: str
    customer_email: str
    metadata: _containers.ScalarMap[str, str]
    created_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    paid_at: _timestamp_pb2.Timestamp
    invoice_id: str
    api_key_id: str
    access_token_id: str
    fulfilment_status: str
    history: _containers.RepeatedCompositeFieldContainer[Transition]
    provider_checkout_url: str
    provider_session_id: str
    payment: Web3Payment
    amount_received: _common_pb2.Money
    alerts: _containers.RepeatedCompositeFieldContainer[SessionAlert]
    description: str
    invoice_number: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    amount_refunded: _common_pb2.Money
    refunds: _containers.RepeatedCompositeFieldContainer[Refund]
    dispute_status: str
    paid_reference: str
    customer: SessionCustomer
    dispute_kind: str
    def __init__(self, id: _Optional[str] = ..., merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., status: _Optional[_Union[SessionStatus, str]] = ..., payment_status: _Optional[str] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., provider: _Optional[str] = ..., customer_email: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., paid_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., invoice_id: _Optional[str] = ..., api_key_id: _Optional[str] = ..., access_token_id: _Optional[str] = ..., fulfilment_status: _Optional[str] = ..., history: _Optional[_Iterable[_Union[Transition, _Mapping]]] = ..., provider_checkout_url: _Optional[str] = ..., provider_session_id: _Optional[str] = ..., payment: _Optional[_Union[Web3Payment, _Mapping]] = ..., amount_received: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., alerts: _Optional[_Iterable[_Union[SessionAlert, _Mapping]]] = ..., description: _Optional[str] = ..., invoice_number: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., amount_refunded: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., refunds: _Optional[_Iterable[_Union[Refund, _Mapping]]] = ..., dispute_status: _Optional[str] = ..., paid_reference: _Optional[str] = ..., customer: _Optional[_Union[SessionCustomer, _Mapping]] = ..., dispute_kind: _Optional[str] = ...) -> None: ...

class Refund(_message.Message):
    __slots__ = ("id", "session_id", "amount", "status", "origin", "provider_refund_id", "reason", "credited", "credit_note_id", "credit_note_number", "created_at", "failure_reason", "replaced_by")
    ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_REFUND_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CREDITED_FIELD_NUMBER: _ClassVar[int]
    CREDIT_NOTE_ID_FIELD_NUMBER: _ClassVar[int]
    CREDIT_NOTE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    REPLACED_BY_FIELD_NUMBER: _ClassVar[int]
    id: str
    session_id: str
    amount: _common_pb2.Money
    status: str
    origin: str
    provider_refund_id: str
    reason: str
    credited: _common_pb2.Money
    credit_note_id: str
    credit_note_number: str
    created_at: _timestamp_pb2.Timestamp
    failure_reason: str
    replaced_by: str
    def __init__(self, id: _Optional[str] = ..., session_id: _Optional[str] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., status: _Optional[str] = ..., origin: _Optional[str] = ..., provider_refund_id: _Optional[str] = ..., reason: _Optional[str] = ..., credited: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., credit_note_id: _Optional[str] = ..., credit_note_number: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., failure_reason: _Optional[str] = ..., replaced_by: _Optional[str] = ...) -> None: ...

class ProviderRefund(_message.Message):
    __slots__ = ("refund_id", "amount", "status", "paygate_refund_id", "failure_reason")
    REFUND_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAYGATE_REFUND_ID_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    refund_id: str
    amount: _common_pb2.Money
    status: str
    paygate_refund_id: str
    failure_reason: str
    def __init__(self, refund_id: _Optional[str] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., status: _Optional[str] = ..., paygate_refund_id: _Optional[str] = ..., failure_reason: _Optional[str] = ...) -> None: ...

class DisputeReport(_message.Message):
    __slots__ = ("dispute_id", "action", "status", "amount")
    DISPUTE_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    dispute_id: str
    action: str
    status: str
    amount: _common_pb2.Money
    def __init__(self, dispute_id: _Optional[str] = ..., action: _Optional[str] = ..., status: _Optional[str] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ...) -> None: ...

class RefundSessionRequest(_message.Message):
    __slots__ = ("merchant_id", "mode", "session_id", "amount", "reason", "idempotency_key", "request_fingerprint", "via_provider", "provider_refund_id", "chain_tx_hash", "actor")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    VIA_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_REFUND_ID_FIELD_NUMBER: _ClassVar[int]
    CHAIN_TX_HASH_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    mode: _common_pb2.Mode
    session_id: str
    amount: str
    reason: str
    idempotency_key: str
    request_fingerprint: str
    via_provider: bool
    provider_refund_id: str
    chain_tx_hash: str
    actor: str
    def __init__(self, merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., session_id: _Optional[str] = ..., amount: _Optional[str] = ..., reason: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., request_fingerprint: _Optional[str] = ..., via_provider: _Optional[bool] = ..., provider_refund_id: _Optional[str] = ..., chain_tx_hash: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class RefundSessionResponse(_message.Message):
    __slots__ = ("refund", "session", "replayed")
    REFUND_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    refund: Refund
    session: Session
    replayed: bool
    def __init__(self, refund: _Optional[_Union[Refund, _Mapping]] = ..., session: _Optional[_Union[Session, _Mapping]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class AttachProviderRefundRequest(_message.Message):
    __slots__ = ("merchant_id", "mode", "refund_id", "provider_refund_id", "status", "failure_reason")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    REFUND_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_REFUND_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    mode: _common_pb2.Mode
    refund_id: str
    provider_refund_id: str
    status: str
    failure_reason: str
    def __init__(self, merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., refund_id: _Optional[str] = ..., provider_refund_id: _Optional[str] = ..., status: _Optional[str] = ..., failure_reason: _Optional[str] = ...) -> None: ...

class CreateSessionRequest(_message.Message):
    __slots__ = ("merchant_id", "mode", "amount", "currency", "provider", "customer_email", "metadata", "expires_in_seconds", "idempotency_key", "request_fingerprint", "description", "actor", "scopes", "set_scopes", "customer")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_EMAIL_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    SET_SCOPES_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    mode: _common_pb2.Mode
    amount: str
    currency: str
    provider: str
    customer_email: str
    metadata: _containers.ScalarMap[str, str]
    expires_in_seconds: int
    idempotency_key: str
    request_fingerprint: str
    description: str
    actor: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    set_scopes: bool
    customer: SessionCustomer
    def __init__(self, merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., amount: _Optional[str] = ..., currency: _Optional[str] = ..., provider: _Optional[str] = ..., customer_email: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., expires_in_seconds: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., request_fingerprint: _Optional[str] = ..., description: _Optional[str] = ..., actor: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., set_scopes: _Optional[bool] = ..., customer: _Optional[_Union[SessionCustomer, _Mapping]] = ...) -> None: ...

class CreateSessionResponse(_message.Message):
    __slots__ = ("session", "replayed")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    session: Session
    replayed: bool
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class GetSessionRequest(_message.Message):
    __slots__ = ("session_id", "merchant_id", "mode")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    merchant_id: str
    mode: _common_pb2.Mode
    def __init__(self, session_id: _Optional[str] = ..., merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ...) -> None: ...

class ListSessionsRequest(_message.Message):
    __slots__ = ("merchant_id", "status", "limit", "starting_after", "mode", "provider", "customer_email", "created_from", "created_to", "amount_min_minor", "amount_max_minor", "currency")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    STARTING_AFTER_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_EMAIL_FIELD_NUMBER: _ClassVar[int]
    CREATED_FROM_FIELD_NUMBER: _ClassVar[int]
    CREATED_TO_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MIN_MINOR_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MAX_MINOR_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    status: SessionStatus
    limit: int
    starting_after: str
    mode: _common_pb2.Mode
    provider: str
    customer_email: str
    created_from: _timestamp_pb2.Timestamp
    created_to: _timestamp_pb2.Timestamp
    amount_min_minor: str
    amount_max_minor: str
    currency: str
    def __init__(self, merchant_id: _Optional[str] = ..., status: _Optional[_Union[SessionStatus, str]] = ..., limit: _Optional[int] = ..., starting_after: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., provider: _Optional[str] = ..., customer_email: _Optional[str] = ..., created_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., amount_min_minor: _Optional[str] = ..., amount_max_minor: _Optional[str] = ..., currency: _Optional[str] = ...) -> None: ...

class ListSessionsResponse(_message.Message):
    __slots__ = ("sessions", "has_more")
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[Session]
    has_more: bool
    def __init__(self, sessions: _Optional[_Iterable[_Union[Session, _Mapping]]] = ..., has_more: _Optional[bool] = ...) -> None: ...

class ApplyPaymentEventRequest(_message.Message):
    __slots__ = ("session_id", "provider", "provider_event_id", "kind", "amount", "provider_reference", "occurred_at", "mode", "provider_event_type", "refunds", "refunded_total", "dispute", "provider_charge_id", "traceparent")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    REFUNDS_FIELD_NUMBER: _ClassVar[int]
    REFUNDED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    DISPUTE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_CHARGE_ID_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    provider: str
    provider_event_id: str
    kind: EventKind
    amount: _common_pb2.Money
    provider_reference: str
    occurred_at: _timestamp_pb2.Timestamp
    mode: _common_pb2.Mode
    provider_event_type: str
    refunds: _containers.RepeatedCompositeFieldContainer[ProviderRefund]
    refunded_total: _common_pb2.Money
    dispute: DisputeReport
    provider_charge_id: str
    traceparent: str
    def __init__(self, session_id: _Optional[str] = ..., provider: _Optional[str] = ..., provider_event_id: _Optional[str] = ..., kind: _Optional[_Union[EventKind, str]] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., provider_reference: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., provider_event_type: _Optional[str] = ..., refunds: _Optional[_Iterable[_Union[ProviderRefund, _Mapping]]] = ..., refunded_total: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., dispute: _Optional[_Union[DisputeReport, _Mapping]] = ..., provider_charge_id: _Optional[str] = ..., traceparent: _Optional[str] = ...) -> None: ...

class ApplyPaymentEventsRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ApplyPaymentEventRequest]
    def __init__(self, items: _Optional[_Iterable[_Union[ApplyPaymentEventRequest, _Mapping]]] = ...) -> None: ...

class ApplyPaymentEventsResult(_message.Message):
    __slots__ = ("applied", "error")
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    applied: ApplyPaymentEventResponse
    error: _common_pb2.ItemError
    def __init__(self, applied: _Optional[_Union[ApplyPaymentEventResponse, _Mapping]] = ..., error: _Optional[_Union[_common_pb2.ItemError, _Mapping]] = ...) -> None: ...

class ApplyPaymentEventsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ApplyPaymentEventsResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ApplyPaymentEventsResult, _Mapping]]] = ...) -> None: ...

class ApplyPaymentEventResponse(_message.Message):
    __slots__ = ("outcome", "first_outcome", "session", "quarantine_id")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    FIRST_OUTCOME_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    QUARANTINE_ID_FIELD_NUMBER: _ClassVar[int]
    outcome: ApplyOutcome
    first_outcome: ApplyOutcome
    session: Session
    quarantine_id: str
    def __init__(self, outcome: _Optional[_Union[ApplyOutcome, str]] = ..., first_outcome: _Optional[_Union[ApplyOutcome, str]] = ..., session: _Optional[_Union[Session, _Mapping]] = ..., quarantine_id: _Optional[str] = ...) -> None: ...

class ExpireSessionRequest(_message.Message):
    __slots__ = ("session_id", "merchant_id", "mode", "actor")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    merchant_id: str
    mode: _common_pb2.Mode
    actor: str
    def __init__(self, session_id: _Optional[str] = ..., merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., actor: _Optional[str] = ...) -> None: ...

class QuarantineEntry(_message.Message):
    __slots__ = ("id", "merchant_id", "session_id", "reason", "provider", "provider_event_id", "provider_reference", "amount", "expected", "surplus", "status", "resolution_note", "created_at", "resolved_at", "mode", "note")
    ID_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FIELD_NUMBER: _ClassVar[int]
    SURPLUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_NOTE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_AT_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    id: str
    merchant_id: str
    session_id: str
    reason: str
    provider: str
    provider_event_id: str
    provider_reference: str
    amount: _common_pb2.Money
    expected: _common_pb2.Money
    surplus: _common_pb2.Money
    status: str
    resolution_note: str
    created_at: _timestamp_pb2.Timestamp
    resolved_at: _timestamp_pb2.Timestamp
    mode: _common_pb2.Mode
    note: str
    def __init__(self, id: _Optional[str] = ..., merchant_id: _Optional[str] = ..., session_id: _Optional[str] = ..., reason: _Optional[str] = ..., provider: _Optional[str] = ..., provider_event_id: _Optional[str] = ..., provider_reference: _Optional[str] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., expected: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., surplus: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., status: _Optional[str] = ..., resolution_note: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resolved_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., note: _Optional[str] = ...) -> None: ...

class ListQuarantineRequest(_message.Message):
    __slots__ = ("merchant_id", "status", "limit", "starting_after", "mode", "session_id")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    STARTING_AFTER_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    status: str
    limit: int
    starting_after: str
    mode: _common_pb2.Mode
    session_id: str
    def __init__(self, merchant_id: _Optional[str] = ..., status: _Optional[str] = ..., limit: _Optional[int] = ..., starting_after: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., session_id: _Optional[str] = ...) -> None: ...

class ListQuarantineResponse(_message.Message):
    __slots__ = ("entries", "has_more")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[QuarantineEntry]
    has_more: bool
    def __init__(self, entries: _Optional[_Iterable[_Union[QuarantineEntry, _Mapping]]] = ..., has_more: _Optional[bool] = ...) -> None: ...

class ResolveQuarantineRequest(_message.Message):
    __slots__ = ("merchant_id", "quarantine_id", "decision", "note", "mode", "actor")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    QUARANTINE_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    quarantine_id: str
    decision: QuarantineDecision
    note: str
    mode: _common_pb2.Mode
    actor: str
    def __init__(self, merchant_id: _Optional[str] = ..., quarantine_id: _Optional[str] = ..., decision: _Optional[_Union[QuarantineDecision, str]] = ..., note: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., actor: _Optional[str] = ...) -> None: ...

class AcceptedToken(_message.Message):
    __slots__ = ("address", "symbol", "decimals")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    DECIMALS_FIELD_NUMBER: _ClassVar[int]
    address: str
    symbol: str
    decimals: int
    def __init__(self, address: _Optional[str] = ..., symbol: _Optional[str] = ..., decimals: _Optional[int] = ...) -> None: ...

class OnchainSettings(_message.Message):
    __slots__ = ("chain_id", "xpub", "min_confirmations", "tokens")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    XPUB_FIELD_NUMBER: _ClassVar[int]
    MIN_CONFIRMATIONS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    chain_id: int
    xpub: str
    min_confirmations: int
    tokens: _containers.RepeatedCompositeFieldContainer[AcceptedToken]
    def __init__(self, chain_id: _Optional[int] = ..., xpub: _Optional[str] = ..., min_confirmations: _Optional[int] = ..., tokens: _Optional[_Iterable[_Union[AcceptedToken, _Mapping]]] = ...) -> None: ...

class PaymentSettings(_message.Message):
    __slots__ = ("merchant_id", "default_currency", "onchain", "next_derivation_index")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_CURRENCY_FIELD_NUMBER: _ClassVar[int]
    ONCHAIN_FIELD_NUMBER: _ClassVar[int]
    NEXT_DERIVATION_INDEX_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    default_currency: str
    onchain: OnchainSettings
    next_derivation_index: int
    def __init__(self, merchant_id: _Optional[str] = ..., default_currency: _Optional[str] = ..., onchain: _Optional[_Union[OnchainSettings, _Mapping]] = ..., next_derivation_index: _Optional[int] = ...) -> None: ...

class GetPaymentSettingsRequest(_message.Message):
    __slots__ = ("merchant_id",)
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    def __init__(self, merchant_id: _Optional[str] = ...) -> None: ...

class UpdatePaymentSettingsRequest(_message.Message):
    __slots__ = ("settings", "allow_used_xpub")
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    ALLOW_USED_XPUB_FIELD_NUMBER: _ClassVar[int]
    settings: PaymentSettings
    allow_used_xpub: bool
    def __init__(self, settings: _Optional[_Union[PaymentSettings, _Mapping]] = ..., allow_used_xpub: _Optional[bool] = ...) -> None: ...

class ListActiveDepositsRequest(_message.Message):
    __slots__ = ("chain_id", "include_closed_within_seconds")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_CLOSED_WITHIN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    chain_id: int
    include_closed_within_seconds: int
    def __init__(self, chain_id: _Optional[int] = ..., include_closed_within_seconds: _Optional[int] = ...) -> None: ...

class ActiveDeposit(_message.Message):
    __slots__ = ("session_id", "merchant_id", "payment", "amount", "status", "created_at", "expires_at", "mode")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    merchant_id: str
    payment: Web3Payment
    amount: _common_pb2.Money
    status: SessionStatus
    created_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    mode: _common_pb2.Mode
    def __init__(self, session_id: _Optional[str] = ..., merchant_id: _Optional[str] = ..., payment: _Optional[_Union[Web3Payment, _Mapping]] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., status: _Optional[_Union[SessionStatus, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ...) -> None: ...

class ListActiveDepositsResponse(_message.Message):
    __slots__ = ("deposits",)
    DEPOSITS_FIELD_NUMBER: _ClassVar[int]
    deposits: _containers.RepeatedCompositeFieldContainer[ActiveDeposit]
    def __init__(self, deposits: _Optional[_Iterable[_Union[ActiveDeposit, _Mapping]]] = ...) -> None: ...

class GetSessionByDepositAddressRequest(_message.Message):
    __slots__ = ("chain_id", "deposit_address")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    DEPOSIT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    chain_id: int
    deposit_address: str
    def __init__(self, chain_id: _Optional[int] = ..., deposit_address: _Optional[str] = ...) -> None: ...

class RaiseSessionAlertRequest(_message.Message):
    __slots__ = ("session_id", "code", "detail", "reference", "amount")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    code: str
    detail: str
    reference: str
    amount: _common_pb2.Money
    def __init__(self, session_id: _Optional[str] = ..., code: _Optional[str] = ..., detail: _Optional[str] = ..., reference: _Optional[str] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ...) -> None: ...

class SetProviderCheckoutRequest(_message.Message):
    __slots__ = ("session_id", "merchant_id", "provider_session_id", "provider_checkout_url", "mode")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_CHECKOUT_URL_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    merchant_id: str
    provider_session_id: str
    provider_checkout_url: str
    mode: _common_pb2.Mode
    def __init__(self, session_id: _Optional[str] = ..., merchant_id: _Optional[str] = ..., provider_session_id: _Optional[str] = ..., provider_checkout_url: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ...) -> None: ...

class SessionCustomer(_message.Message):
    __slots__ = ("name", "country", "address_lines", "vat_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_LINES_FIELD_NUMBER: _ClassVar[int]
    VAT_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    country: str
    address_lines: _containers.RepeatedScalarFieldContainer[str]
    vat_id: str
    def __init__(self, name: _Optional[str] = ..., country: _Optional[str] = ..., address_lines: _Optional[_Iterable[str]] = ..., vat_id: _Optional[str] = ...) -> None: ...

class RecordInboxReplayRequest(_message.Message):
    __slots__ = ("merchant_id", "mode", "actor", "inbox_event_id", "provider", "provider_event_id", "provider_event_type", "session_id", "inbox_status")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    INBOX_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    INBOX_STATUS_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    mode: _common_pb2.Mode
    actor: str
    inbox_event_id: str
    provider: str
    provider_event_id: str
    provider_event_type: str
    session_id: str
    inbox_status: str
    def __init__(self, merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., actor: _Optional[str] = ..., inbox_event_id: _Optional[str] = ..., provider: _Optional[str] = ..., provider_event_id: _Optional[str] = ..., provider_event_type: _Optional[str] = ..., session_id: _Optional[str] = ..., inbox_status: _Optional[str] = ...) -> None: ...

class RecordInboxReplayResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetSessionCustomerRequest(_message.Message):
    __slots__ = ("session_id", "merchant_id", "mode", "customer")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    merchant_id: str
    mode: _common_pb2.Mode
    customer: SessionCustomer
    def __init__(self, session_id: _Optional[str] = ..., merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., customer: _Optional[_Union[SessionCustomer, _Mapping]] = ...) -> None: ...
