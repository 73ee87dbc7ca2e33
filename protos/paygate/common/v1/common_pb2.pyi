from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

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

class Address(_message.Message):
    __slots__ = ("lines", "country")
    LINES_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedScalarFieldContainer[str]
    country: str
    def __init__(self, lines: _Optional[_Iterable[str]] = ..., country: _Optional[str] = ...) -> None: ...
