"""The webhook body parser (providers/payload.py) reads with msgspec for speed (issue 16) and must accept,
value and refuse exactly what the standard library's json does with parse_float=Decimal: a differential test
over generated JSON and over arbitrary JSON-like text."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from webhook_gateway.providers.errors import WebhookRejected
from webhook_gateway.providers.normalized import NormalizedEvent
from webhook_gateway.providers.normalized_json import dump_normalized, storable_normalized
from webhook_gateway.providers.payload import parse_json_object


def _reject_constant(name: str) -> None:
    raise ValueError(name)


def reference(text: str) -> tuple[str, Any]:
    """What json alone made of a body before msgspec: ("ok", value) or ("refused", code)."""
    try:
        value = json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return ("refused", "invalid_json")
    if not isinstance(value, dict):
        return ("refused", "not_an_object")
    return ("ok", value)


def parsed(text: str) -> tuple[str, Any]:
    try:
        return ("ok", parse_json_object(text))
    except WebhookRejected as rejected:
        return ("refused", rejected.code)


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1 == Decimal(1) == True would hide a change); Decimals
    compare by their exact representation (sign of zero, exponent)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Decimal):
        return a.as_tuple() == b.as_tuple()
    return bool(a == b)


def agree(text: str) -> None:
    mine, theirs = parsed(text), reference(text)
    assert mine[0] == theirs[0], (text, mine, theirs)
    assert same(mine[1], theirs[1]), (text, mine, theirs)


numbers = (
    st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.decimals(allow_nan=False, allow_infinity=False).map(str)
    | st.floats(allow_nan=False, allow_infinity=False).map(repr)
)
scalars = st.none() | st.booleans() | st.text(max_size=12) | numbers
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=25,
)


def _dump(value: Any) -> str:
    # Text that reads as a number (the drawn decimals and floats) is written bare, as a JSON number; a drawn
    # text that Decimal also reads (such as "1_0") is then invalid JSON, which both parsers must refuse alike.
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dump(v) for v in value) + "]"
    if isinstance(value, str) and value.lstrip("-")[:1].isdigit():
        try:
            Decimal(value)
        except ArithmeticError:
            return json.dumps(value)
        return value
    return json.dumps(value)


@given(body=st.dictionaries(st.text(max_size=6), values, max_size=5), ascii_only=st.booleans())
def test_generated_bodies_parse_to_the_same_values(body: dict[str, Any], ascii_only: bool) -> None:
    text = _dump(body)
    agree(text if not ascii_only else text.encode("ascii", "backslashreplace").decode())


@given(text=st.text(alphabet='{}[]":,.-+eE0123456789 \\nulltrfasu\u00e9\U0001f600', max_size=80))
@example(text='{"a": "\\ud800"}')  # an unpaired surrogate escape: json accepts it, msgspec does not
@example(text='{"a": 1, "a": 2, "b": 3}')  # duplicate keys: the last value, in the first key's place
@example(text='{"a": NaN}')
@example(text='{"a": 1e400, "b": -0.0, "c": 123456789012345678901234567890, "d": 1E2}')
@example(text="\ufeff{}")
@example(text='{"a": "\x01"}')
@example(text="[1]")
@example(text="[" * 5000 + "]" * 5000)
def test_any_text_is_accepted_or_refused_as_json_alone_did(text: str) -> None:
    agree(text)


def test_deep_nesting_is_accepted_or_refused_as_json_alone_did() -> None:
    for depth in (300, 900, 5000):
        text = '{"a":' * depth + "1" + "}" * depth
        mine, theirs = parsed(text), reference(text)
        assert mine[0] == theirs[0]
        if mine[0] == "ok":
            assert json.dumps(mine[1]) == json.dumps(theirs[1])


# --- the stored normalised form (providers/normalized_json.py) --------------------------------------------

texts = st.text(max_size=12) | st.sampled_from(["a\ud800b", "x\x00", "\u2028", "é😀", '"\\'])


@given(
    reference=st.none() | texts,
    event_id=texts,
    amount=st.none() | st.integers(min_value=0, max_value=10**77),
)
def test_the_stored_form_is_the_text_the_standard_encoder_wrote(
    reference: str | None, event_id: str, amount: int | None
) -> None:
    currency = None if amount is None else "EUR"
    event = NormalizedEvent(
        provider="stripe",
        event_id=event_id,
        event_type="checkout.session.completed",
        kind="succeeded",
        session_id=None,
        provider_reference=reference,
        amount_minor=amount,
        currency=currency,
        exponent=2,
        livemode=False,
        occurred_at=datetime(2026, 12, 6, 5, 0, tzinfo=UTC),
        ignore_reason=None,
    )
    standard = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
    written = dump_normalized(event)
    before = standard.encode(
        {
            "v": 2, "provider": "stripe", "event_id": event_id, "event_type": "checkout.session.completed",
            "kind": "succeeded", "ignore_reason": None, "session_id": None, "provider_reference": reference,
            "amount_minor": None if amount is None else str(amount), "currency": currency, "exponent": 2,
            "livemode": False, "occurred_at": "2026-12-06T05:00:00+00:00",
        }
    )  # fmt: skip
    assert written == before
    # NUL (escaped) and an unpaired surrogate (written raw) are refused, as before.
    assert storable_normalized(event) == (None if "\\u0000" in before or "\ud800" in before else before)
