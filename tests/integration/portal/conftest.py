"""Portal tests run a test-started stack of the real services (separate processes, real Postgres, gRPC and
HTTP) with a local SMTP sink, so the contact form's mail can be read back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from paygate_dev.smtp_sink import SmtpSink
from support.mail import portal_stack_env, running_smtp_sink


@pytest.fixture
async def smtp_sink(tmp_path: Path) -> AsyncIterator[SmtpSink]:
    async with running_smtp_sink(tmp_path / "mail") as sink:
        yield sink


@pytest.fixture
def stack_env(smtp_sink: SmtpSink) -> dict[str, str]:
    # Usage counts reach the database quickly in tests.
    return {**portal_stack_env(smtp_sink.port), "PAYGATE_KEYS_USAGE_FLUSH_MS": "100"}
