"""Names of the keys service's audit events. Rows never carry a secret: ids, hints and modes only."""

from __future__ import annotations

from enum import StrEnum


class AuditEvent(StrEnum):
    MERCHANT_CREATED = "MERCHANT_CREATED"
    MERCHANT_SECRET_KEY_CREATED = "MERCHANT_SECRET_KEY_CREATED"
    API_KEY_CREATED = "API_KEY_CREATED"
    API_KEY_REVEALED = "API_KEY_REVEALED"
    API_KEY_ROLLED = "API_KEY_ROLLED"
    API_KEY_REVOKED = "API_KEY_REVOKED"
    ACCESS_TOKEN_ISSUED = "ACCESS_TOKEN_ISSUED"
    ACCESS_TOKEN_REVOKED = "ACCESS_TOKEN_REVOKED"
