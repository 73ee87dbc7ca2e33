"""Why a webhook delivery was refused before anything was stored."""

from __future__ import annotations

from typing import Final, Literal

RejectionCode = Literal[
    "missing_signature",
    "invalid_signature",
    "timestamp_out_of_tolerance",
    "invalid_json",
    "not_an_object",
    "missing_event_id",
]

REJECTION_CODES: Final[frozenset[str]] = frozenset(
    {
        "missing_signature",
        "invalid_signature",
        "timestamp_out_of_tolerance",
        "invalid_json",
        "not_an_object",
        "missing_event_id",
    }
)


class WebhookRejected(Exception):
    """The delivery is not a verified event: answer 400 with `code` and store nothing."""

    http_status: Final[int] = 400

    def __init__(self, code: RejectionCode, message: str) -> None:
        if code not in REJECTION_CODES:
            raise ValueError(f"unknown rejection code {code!r}")
        super().__init__(f"{code}: {message}")
        self.code: RejectionCode = code
        self.message = message
