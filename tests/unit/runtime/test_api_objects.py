"""The merchant API's JSON objects (paygate_runtime.api_objects): one renderer, shared by the gateway and the
services whose merchant events carry the same object (contract §7), so no service imports another's code.

The byte-for-byte equality of an event's `data.object` with the API reply is tested end to end in
tests/integration/merchant_events/test_merchant_events_objects.py; here the exact JSON text of each object is
pinned, so a change to a renderer shows up as a change of the API, not only of the events."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp

from paygate.billing.v1 import billing_pb2
from paygate.common.v1 import common_pb2
from paygate.keys.v1 import keys_pb2
from paygate.session.v1 import session_pb2
from paygate_runtime import api_objects

ROOT = Path(__file__).resolve().parents[3]


def _contract(contract_id: str) -> dict[str, object]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return next(c for c in config["contracts"] if c["id"] == contract_id)


def test_no_cross_service_or_upward_import_is_let_through() -> None:
    """Merchant events once rendered their objects with the gateway's route modules and their own entrypoints'
    converters, let through by `ignore_imports`. The renderers now live in the runtime, the converters in the
    adapters: these two contracts hold with no exception."""
    assert "ignore_imports" not in _contract("services-independent")
    assert "ignore_imports" not in _contract("service-layers")


def _ts(text: str) -> Timestamp:
    stamp = Timestamp()
    stamp.FromJsonString(text)
    return stamp


def _text(body: object) -> str:
    return json.dumps(body, separators=(",", ":"))


def _money(minor: int, currency: str = "EUR", exponent: int = 2) -> common_pb2.Money:
    return common_pb2.Money(amount_minor=str(minor), currency=currency, exponent=exponent)


def test_every_object_shows_its_timestamps_in_milliseconds() -> None:
    """One format on every object: UTC, milliseconds, `Z` (a developer's walk found keys in microseconds or
    none beside everything else in milliseconds). Cut, not rounded: a key's expiry never reads later."""
    stamp = _ts("2026-03-04T05:06:07.123999Z")
    assert api_objects.iso(stamp) == "2026-03-04T05:06:07.123Z"
    assert api_objects.iso(stamp, present=False) is None
    assert api_objects.iso(_ts("2026-03-04T05:06:07Z")) == "2026-03-04T05:06:07.000Z"
    key = keys_pb2.ApiKey(created_at=stamp)
    assert api_objects.proto_time(key, "created_at") == "2026-03-04T05:06:07.123Z"
    assert api_objects.proto_time(keys_pb2.ApiKey(created_at=_ts("2026-03-04T05:06:07Z")), "created_at") == (
        "2026-03-04T05:06:07.000Z"
    )
    assert api_objects.proto_time(key, "revoked_at") is None
    moment = datetime(2026, 3, 4, 5, 6, 7, 123999, tzinfo=UTC)
    assert api_objects.utc_millis(moment) == "2026-03-04T05:06:07.123Z"
    assert (
        api_objects.utc_millis(moment.astimezone(timezone(timedelta(hours=2)))) == "2026-03-04T05:06:07.123Z"
    )


def test_session_detail_text() -> None:
    session = session_pb2.Session(
        id="s1",
        mode=common_pb2.MODE_LIVE,
        status=session_pb2.SESSION_STATUS_PAID,
        payment_status="paid",
        amount=_money(12345),
        provider="stripe",
        created_at=_ts("2026-01-02T03:04:05.678Z"),
        expires_at=_ts("2026-01-02T04:04:05Z"),
        paid_at=_ts("2026-01-02T03:10:00Z"),
        metadata={"order": "42"},
        customer_email="a@example.com",
        fulfilment_status="fulfilled",
        amount_refunded=_money(45),
        refunds=[
            session_pb2.Refund(
                id="r1",
                session_id="s1",
                amount=_money(45),
                credited=_money(45),
                status="succeeded",
                origin="api",
                credit_note_id="skipped:invoice_void",
                created_at=_ts("2026-01-03T00:00:00Z"),
            )
        ],
        history=[
            session_pb2.Transition(
                from_status=session_pb2.SESSION_STATUS_CREATED,
                to_status=session_pb2.SESSION_STATUS_PAID,
                at=_ts("2026-01-02T03:10:00Z"),
                source_event_id="evt_1",
            )
        ],
    )
    assert _text(api_objects.session_detail(session, None)) == (
        '{"id":"s1","object":"checkout.session","status":"paid","payment_status":"paid","amount":"123.45",'
        '"amount_minor":12345,"currency":"EUR","provider":"stripe","mode":"live","url":"/checkout?session=s1",'
        '"created_at":"2026-01-02T03:04:05.678Z","expires_at":"2026-01-02T04:04:05.000Z",'
        '"metadata":{"order":"42"},"scopes":["*"],"customer_email":"a@example.com","customer":null,'
        '"paid_at":"2026-01-02T03:10:00.000Z","invoice_id":null,"invoice_number":null,"api_key_id":null,'
        '"access_url":null,"fulfilment_status":"fulfilled","history":[{"from":"created","to":"paid",'
        '"at":"2026-01-02T03:10:00.000Z","source_event_id":"evt_1","note":null}],"alerts":[],'
        '"amount_refunded":"0.45","amount_refunded_minor":45,"refunds":[{"id":"r1","object":"refund",'
        '"session_id":"s1","amount":"0.45","amount_minor":45,"currency":"EUR","status":"succeeded",'
        '"origin":"api","provider_refund_id":null,"reason":null,"failure_reason":null,"replaced_by":null,"credited":"0.45","credited_minor":45,'
        '"credit_note_id":null,"credit_note_skipped":"invoice_void","credit_note_number":null,'
        '"created_at":"2026-01-03T00:00:00.000Z"}],"dispute_status":null,"dispute_kind":null}'
    )


def test_quarantine_entry_text() -> None:
    entry = session_pb2.QuarantineEntry(
        id="q1",
        session_id="s1",
        reason="overpaid",
        mode=common_pb2.MODE_TEST,
        provider="web3",
        provider_event_id="0xabc:1",
        amount=_money(1_500_000, "USDC", 6),
        expected=_money(1_000_000, "USDC", 6),
        surplus=_money(500_000, "USDC", 6),
        status="open",
        created_at=_ts("2026-01-02T03:04:05Z"),
    )
    assert _text(api_objects.quarantine_entry_json(entry)) == (
        '{"id":"q1","object":"quarantine_entry","session_id":"s1","reason":"overpaid","mode":"test",'
        '"provider":"web3","provider_event_id":"0xabc:1","provider_reference":null,'
        '"amount":{"amount":"1.500000","amount_minor":1500000,"currency":"USDC"},'
        '"expected":{"amount":"1.000000","amount_minor":1000000,"currency":"USDC"},'
        '"surplus":{"amount":"0.500000","amount_minor":500000,"currency":"USDC"},"status":"open","note":null,'
        '"resolution_note":null,"created_at":"2026-01-02T03:04:05.000Z","resolved_at":null}'
    )


def test_invoice_text() -> None:
    invoice = billing_pb2.Invoice(
        id="i1",
        kind=billing_pb2.DOCUMENT_KIND_CREDIT_NOTE,
        number="INV-2026-0001",
        session_id="s1",
        total=_money(1190, "JPY", 0),
        subtotal=_money(1000, "JPY", 0),
        tax=_money(190, "JPY", 0),
        tax_rate_bps=1900,
        issued_at=_ts("2026-01-02T03:04:05.6789Z"),
        status=billing_pb2.INVOICE_STATUS_VOID,
        mode=common_pb2.MODE_LIVE,
        sequence=1,
        seller=billing_pb2.Party(name="Acme", address=common_pb2.Address(lines=["1 Road"], country="DE")),
        line_items=[
            billing_pb2.LineItem(
                description="Thing",
                quantity=1,
                unit_amount=_money(1000, "JPY", 0),
                amount=_money(1000, "JPY", 0),
            )
        ],
        credits_invoice_id="i0",
    )
    assert _text(api_objects.invoice_json(invoice)) == (
        '{"id":"i1","object":"credit_note","number":"INV-2026-0001","session_id":"s1","amount":"1190",'
        '"amount_minor":1190,"currency":"JPY","issued_at":"2026-01-02T03:04:05.678Z","status":"void",'
        '"kind":"credit_note","mode":"live","sequence":1,"exponent":0,"subtotal":"1000","subtotal_minor":1000,'
        '"tax_rate_bps":1900,"tax":"190","tax_minor":190,"seller":{"name":"Acme","email":null,'
        '"address":{"lines":["1 Road"],"country":"DE"},"tax_id":null},"buyer":{"name":null,"email":null,'
        '"address":{"lines":[],"country":null},"tax_id":null},"line_items":[{"description":"Thing",'
        '"quantity":1,"unit_amount":"1000","unit_amount_minor":1000,"amount":"1000","amount_minor":1000,'
        '"gross_unit_amount":"1000","gross_unit_amount_minor":1000,"gross_amount":"1000","gross_amount_minor":1000}],'
        '"credits_invoice_id":"i0","credit_note_id":null,"pdf_url":"/v1/invoices/i1/pdf",'
        '"html_url":"/v1/invoices/i1/html"}'
    )


def test_api_key_text() -> None:
    key = keys_pb2.ApiKey(
        id="k1",
        prefix="ck_live_ab",
        hint="wxyz",
        status=keys_pb2.KEY_STATUS_REVOKED,
        mode=common_pb2.MODE_LIVE,
        session_id="s1",
        created_at=_ts("2026-01-02T03:04:05.5Z"),
        revoked_at=_ts("2026-01-03T00:00:00Z"),
        granted_scopes=["sessions:read"],
        scopes=["sessions:read"],
        ip_allowlist=["203.0.113.0/24"],
    )
    assert _text(api_objects.api_key_json(key)) == (
        '{"id":"k1","object":"api_key","prefix":"ck_live_ab","hint":"wxyz","status":"REVOKED","mode":"live",'
        '"session_id":"s1","revealed":false,"metadata":{},"rolled_from_id":null,'
        '"created_at":"2026-01-02T03:04:05.500Z","expires_at":null,"revoked_at":"2026-01-03T00:00:00.000Z",'
        '"last_used_at":null,"scopes":["sessions:read"],"granted_scopes":["sessions:read"],'
        '"ip_allowlist":["203.0.113.0/24"]}'
    )
