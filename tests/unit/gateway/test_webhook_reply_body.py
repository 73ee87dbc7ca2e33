"""A webhook's 200 (contract §4) is written without aiohttp's JSON encoder (issue 16): it must stay the same
JSON for every event id, and the same text json_response wrote for the ids providers send."""

from __future__ import annotations

import json
import string

from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from webhook_gateway.entrypoints.webhook_intake import _received


@given(event_id=st.text(min_size=1, max_size=255), duplicate=st.booleans())
def test_the_reply_is_the_contracts_json_for_any_event_id(event_id: str, duplicate: bool) -> None:
    reply = _received(event_id, duplicate=duplicate)
    assert reply.body is not None and isinstance(reply.body, bytes)
    assert json.loads(reply.body) == {"received": True, "event_id": event_id, "duplicate": duplicate}
    assert reply.headers["Content-Type"] == "application/json; charset=utf-8"


@given(
    event_id=st.text(alphabet=string.printable, min_size=1, max_size=255),
    duplicate=st.booleans(),
)
def test_an_ascii_event_id_gets_the_bytes_json_response_wrote(event_id: str, duplicate: bool) -> None:
    before = web.json_response({"received": True, "event_id": event_id, "duplicate": duplicate})
    assert _received(event_id, duplicate=duplicate).body == before.body
