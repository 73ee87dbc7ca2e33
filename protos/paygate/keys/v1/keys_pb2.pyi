import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from paygate.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class KeyStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KEY_STATUS_UNSPECIFIED: _ClassVar[KeyStatus]
    KEY_STATUS_VALID: _ClassVar[KeyStatus]
    KEY_STATUS_NOT_FOUND: _ClassVar[KeyStatus]
    KEY_STATUS_EXPIRED: _ClassVar[KeyStatus]
    KEY_STATUS_REVOKED: _ClassVar[KeyStatus]
KEY_STATUS_UNSPECIFIED: KeyStatus
KEY_STATUS_VALID: KeyStatus
KEY_STATUS_NOT_FOUND: KeyStatus
KEY_STATUS_EXPIRED: KeyStatus
KEY_STATUS_REVOKED: KeyStatus

class Merchant(_message.Message):
    __slots__ = ("id", "name", "key_prefix", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KEY_PREFIX_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    key_prefix: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., key_prefix: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateMerchantRequest(_message.Message):
    __slots__ = ("name", "key_prefix", "mode", "idempotency_key")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KEY_PREFIX_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    name: str
    key_prefix: str
    mode: _common_pb2.Mode
    idempotency_key: str
    def __init__(self, name: _Optional[str] = ..., key_prefix: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class CreateMerchantResponse(_message.Message):
    __slots__ = ("merchant", "secret_key", "secret_key_id")
    MERCHANT_FIELD_NUMBER: _ClassVar[int]
    SECRET_KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    merchant: Merchant
    secret_key: str
    secret_key_id: str
    def __init__(self, merchant: _Optional[_Union[Merchant, _Mapping]] = ..., secret_key: _Optional[str] = ..., secret_key_id: _Optional[str] = ...) -> None: ...

class GetMerchantRequest(_message.Message):
    __slots__ = ("merchant_id",)
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    def __init__(self, merchant_id: _Optional[str] = ...) -> None: ...

class CreateMerchantSecretKeyRequest(_message.Message):
    __slots__ = ("merchant_id", "mode", "idempotency_key")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    mode: _common_pb2.Mode
    idempotency_key: str
    def __init__(self, merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class CreateMerchantSecretKeyResponse(_message.Message):
    __slots__ = ("secret_key", "secret_key_id")
    SECRET_KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    secret_key: str
    secret_key_id: str
    def __init__(self, secret_key: _Optional[str] = ..., secret_key_id: _Optional[str] = ...) -> None: ...

class AuthenticateMerchantRequest(_message.Message):
    __slots__ = ("secret_key",)
    SECRET_KEY_FIELD_NUMBER: _ClassVar[int]
    secret_key: str
    def __init__(self, secret_key: _Optional[str] = ...) -> None: ...

class AuthenticateMerchantResponse(_message.Message):
    __slots__ = ("merchant", "mode", "secret_key_id")
    MERCHANT_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SECRET_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    merchant: Merchant
    mode: _common_pb2.Mode
    secret_key_id: str
    def __init__(self, merchant: _Optional[_Union[Merchant, _Mapping]] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., secret_key_id: _Optional[str] = ...) -> None: ...

class ApiKey(_message.Message):
    __slots__ = ("id", "merchant_id", "session_id", "mode", "prefix", "hint", "status", "created_at", "expires_at", "revoked_at", "last_used_at", "revealed", "metadata", "rolled_from_id")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    HINT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_AT_FIELD_NUMBER: _ClassVar[int]
    REVEALED_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    ROLLED_FROM_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    merchant_id: str
    session_id: str
    mode: _common_pb2.Mode
    prefix: str
    hint: str
    status: KeyStatus
    created_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    revoked_at: _timestamp_pb2.Timestamp
    last_used_at: _timestamp_pb2.Timestamp
    revealed: bool
    metadata: _containers.ScalarMap[str, str]
    rolled_from_id: str
    def __init__(self, id: _Optional[str] = ..., merchant_id: _Optional[str] = ..., session_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., prefix: _Optional[str] = ..., hint: _Optional[str] = ..., status: _Optional[_Union[KeyStatus, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_used_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revealed: _Optional[bool] = ..., metadata: _Optional[_Mapping[str, str]] = ..., rolled_from_id: _Optional[str] = ...) -> None: ...

class IssueCustomerKeyRequest(_message.Message):
    __slots__ = ("merchant_id", "mode", "session_id", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    mode: _common_pb2.Mode
    session_id: str
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., session_id: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class RevealCustomerKeyRequest(_message.Message):
    __slots__ = ("session_id", "access_token_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    access_token_id: str
    def __init__(self, session_id: _Optional[str] = ..., access_token_id: _Optional[str] = ...) -> None: ...

class RevealCustomerKeyResponse(_message.Message):
    __slots__ = ("key", "secret")
    KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    key: ApiKey
    secret: str
    def __init__(self, key: _Optional[_Union[ApiKey, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class GetCustomerKeyRequest(_message.Message):
    __slots__ = ("session_id", "merchant_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    merchant_id: str
    def __init__(self, session_id: _Optional[str] = ..., merchant_id: _Optional[str] = ...) -> None: ...

class VerifyKeyRequest(_message.Message):
    __slots__ = ("key", "merchant_id", "mode")
    KEY_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    key: str
    merchant_id: str
    mode: _common_pb2.Mode
    def __init__(self, key: _Optional[str] = ..., merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ...) -> None: ...

class VerifyKeyResponse(_message.Message):
    __slots__ = ("status", "key_id", "merchant_id", "session_id", "mode")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    status: KeyStatus
    key_id: str
    merchant_id: str
    session_id: str
    mode: _common_pb2.Mode
    def __init__(self, status: _Optional[_Union[KeyStatus, str]] = ..., key_id: _Optional[str] = ..., merchant_id: _Optional[str] = ..., session_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ...) -> None: ...

class RollKeyRequest(_message.Message):
    __slots__ = ("merchant_id", "key_id", "grace_period_seconds", "idempotency_key", "mode")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    GRACE_PERIOD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    key_id: str
    grace_period_seconds: int
    idempotency_key: str
    mode: _common_pb2.Mode
    def __init__(self, merchant_id: _Optional[str] = ..., key_id: _Optional[str] = ..., grace_period_seconds: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ...) -> None: ...

class RollKeyResponse(_message.Message):
    __slots__ = ("key", "secret", "previous")
    KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    key: ApiKey
    secret: str
    previous: ApiKey
    def __init__(self, key: _Optional[_Union[ApiKey, _Mapping]] = ..., secret: _Optional[str] = ..., previous: _Optional[_Union[ApiKey, _Mapping]] = ...) -> None: ...

class RevokeKeyRequest(_message.Message):
    __slots__ = ("merchant_id", "key_id", "mode")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    key_id: str
    mode: _common_pb2.Mode
    def __init__(self, merchant_id: _Optional[str] = ..., key_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ...) -> None: ...

class ListKeysRequest(_message.Message):
    __slots__ = ("merchant_id", "mode", "limit", "starting_after")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    STARTING_AFTER_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    mode: _common_pb2.Mode
    limit: int
    starting_after: str
    def __init__(self, merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., limit: _Optional[int] = ..., starting_after: _Optional[str] = ...) -> None: ...

class ListKeysResponse(_message.Message):
    __slots__ = ("keys", "has_more")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[ApiKey]
    has_more: bool
    def __init__(self, keys: _Optional[_Iterable[_Union[ApiKey, _Mapping]]] = ..., has_more: _Optional[bool] = ...) -> None: ...

class AccessToken(_message.Message):
    __slots__ = ("id", "session_id", "merchant_id", "subject", "kid", "issued_at", "expires_at", "revoked_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    KID_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    session_id: str
    merchant_id: str
    subject: str
    kid: str
    issued_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    revoked_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., session_id: _Optional[str] = ..., merchant_id: _Optional[str] = ..., subject: _Optional[str] = ..., kid: _Optional[str] = ..., issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class IssueAccessTokenRequest(_message.Message):
    __slots__ = ("merchant_id", "session_id", "mode")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    session_id: str
    mode: _common_pb2.Mode
    def __init__(self, merchant_id: _Optional[str] = ..., session_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ...) -> None: ...

class GetAccessLinkRequest(_message.Message):
    __slots__ = ("session_id", "merchant_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    merchant_id: str
    def __init__(self, session_id: _Optional[str] = ..., merchant_id: _Optional[str] = ...) -> None: ...

class AccessLink(_message.Message):
    __slots__ = ("url", "token", "access_token")
    URL_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    url: str
    token: str
    access_token: AccessToken
    def __init__(self, url: _Optional[str] = ..., token: _Optional[str] = ..., access_token: _Optional[_Union[AccessToken, _Mapping]] = ...) -> None: ...

class VerifyAccessTokenRequest(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: str
    def __init__(self, token: _Optional[str] = ...) -> None: ...

class AccessTokenClaims(_message.Message):
    __slots__ = ("jti", "session_id", "subject", "merchant_id", "issued_at", "expires_at")
    JTI_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    jti: str
    session_id: str
    subject: str
    merchant_id: str
    issued_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, jti: _Optional[str] = ..., session_id: _Optional[str] = ..., subject: _Optional[str] = ..., merchant_id: _Optional[str] = ..., issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RevokeAccessTokenRequest(_message.Message):
    __slots__ = ("jti", "merchant_id")
    JTI_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    jti: str
    merchant_id: str
    def __init__(self, jti: _Optional[str] = ..., merchant_id: _Optional[str] = ...) -> None: ...

class GetJwksRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Jwks(_message.Message):
    __slots__ = ("json",)
    JSON_FIELD_NUMBER: _ClassVar[int]
    json: str
    def __init__(self, json: _Optional[str] = ...) -> None: ...
