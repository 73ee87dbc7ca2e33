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
    KEY_STATUS_SUSPENDED: _ClassVar[KeyStatus]
    KEY_STATUS_IP_NOT_ALLOWED: _ClassVar[KeyStatus]

class MerchantKeyStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MERCHANT_KEY_STATUS_UNSPECIFIED: _ClassVar[MerchantKeyStatus]
    MERCHANT_KEY_STATUS_ACTIVE: _ClassVar[MerchantKeyStatus]
    MERCHANT_KEY_STATUS_EXPIRING: _ClassVar[MerchantKeyStatus]
    MERCHANT_KEY_STATUS_REVOKED: _ClassVar[MerchantKeyStatus]
    MERCHANT_KEY_STATUS_EXPIRED: _ClassVar[MerchantKeyStatus]
KEY_STATUS_UNSPECIFIED: KeyStatus
KEY_STATUS_VALID: KeyStatus
KEY_STATUS_NOT_FOUND: KeyStatus
KEY_STATUS_EXPIRED: KeyStatus
KEY_STATUS_REVOKED: KeyStatus
KEY_STATUS_SUSPENDED: KeyStatus
KEY_STATUS_IP_NOT_ALLOWED: KeyStatus
MERCHANT_KEY_STATUS_UNSPECIFIED: MerchantKeyStatus
MERCHANT_KEY_STATUS_ACTIVE: MerchantKeyStatus
MERCHANT_KEY_STATUS_EXPIRING: MerchantKeyStatus
MERCHANT_KEY_STATUS_REVOKED: MerchantKeyStatus
MERCHANT_KEY_STATUS_EXPIRED: MerchantKeyStatus

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
    __slots__ = ("name", "key_prefix", "mode", "idempotency_key", "actor")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KEY_PREFIX_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    name: str
    key_prefix: str
    mode: _common_pb2.Mode
    idempotency_key: str
    actor: str
    def __init__(self, name: _Optional[str] = ..., key_prefix: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., idempotency_key: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("merchant_id", "mode", "idempotency_key", "actor")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    mode: _common_pb2.Mode
    idempotency_key: str
    actor: str
    def __init__(self, merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., idempotency_key: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class CreateMerchantSecretKeyResponse(_message.Message):
    __slots__ = ("secret_key", "secret_key_id", "key")
    SECRET_KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    secret_key: str
    secret_key_id: str
    key: MerchantKey
    def __init__(self, secret_key: _Optional[str] = ..., secret_key_id: _Optional[str] = ..., key: _Optional[_Union[MerchantKey, _Mapping]] = ...) -> None: ...

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
    __slots__ = ("id", "merchant_id", "session_id", "mode", "prefix", "hint", "status", "created_at", "expires_at", "revoked_at", "last_used_at", "revealed", "metadata", "rolled_from_id", "scopes", "granted_scopes", "ip_allowlist")
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
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    GRANTED_SCOPES_FIELD_NUMBER: _ClassVar[int]
    IP_ALLOWLIST_FIELD_NUMBER: _ClassVar[int]
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
    scopes: _containers.RepeatedScalarFieldContainer[str]
    granted_scopes: _containers.RepeatedScalarFieldContainer[str]
    ip_allowlist: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., merchant_id: _Optional[str] = ..., session_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., prefix: _Optional[str] = ..., hint: _Optional[str] = ..., status: _Optional[_Union[KeyStatus, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_used_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revealed: _Optional[bool] = ..., metadata: _Optional[_Mapping[str, str]] = ..., rolled_from_id: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., granted_scopes: _Optional[_Iterable[str]] = ..., ip_allowlist: _Optional[_Iterable[str]] = ...) -> None: ...

class IssueCustomerKeyRequest(_message.Message):
    __slots__ = ("merchant_id", "mode", "session_id", "metadata", "scopes", "set_scopes")
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
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    SET_SCOPES_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    mode: _common_pb2.Mode
    session_id: str
    metadata: _containers.ScalarMap[str, str]
    scopes: _containers.RepeatedScalarFieldContainer[str]
    set_scopes: bool
    def __init__(self, merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., session_id: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., scopes: _Optional[_Iterable[str]] = ..., set_scopes: _Optional[bool] = ...) -> None: ...

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
    __slots__ = ("key", "merchant_id", "mode", "ip")
    KEY_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    key: str
    merchant_id: str
    mode: _common_pb2.Mode
    ip: str
    def __init__(self, key: _Optional[str] = ..., merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., ip: _Optional[str] = ...) -> None: ...

class VerifyKeyResponse(_message.Message):
    __slots__ = ("status", "key_id", "merchant_id", "session_id", "mode", "scopes")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    status: KeyStatus
    key_id: str
    merchant_id: str
    session_id: str
    mode: _common_pb2.Mode
    scopes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, status: _Optional[_Union[KeyStatus, str]] = ..., key_id: _Optional[str] = ..., merchant_id: _Optional[str] = ..., session_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., scopes: _Optional[_Iterable[str]] = ...) -> None: ...

class RollKeyRequest(_message.Message):
    __slots__ = ("merchant_id", "key_id", "grace_period_seconds", "idempotency_key", "mode", "actor")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    GRACE_PERIOD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    key_id: str
    grace_period_seconds: int
    idempotency_key: str
    mode: _common_pb2.Mode
    actor: str
    def __init__(self, merchant_id: _Optional[str] = ..., key_id: _Optional[str] = ..., grace_period_seconds: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., actor: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("merchant_id", "key_id", "mode", "actor")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    key_id: str
    mode: _common_pb2.Mode
    actor: str
    def __init__(self, merchant_id: _Optional[str] = ..., key_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., actor: _Optional[str] = ...) -> None: ...

class ListKeysRequest(_message.Message):
    __slots__ = ("merchant_id", "mode", "limit", "starting_after", "session_id")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    STARTING_AFTER_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    mode: _common_pb2.Mode
    limit: int
    starting_after: str
    session_id: str
    def __init__(self, merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., limit: _Optional[int] = ..., starting_after: _Optional[str] = ..., session_id: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("merchant_id", "session_id", "mode", "customer_email")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_EMAIL_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    session_id: str
    mode: _common_pb2.Mode
    customer_email: str
    def __init__(self, merchant_id: _Optional[str] = ..., session_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., customer_email: _Optional[str] = ...) -> None: ...

class CustomerAccessItem(_message.Message):
    __slots__ = ("merchant_id", "mode", "session_id", "metadata", "scopes", "customer_email", "set_scopes")
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
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_EMAIL_FIELD_NUMBER: _ClassVar[int]
    SET_SCOPES_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    mode: _common_pb2.Mode
    session_id: str
    metadata: _containers.ScalarMap[str, str]
    scopes: _containers.RepeatedScalarFieldContainer[str]
    customer_email: str
    set_scopes: bool
    def __init__(self, merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., session_id: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., scopes: _Optional[_Iterable[str]] = ..., customer_email: _Optional[str] = ..., set_scopes: _Optional[bool] = ...) -> None: ...

class IssueCustomerAccessRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[CustomerAccessItem]
    def __init__(self, items: _Optional[_Iterable[_Union[CustomerAccessItem, _Mapping]]] = ...) -> None: ...

class CustomerAccess(_message.Message):
    __slots__ = ("key", "link", "merchant_name")
    KEY_FIELD_NUMBER: _ClassVar[int]
    LINK_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_NAME_FIELD_NUMBER: _ClassVar[int]
    key: ApiKey
    link: AccessLink
    merchant_name: str
    def __init__(self, key: _Optional[_Union[ApiKey, _Mapping]] = ..., link: _Optional[_Union[AccessLink, _Mapping]] = ..., merchant_name: _Optional[str] = ...) -> None: ...

class CustomerAccessResult(_message.Message):
    __slots__ = ("session_id", "access", "error")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ACCESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    access: CustomerAccess
    error: _common_pb2.ItemError
    def __init__(self, session_id: _Optional[str] = ..., access: _Optional[_Union[CustomerAccess, _Mapping]] = ..., error: _Optional[_Union[_common_pb2.ItemError, _Mapping]] = ...) -> None: ...

class IssueCustomerAccessResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[CustomerAccessResult]
    def __init__(self, results: _Optional[_Iterable[_Union[CustomerAccessResult, _Mapping]]] = ...) -> None: ...

class GetAccessLinkRequest(_message.Message):
    __slots__ = ("session_id", "merchant_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    merchant_id: str
    def __init__(self, session_id: _Optional[str] = ..., merchant_id: _Optional[str] = ...) -> None: ...

class AccessLink(_message.Message):
    __slots__ = ("url", "token", "access_token", "mail_url")
    URL_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MAIL_URL_FIELD_NUMBER: _ClassVar[int]
    url: str
    token: str
    access_token: AccessToken
    mail_url: str
    def __init__(self, url: _Optional[str] = ..., token: _Optional[str] = ..., access_token: _Optional[_Union[AccessToken, _Mapping]] = ..., mail_url: _Optional[str] = ...) -> None: ...

class VerifyAccessTokenRequest(_message.Message):
    __slots__ = ("token", "mail_proof")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    MAIL_PROOF_FIELD_NUMBER: _ClassVar[int]
    token: str
    mail_proof: str
    def __init__(self, token: _Optional[str] = ..., mail_proof: _Optional[str] = ...) -> None: ...

class AccessTokenClaims(_message.Message):
    __slots__ = ("jti", "session_id", "subject", "merchant_id", "issued_at", "expires_at", "mail_proven")
    JTI_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    MAIL_PROVEN_FIELD_NUMBER: _ClassVar[int]
    jti: str
    session_id: str
    subject: str
    merchant_id: str
    issued_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    mail_proven: bool
    def __init__(self, jti: _Optional[str] = ..., session_id: _Optional[str] = ..., subject: _Optional[str] = ..., merchant_id: _Optional[str] = ..., issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., mail_proven: _Optional[bool] = ...) -> None: ...

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

class MerchantKey(_message.Message):
    __slots__ = ("id", "merchant_id", "mode", "prefix", "last4", "status", "created_at", "last_used_at", "expires_at", "revoked_at", "rolled_from_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    LAST4_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    ROLLED_FROM_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    merchant_id: str
    mode: _common_pb2.Mode
    prefix: str
    last4: str
    status: MerchantKeyStatus
    created_at: _timestamp_pb2.Timestamp
    last_used_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    revoked_at: _timestamp_pb2.Timestamp
    rolled_from_id: str
    def __init__(self, id: _Optional[str] = ..., merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., prefix: _Optional[str] = ..., last4: _Optional[str] = ..., status: _Optional[_Union[MerchantKeyStatus, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_used_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rolled_from_id: _Optional[str] = ...) -> None: ...

class ListMerchantKeysRequest(_message.Message):
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

class ListMerchantKeysResponse(_message.Message):
    __slots__ = ("keys", "has_more")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[MerchantKey]
    has_more: bool
    def __init__(self, keys: _Optional[_Iterable[_Union[MerchantKey, _Mapping]]] = ..., has_more: _Optional[bool] = ...) -> None: ...

class RollMerchantKeyRequest(_message.Message):
    __slots__ = ("merchant_id", "key_id", "grace_period_seconds", "mode", "idempotency_key", "actor")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    GRACE_PERIOD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    key_id: str
    grace_period_seconds: int
    mode: _common_pb2.Mode
    idempotency_key: str
    actor: str
    def __init__(self, merchant_id: _Optional[str] = ..., key_id: _Optional[str] = ..., grace_period_seconds: _Optional[int] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., idempotency_key: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class RollMerchantKeyResponse(_message.Message):
    __slots__ = ("key", "secret", "previous")
    KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    key: MerchantKey
    secret: str
    previous: MerchantKey
    def __init__(self, key: _Optional[_Union[MerchantKey, _Mapping]] = ..., secret: _Optional[str] = ..., previous: _Optional[_Union[MerchantKey, _Mapping]] = ...) -> None: ...

class RevokeMerchantKeyRequest(_message.Message):
    __slots__ = ("merchant_id", "key_id", "mode", "actor")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    key_id: str
    mode: _common_pb2.Mode
    actor: str
    def __init__(self, merchant_id: _Optional[str] = ..., key_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., actor: _Optional[str] = ...) -> None: ...

class RevokeAccessLinksRequest(_message.Message):
    __slots__ = ("session_id", "merchant_id", "mode", "actor")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    merchant_id: str
    mode: _common_pb2.Mode
    actor: str
    def __init__(self, session_id: _Optional[str] = ..., merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., actor: _Optional[str] = ...) -> None: ...

class RevokeAccessLinksResponse(_message.Message):
    __slots__ = ("revoked",)
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    revoked: int
    def __init__(self, revoked: _Optional[int] = ...) -> None: ...

class ReissueAccessLinkRequest(_message.Message):
    __slots__ = ("session_id", "merchant_id", "mode", "actor")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    merchant_id: str
    mode: _common_pb2.Mode
    actor: str
    def __init__(self, session_id: _Optional[str] = ..., merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., actor: _Optional[str] = ...) -> None: ...

class UpdateCustomerKeySettingsRequest(_message.Message):
    __slots__ = ("session_id", "access_token_id", "set_scopes", "scopes", "set_ip_allowlist", "ip_allowlist", "expires_at")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    SET_SCOPES_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    SET_IP_ALLOWLIST_FIELD_NUMBER: _ClassVar[int]
    IP_ALLOWLIST_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    access_token_id: str
    set_scopes: bool
    scopes: _containers.RepeatedScalarFieldContainer[str]
    set_ip_allowlist: bool
    ip_allowlist: _containers.RepeatedScalarFieldContainer[str]
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, session_id: _Optional[str] = ..., access_token_id: _Optional[str] = ..., set_scopes: _Optional[bool] = ..., scopes: _Optional[_Iterable[str]] = ..., set_ip_allowlist: _Optional[bool] = ..., ip_allowlist: _Optional[_Iterable[str]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CustomerRollKeyRequest(_message.Message):
    __slots__ = ("session_id", "access_token_id", "current_secret", "grace_period_seconds")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENT_SECRET_FIELD_NUMBER: _ClassVar[int]
    GRACE_PERIOD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    access_token_id: str
    current_secret: str
    grace_period_seconds: int
    def __init__(self, session_id: _Optional[str] = ..., access_token_id: _Optional[str] = ..., current_secret: _Optional[str] = ..., grace_period_seconds: _Optional[int] = ...) -> None: ...

class CustomerRevokeKeyRequest(_message.Message):
    __slots__ = ("session_id", "access_token_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    access_token_id: str
    def __init__(self, session_id: _Optional[str] = ..., access_token_id: _Optional[str] = ...) -> None: ...

class GetCustomerKeyUsageRequest(_message.Message):
    __slots__ = ("session_id", "days")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    days: int
    def __init__(self, session_id: _Optional[str] = ..., days: _Optional[int] = ...) -> None: ...

class DailyUsage(_message.Message):
    __slots__ = ("day", "count")
    DAY_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    day: str
    count: int
    def __init__(self, day: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class CustomerKeyUsage(_message.Message):
    __slots__ = ("days", "total")
    DAYS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    days: _containers.RepeatedCompositeFieldContainer[DailyUsage]
    total: int
    def __init__(self, days: _Optional[_Iterable[_Union[DailyUsage, _Mapping]]] = ..., total: _Optional[int] = ...) -> None: ...

class RecordSupportMessageRequest(_message.Message):
    __slots__ = ("session_id", "merchant_id", "chars", "access_token_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    CHARS_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    merchant_id: str
    chars: int
    access_token_id: str
    def __init__(self, session_id: _Optional[str] = ..., merchant_id: _Optional[str] = ..., chars: _Optional[int] = ..., access_token_id: _Optional[str] = ...) -> None: ...

class RecordSupportMessageResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSubjectSessionsRequest(_message.Message):
    __slots__ = ("subject", "merchant_id", "mode", "limit")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    subject: str
    merchant_id: str
    mode: _common_pb2.Mode
    limit: int
    def __init__(self, subject: _Optional[str] = ..., merchant_id: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.Mode, str]] = ..., limit: _Optional[int] = ...) -> None: ...

class ListSubjectSessionsResponse(_message.Message):
    __slots__ = ("session_ids",)
    SESSION_IDS_FIELD_NUMBER: _ClassVar[int]
    session_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, session_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SetSessionKeyAccessRequest(_message.Message):
    __slots__ = ("session_id", "merchant_id", "access", "reason")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    ACCESS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    merchant_id: str
    access: str
    reason: str
    def __init__(self, session_id: _Optional[str] = ..., merchant_id: _Optional[str] = ..., access: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class SetSessionKeyAccessResponse(_message.Message):
    __slots__ = ("keys_changed", "links_revoked")
    KEYS_CHANGED_FIELD_NUMBER: _ClassVar[int]
    LINKS_REVOKED_FIELD_NUMBER: _ClassVar[int]
    keys_changed: int
    links_revoked: int
    def __init__(self, keys_changed: _Optional[int] = ..., links_revoked: _Optional[int] = ...) -> None: ...
