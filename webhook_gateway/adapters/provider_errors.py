"""The error every provider API adapter raises (Stripe Checkout, One.com), so callers treat them alike."""

from __future__ import annotations


class ProviderError(Exception):
    """A provider did not do what we asked.

    `code` is the stable code shown to merchants: `provider_unavailable` (network, timeout, 5xx, an open
    circuit: worth retrying later), `provider_rejected` (the provider refused the request or our key),
    `provider_mode_mismatch`, `provider_window_closed`, `provider_session_complete` (the customer already
    paid, so the page or payment can no longer be closed), `provider_not_configured`.
    `provider_code` is the provider's own error code when it sent one.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        transient: bool,
        provider_code: str | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.transient = transient
        self.provider_code = provider_code
        self.http_status = http_status
