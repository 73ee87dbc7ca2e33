from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Mode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODE_UNSPECIFIED: _ClassVar[Mode]
    MODE_TEST: _ClassVar[Mode]
    MODE_LIVE: _ClassVar[Mode]
MODE_UNSPECIFIED: Mode
MODE_TEST: Mode
MODE_LIVE: Mode

class Money(_message.Message):
    __slots__ = ("amount_minor", "currency", "exponent")
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    EXPONENT_FIELD_NUMBER: _ClassVar[int]
    amount_minor: str
    currency: str
    exponent: int
    def __init__(self, amount_minor: _Optional[str] = ..., currency: _Optional[str] = ..., exponent: _Optional[int] = ...) -> None: ...

class ItemError(_message.Message):
    __slots__ = ("status", "code", "message")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    status: int
    code: str
    message: str
    def __init__(self, status: _Optional[int] = ..., code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Address(_message.Message):
    __slots__ = ("lines", "country")
    LINES_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedScalarFieldContainer[str]
    country: str
    def __init__(self, lines: _Optional[_Iterable[str]] = ..., country: _Optional[str] = ...) -> None: ...

class AuditEntry(_message.Message):
    __slots__ = ("id", "service", "action", "object_type", "object_id", "at_us", "actor", "hash", "prev_hash", "mode", "sequence", "canonical", "canonical_version")
    ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    OBJECT_TYPE_FIELD_NUMBER: _ClassVar[int]
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    AT_US_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    PREV_HASH_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CANONICAL_FIELD_NUMBER: _ClassVar[int]
    CANONICAL_VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    service: str
    action: str
    object_type: str
    object_id: str
    at_us: int
    actor: str
    hash: str
    prev_hash: str
    mode: str
    sequence: int
    canonical: str
    canonical_version: str
    def __init__(self, id: _Optional[str] = ..., service: _Optional[str] = ..., action: _Optional[str] = ..., object_type: _Optional[str] = ..., object_id: _Optional[str] = ..., at_us: _Optional[int] = ..., actor: _Optional[str] = ..., hash: _Optional[str] = ..., prev_hash: _Optional[str] = ..., mode: _Optional[str] = ..., sequence: _Optional[int] = ..., canonical: _Optional[str] = ..., canonical_version: _Optional[str] = ...) -> None: ...

class ListAuditEntriesRequest(_message.Message):
    __slots__ = ("merchant_id", "mode", "limit", "has_before", "before_at_us", "before_service", "before_row_id", "starting_after_row_id")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    HAS_BEFORE_FIELD_NUMBER: _ClassVar[int]
    BEFORE_AT_US_FIELD_NUMBER: _ClassVar[int]
    BEFORE_SERVICE_FIELD_NUMBER: _ClassVar[int]
    BEFORE_ROW_ID_FIELD_NUMBER: _ClassVar[int]
    STARTING_AFTER_ROW_ID_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    mode: str
    limit: int
    has_before: bool
    before_at_us: int
    before_service: str
    before_row_id: int
    starting_after_row_id: int
    def __init__(self, merchant_id: _Optional[str] = ..., mode: _Optional[str] = ..., limit: _Optional[int] = ..., has_before: _Optional[bool] = ..., before_at_us: _Optional[int] = ..., before_service: _Optional[str] = ..., before_row_id: _Optional[int] = ..., starting_after_row_id: _Optional[int] = ...) -> None: ...

class ListAuditEntriesResponse(_message.Message):
    __slots__ = ("entries", "cursor_at_us")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    CURSOR_AT_US_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[AuditEntry]
    cursor_at_us: int
    def __init__(self, entries: _Optional[_Iterable[_Union[AuditEntry, _Mapping]]] = ..., cursor_at_us: _Optional[int] = ...) -> None: ...
