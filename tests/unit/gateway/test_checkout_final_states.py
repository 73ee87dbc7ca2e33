"""The checkout page's final states are the session state machine's terminal states (contract §6), and the
page says each one in words of its own."""

from __future__ import annotations

import json
import re

from paygate.common.v1 import common_pb2
from paygate.session.v1 import session_pb2
from paygate_runtime.api_objects import STATUS_BY_NAME
from session_service.domain.states import TERMINAL
from webhook_gateway.entrypoints.routes_checkout import FINAL_STATUSES, page_context, templates


def test_final_statuses_are_the_state_machines_terminal_ones() -> None:
    assert set(FINAL_STATUSES) == {status.value for status in TERMINAL}


def _page(status: str) -> str:
    session = session_pb2.Session(
        id="00000000-0000-0000-0000-0000000000aa",
        merchant_id="m",
        status=STATUS_BY_NAME[status],
        provider="onecom",
        mode=common_pb2.MODE_TEST,
        amount=common_pb2.Money(amount_minor="1000", currency="EUR", exponent=2),
    )
    return (
        templates()
        .get_template("checkout.html")
        .render(nonce="n", **page_context(session, "Shop", None, None))
    )


def test_every_final_state_has_a_visible_notice_and_stops_the_script() -> None:
    for status in FINAL_STATUSES:
        html = _page(status)
        notices = re.findall(r'<section class="notice" data-show-in="([a-z ]+)"( hidden)?>', html)
        shown = [names for names, hidden in notices if not hidden]
        assert any(status in names.split() for names in shown), (status, notices)
        final = json.loads(re.search(r"var finalStates = (\[[^\]]*\]);", html).group(1))  # type: ignore[union-attr]
        assert sorted(final) == sorted(FINAL_STATUSES)
    assert '<section class="notice" data-show-in="pending" hidden>' in _page("created")
