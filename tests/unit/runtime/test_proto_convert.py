"""The one set of wire conversions (paygate_runtime.proto_convert) every service and the gateway use."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from paygate.billing.v1 import billing_pb2
from paygate.common.v1 import common_pb2
from paygate_runtime.errors import InvalidArgument
from paygate_runtime.money import Money
from paygate_runtime.proto_convert import (
    mode_enum,
    mode_name,
    optional_datetime,
    optional_money,
    timestamp,
    timestamp_of_epoch,
    to_datetime,
)


def test_modes_go_both_ways_and_unspecified_has_no_name() -> None:
    for name in ("test", "live"):
        assert mode_name(mode_enum(name)) == name
    assert mode_name(common_pb2.MODE_UNSPECIFIED) is None
    assert mode_name(99) is None
    with pytest.raises(ValueError):
        mode_enum("prod")


def test_timestamps_keep_the_instant_in_utc() -> None:
    moment = datetime(2026, 3, 1, 12, 30, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert to_datetime(timestamp(moment)) == moment
    assert to_datetime(timestamp(moment)).tzinfo == UTC
    assert to_datetime(timestamp_of_epoch(1_700_000_000)) == datetime.fromtimestamp(1_700_000_000, UTC)


def test_an_unset_timestamp_field_is_none() -> None:
    request = billing_pb2.ListInvoicesRequest()
    assert optional_datetime(request, "issued_from") is None
    request.issued_from.CopyFrom(timestamp(datetime(2026, 1, 1, tzinfo=UTC)))
    assert optional_datetime(request, "issued_from") == datetime(2026, 1, 1, tzinfo=UTC)


def test_wire_money_is_none_when_empty_and_refused_when_malformed() -> None:
    assert optional_money(common_pb2.Money()) is None
    assert optional_money(common_pb2.Money(amount_minor="1999", currency="eur", exponent=2)) == Money(
        1999, "EUR", 2
    )
    with pytest.raises(InvalidArgument):
        optional_money(common_pb2.Money(amount_minor="12.5", currency="EUR", exponent=2))


def test_mode_label_never_shows_an_unset_mode_as_live() -> None:
    from paygate.common.v1 import common_pb2
    from paygate_runtime.proto_convert import mode_label

    assert mode_label(common_pb2.MODE_LIVE) == "live"
    assert mode_label(common_pb2.MODE_TEST) == "test"
    assert mode_label(common_pb2.MODE_UNSPECIFIED) == "test"
    assert mode_label(99) == "test"


def test_timestamps_are_converted_only_here() -> None:
    # README "Layout": wire conversions live once, in proto_convert.py. A product module that calls
    # Timestamp's own converters builds its own reading of naive and aware datetimes beside this one.
    root = Path(__file__).resolve().parents[3]
    converters = re.compile(r"\.(FromDatetime|ToDatetime|FromSeconds|ToSeconds)\(")
    packages = ("paygate_runtime", "session_service", "billing_service", "keys_service", "webhook_gateway")
    calls = [
        f"{path.relative_to(root)}:{number}"
        for package in packages
        for path in sorted((root / package).rglob("*.py"))
        if path.name != "proto_convert.py" and "_pb2" not in path.name
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if converters.search(line)
    ]
    assert calls == []
