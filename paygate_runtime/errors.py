"""Domain errors with stable machine-readable codes.

Domain code raises these without knowing about gRPC or HTTP; the adapters map the kind to a gRPC status
(see grpc_errors) and to an HTTP status at the gateway. The `code` is part of the public contract: clients
switch on it, so never rename one.
"""

from __future__ import annotations

from enum import Enum


class ErrorKind(Enum):
    INVALID_ARGUMENT = "invalid_argument"
    NOT_FOUND = "not_found"
    FAILED_PRECONDITION = "failed_precondition"
    ALREADY_EXISTS = "already_exists"
    UNAUTHENTICATED = "unauthenticated"
    PERMISSION_DENIED = "permission_denied"
    UNAVAILABLE = "unavailable"


class DomainError(Exception):
    """A refusal the caller can act on. `code` is stable snake_case, `message` is for people."""

    kind: ErrorKind = ErrorKind.INVALID_ARGUMENT

    def __init__(self, code: str, message: str = "", *, field: str | None = None) -> None:
        super().__init__(message or code)
        self.code = code
        self.message = message or code.replace("_", " ")
        self.field = field

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class InvalidArgument(DomainError):
    kind = ErrorKind.INVALID_ARGUMENT


class NotFound(DomainError):
    kind = ErrorKind.NOT_FOUND


class FailedPrecondition(DomainError):
    kind = ErrorKind.FAILED_PRECONDITION


class AlreadyExists(DomainError):
    kind = ErrorKind.ALREADY_EXISTS


class Unauthenticated(DomainError):
    kind = ErrorKind.UNAUTHENTICATED


class PermissionDenied(DomainError):
    kind = ErrorKind.PERMISSION_DENIED


class Unavailable(DomainError):
    kind = ErrorKind.UNAVAILABLE


def require(value: object, field: str) -> None:
    """Refuse a missing required field with INVALID_ARGUMENT and a code that names it."""
    if value is None or value == "" or value == 0:
        raise InvalidArgument(f"missing_{field}", f"{field} is required", field=field)


def cursor_refused(field: str = "starting_after") -> InvalidArgument:
    """Every list's cursor refusal (contract: one answer on every list route): malformed, or naming no item of
    that list in the caller's merchant and mode. Another merchant's or mode's item gets exactly this, so a
    cursor never tells whether an id exists elsewhere."""
    return InvalidArgument(f"invalid_{field}", f"{field} must be the id of an item of this list", field=field)
