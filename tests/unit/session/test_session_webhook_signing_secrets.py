"""Which secrets sign a merchant webhook delivery (contract §7): the current one, every rolled one still before
the end its roll promised (newest first), and one a previous release left in the old columns; never an ended
one, each once."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from paygate_runtime.crypto.secret_box import SecretBoxError
from session_service.service_layer.merchant_events import load_secret_box, seal_secret
from session_service.service_layer.webhook_delivery import signing_secrets

BOX = load_secret_box(base64.b64encode(b"k" * 32).decode())
ENDPOINT = uuid.UUID(int=7)
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _row(
    current: str | None, previous: list[tuple[str, datetime]], legacy: tuple[str, datetime] | None = None
) -> Any:
    return {
        "endpoint_id": ENDPOINT,
        "secret": None,
        "secret_sealed": seal_secret(BOX, ENDPOINT, current) if current else None,
        "previous_secret": None,
        "previous_secret_sealed": seal_secret(BOX, ENDPOINT, legacy[0]) if legacy else None,
        "previous_secret_expires_at": legacy[1] if legacy else None,
        "previous_secrets_sealed": [seal_secret(BOX, ENDPOINT, s) for s, _ in previous],
        "previous_secrets_expire_at": [e for _, e in previous],
    }


def test_every_previous_secret_before_its_end_signs_after_the_current_one() -> None:
    later = NOW + timedelta(hours=1)
    row = _row("s3", [("s2", later), ("s1", NOW + timedelta(hours=24)), ("s0", NOW - timedelta(seconds=1))])
    assert signing_secrets(BOX, row, NOW) == ["s3", "s2", "s1"]


def test_a_legacy_column_secret_signs_too_and_each_secret_once() -> None:
    later = NOW + timedelta(hours=1)
    row = _row("s2", [("s1", later)], legacy=("s0", later))
    assert signing_secrets(BOX, row, NOW) == ["s2", "s1", "s0"]
    row = _row("s2", [("s1", later)], legacy=("s1", later))
    assert signing_secrets(BOX, row, NOW) == ["s2", "s1"]
    row = _row("s2", [], legacy=("s0", NOW))
    assert signing_secrets(BOX, row, NOW) == ["s2"]


def test_no_current_secret_is_refused() -> None:
    with pytest.raises(SecretBoxError):
        signing_secrets(BOX, _row(None, []), NOW)
