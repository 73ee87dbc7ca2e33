import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from paygate.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WebhookEndpoint(_message.Message):
    __slots__ = ("id", "url", "events", "description", "status", "secret", "mode", "created_at", "updated_at", "disabled_reason", "previous_secret_expires_at", "failing_since", "replayed", "previous_secrets_expire_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    DISABLED_REASON_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_SECRET_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    FAILING_SINCE_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_SECRETS_EXPIRE_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    url: str
    events: _containers.RepeatedScalarFieldContainer[str]
    description: str
    status: str
    secret: str
    mode: _common_pb2.Mode
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    disabled_reason: str
    previous_secret_expires_at: _timestamp_pb2.Timestamp
    failing_since: _timestamp_pb2.Timestamp
    replayed: bool
    previous_secrets_expire_at: _containers.RepeatedCompositeFieldContainer[_timestamp_pb2.Timestamp]
    def __init__(self, id: _Optional[str] = ..., url: _Optional[str] = ..., events: _Optional[_Iterable[str]] = ..., description: _Optional[str] = ..., status: _Optional[str] = ..., secret: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., disabled_reason: _Optional[str] = ..., previous_secret_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., failing_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., replayed: _Optional[bool] = ..., previous_secrets_expire_at: _Optional[_Iterable[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]]] = ...) -> None: ...

class WebhookEndpointRef(_message.Message):
    __slots__ = ("merchant_id", "mode", "endpoint_id", "actor")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    mode: _common_pb2.Mode
    endpoint_id: str
    actor: str
    def __init__(self, merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., endpoint_id: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class CreateWebhookEndpointRequest(_message.Message):
    __slots__ = ("merchant_id", "mode", "url", "events", "description", "idempotency_key", "request_fingerprint", "actor")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    mode: _common_pb2.Mode
    url: str
    events: _containers.RepeatedScalarFieldContainer[str]
    description: str
    idempotency_key: str
    request_fingerprint: str
    actor: str
    def __init__(self, merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., url: _Optional[str] = ..., events: _Optional[_Iterable[str]] = ..., description: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., request_fingerprint: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class ListWebhookEndpointsRequest(_message.Message):
    __slots__ = ("merchant_id", "mode", "limit", "starting_after")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    STARTING_AFTER_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    mode: _common_pb2.Mode
    limit: int
    starting_after: str
    def __init__(self, merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., limit: _Optional[int] = ..., starting_after: _Optional[str] = ...) -> None: ...

class ListWebhookEndpointsResponse(_message.Message):
    __slots__ = ("endpoints", "has_more")
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    endpoints: _containers.RepeatedCompositeFieldContainer[WebhookEndpoint]
    has_more: bool
    def __init__(self, endpoints: _Optional[_Iterable[_Union[WebhookEndpoint, _Mapping]]] = ..., has_more: _Optional[bool] = ...) -> None: ...

class UpdateWebhookEndpointRequest(_message.Message):
    __slots__ = ("merchant_id", "mode", "endpoint_id", "url", "set_events", "events", "description", "status", "actor")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    SET_EVENTS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    mode: _common_pb2.Mode
    endpoint_id: str
    url: str
    set_events: bool
    events: _containers.RepeatedScalarFieldContainer[str]
    description: str
    status: str
    actor: str
    def __init__(self, merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., endpoint_id: _Optional[str] = ..., url: _Optional[str] = ..., set_events: _Optional[bool] = ..., events: _Optional[_Iterable[str]] = ..., description: _Optional[str] = ..., status: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class RollWebhookSecretRequest(_message.Message):
    __slots__ = ("merchant_id", "mode", "endpoint_id", "overlap_seconds", "actor")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    mode: _common_pb2.Mode
    endpoint_id: str
    overlap_seconds: int
    actor: str
    def __init__(self, merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., endpoint_id: _Optional[str] = ..., overlap_seconds: _Optional[int] = ..., actor: _Optional[str] = ...) -> None: ...

class WebhookDeliveryAttempt(_message.Message):
    __slots__ = ("id", "endpoint_id", "event_id", "event_type", "attempt", "status_code", "error", "at", "next_attempt_at", "delivered", "latency_ms", "response_body")
    ID_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_BODY_FIELD_NUMBER: _ClassVar[int]
    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    attempt: int
    status_code: int
    error: str
    at: _timestamp_pb2.Timestamp
    next_attempt_at: _timestamp_pb2.Timestamp
    delivered: bool
    latency_ms: int
    response_body: str
    def __init__(self, id: _Optional[str] = ..., endpoint_id: _Optional[str] = ..., event_id: _Optional[str] = ..., event_type: _Optional[str] = ..., attempt: _Optional[int] = ..., status_code: _Optional[int] = ..., error: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_attempt_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., delivered: _Optional[bool] = ..., latency_ms: _Optional[int] = ..., response_body: _Optional[str] = ...) -> None: ...

class ListWebhookDeliveriesRequest(_message.Message):
    __slots__ = ("merchant_id", "mode", "endpoint_id", "event_id", "limit", "starting_after")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    STARTING_AFTER_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    mode: _common_pb2.Mode
    endpoint_id: str
    event_id: str
    limit: int
    starting_after: str
    def __init__(self, merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., endpoint_id: _Optional[str] = ..., event_id: _Optional[str] = ..., limit: _Optional[int] = ..., starting_after: _Optional[str] = ...) -> None: ...

class ListWebhookDeliveriesResponse(_message.Message):
    __slots__ = ("attempts", "has_more")
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    attempts: _containers.RepeatedCompositeFieldContainer[WebhookDeliveryAttempt]
    has_more: bool
    def __init__(self, attempts: _Optional[_Iterable[_Union[WebhookDeliveryAttempt, _Mapping]]] = ..., has_more: _Optional[bool] = ...) -> None: ...

class MerchantEvent(_message.Message):
    __slots__ = ("id", "type", "mode", "created", "body_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    BODY_JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: str
    mode: _common_pb2.Mode
    created: _timestamp_pb2.Timestamp
    body_json: str
    def __init__(self, id: _Optional[str] = ..., type: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., body_json: _Optional[str] = ...) -> None: ...

class ListMerchantEventsRequest(_message.Message):
    __slots__ = ("merchant_id", "mode", "type", "limit", "starting_after")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    STARTING_AFTER_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    mode: _common_pb2.Mode
    type: str
    limit: int
    starting_after: str
    def __init__(self, merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., type: _Optional[str] = ..., limit: _Optional[int] = ..., starting_after: _Optional[str] = ...) -> None: ...

class ListMerchantEventsResponse(_message.Message):
    __slots__ = ("events", "has_more")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[MerchantEvent]
    has_more: bool
    def __init__(self, events: _Optional[_Iterable[_Union[MerchantEvent, _Mapping]]] = ..., has_more: _Optional[bool] = ...) -> None: ...

class RedeliverMerchantEventRequest(_message.Message):
    __slots__ = ("merchant_id", "mode", "event_id", "endpoint_id", "actor")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    mode: _common_pb2.Mode
    event_id: str
    endpoint_id: str
    actor: str
    def __init__(self, merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., event_id: _Optional[str] = ..., endpoint_id: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class RedeliverMerchantEventResponse(_message.Message):
    __slots__ = ("event_id", "endpoint_id", "next_attempt_at")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    endpoint_id: str
    next_attempt_at: _timestamp_pb2.Timestamp
    def __init__(self, event_id: _Optional[str] = ..., endpoint_id: _Optional[str] = ..., next_attempt_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RecordMerchantEventRequest(_message.Message):
    __slots__ = ("merchant_id", "mode", "type", "object_id", "object_json", "source_key")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_JSON_FIELD_NUMBER: _ClassVar[int]
    SOURCE_KEY_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    mode: _common_pb2.Mode
    type: str
    object_id: str
    object_json: str
    source_key: str
    def __init__(self, merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., type: _Optional[str] = ..., object_id: _Optional[str] = ..., object_json: _Optional[str] = ..., source_key: _Optional[str] = ...) -> None: ...
