"""Stored customer keys rendered as the `keys.v1.ApiKey` message.

An adapter (a row to a wire message, no I/O) so that both the gRPC servicer, which replies with it, and the
merchant event forwarder, which renders the key's `data.object` from it (through
`paygate_runtime.api_objects.api_key_json`, as the gateway does), use the one conversion.
"""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from keys_service.adapters.api_key_repository import StoredApiKey
from keys_service.domain.key_status import KeyStatus
from paygate.keys.v1 import keys_pb2
from paygate_runtime import proto_convert
from paygate_runtime.proto_convert import mode_enum

KEY_STATUS_ENUM = {
    KeyStatus.VALID: keys_pb2.KEY_STATUS_VALID,
    KeyStatus.NOT_FOUND: keys_pb2.KEY_STATUS_NOT_FOUND,
    KeyStatus.EXPIRED: keys_pb2.KEY_STATUS_EXPIRED,
    KeyStatus.REVOKED: keys_pb2.KEY_STATUS_REVOKED,
    KeyStatus.SUSPENDED: keys_pb2.KEY_STATUS_SUSPENDED,
    KeyStatus.IP_NOT_ALLOWED: keys_pb2.KEY_STATUS_IP_NOT_ALLOWED,
}


def timestamp(value: datetime) -> Timestamp:
    return proto_convert.timestamp(value)


def api_key_message(key: StoredApiKey, now: datetime | None = None) -> keys_pb2.ApiKey:
    """The key as of `now` (default: the current time); its status depends on when it is read."""
    message = keys_pb2.ApiKey(
        id=key.id,
        merchant_id=key.merchant_id,
        session_id=key.session_id,
        mode=mode_enum(key.mode),
        prefix=key.prefix,
        hint=key.hint,
        status=KEY_STATUS_ENUM[key.status_at(now or datetime.now(UTC))],
        created_at=timestamp(key.created_at),
        revealed=key.revealed_at is not None,
        metadata=key.metadata,
        rolled_from_id=key.rolled_from_id or "",
        scopes=key.scopes,
        granted_scopes=key.granted_scopes,
        ip_allowlist=[str(n) for n in key.ip_allowlist],
    )
    if key.expires_at is not None:
        message.expires_at.CopyFrom(timestamp(key.expires_at))
    if key.revoked_at is not None:
        message.revoked_at.CopyFrom(timestamp(key.revoked_at))
    if key.last_used_at is not None:
        message.last_used_at.CopyFrom(timestamp(key.last_used_at))
    return message
