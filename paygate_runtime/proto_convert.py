"""The one set of conversions between the shared wire types (paygate.common.v1, protobuf Timestamp) and Python.

Every service and the gateway used to write these themselves (a Timestamp from a datetime in eight places,
mode enum tables in six); a difference between two copies is a bug on one side of an RPC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal, Protocol

from google.protobuf.timestamp_pb2 import Timestamp

from paygate.common.v1 import common_pb2
from paygate_runtime.money import Money

ModeName = Literal["test", "live"]

_NAME_OF_MODE: dict[int, ModeName] = {common_pb2.MODE_TEST: "test", common_pb2.MODE_LIVE: "live"}
_MODE_OF_NAME: dict[str, common_pb2.Mode] = {
    "test": common_pb2.MODE_TEST,
    "live": common_pb2.MODE_LIVE,
}


class _HasFields(Protocol):
    def HasField(self, field_name: str) -> bool: ...


def mode_name(value: int) -> ModeName | None:
    """ "test" or "live" for the wire enum; None for MODE_UNSPECIFIED or a value this build does not know
    (each caller decides whether that means "either mode", "test" or a refusal)."""
    return _NAME_OF_MODE.get(value)


def mode_label(value: int) -> ModeName:
    """The name an object shows for its wire mode: anything but live (unspecified included) reads as "test",
    so an unset field can never make something look live."""
    return "live" if value == common_pb2.MODE_LIVE else "test"


def mode_enum(name: str) -> common_pb2.Mode:
    """The wire enum of "test" or "live"; anything else is a programming error (modes are checked on entry)."""
    try:
        return _MODE_OF_NAME[str(name)]
    except KeyError:
        raise ValueError(f"unknown mode {name!r}") from None


def timestamp(moment: datetime) -> Timestamp:
    """A Timestamp of a datetime (an aware one is converted to UTC; a naive one is read as UTC, as protobuf
    does)."""
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def timestamp_of_epoch(seconds: int) -> Timestamp:
    return timestamp(datetime.fromtimestamp(seconds, UTC))


def to_datetime(stamp: Timestamp) -> datetime:
    """The aware UTC datetime of a Timestamp."""
    return stamp.ToDatetime(tzinfo=UTC)


def optional_datetime(message: _HasFields, field: str) -> datetime | None:
    """The field's UTC datetime, or None when the message leaves the Timestamp unset."""
    if not message.HasField(field):
        return None
    stamp: Timestamp = getattr(message, field)
    return to_datetime(stamp)


def money_message(money: Money) -> common_pb2.Money:
    return common_pb2.Money(
        amount_minor=str(money.amount_minor), currency=money.currency, exponent=money.exponent
    )


def optional_money(wire: common_pb2.Money) -> Money | None:
    """The Money of a wire amount, or None for an empty one (amount_minor ""); a malformed amount is refused
    with InvalidArgument by `Money.from_wire`."""
    if not wire.amount_minor:
        return None
    return Money.from_wire(wire.amount_minor, wire.currency, wire.exponent)
