"""Configuration from environment variables.

A bad or missing value stops start-up with one line naming the variable and exit code 2, so that an operator
sees the cause at once instead of a stack trace from deep inside a service.
"""

from __future__ import annotations

import builtins
import os
import sys
import urllib.parse
from collections.abc import Callable, Mapping
from typing import NoReturn, TypeVar

T = TypeVar("T")

EXIT_CONFIG = 2


class ConfigError(Exception):
    """One configuration variable is missing or malformed."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


def is_http_url(value: str) -> bool:
    """Whether `value` is an absolute http(s) URL with a host (and, if it names one, a numeric port)."""
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a port that is no number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


class Env:
    """Typed readers over an environment mapping (os.environ by default, a dict in tests)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        return None if value is None or value.strip() == "" else value.strip()

    def str(self, name: str, default: str | None = None) -> str:
        value = self.raw(name)
        if value is None:
            if default is None:
                raise ConfigError(name, "is required but not set")
            return default
        return value

    # Methods here are named after builtins (str, int, bool, list): the signatures below spell the builtin
    # types as builtins.* because inside the class body the bare names are these methods.
    def optional(self, name: builtins.str) -> builtins.str | None:
        return self.raw(name)

    def int(
        self,
        name: builtins.str,
        default: builtins.int,
        *,
        minimum: builtins.int | None = None,
        maximum: builtins.int | None = None,
    ) -> builtins.int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value, 10)
        except ValueError:
            raise ConfigError(name, f"must be an integer, got {value!r}") from None
        if minimum is not None and number < minimum:
            raise ConfigError(name, f"must be >= {minimum}, got {number}")
        if maximum is not None and number > maximum:
            raise ConfigError(name, f"must be <= {maximum}, got {number}")
        return number

    def millis(
        self, name: builtins.str, default_ms: builtins.int, *, minimum: builtins.int, maximum: builtins.int
    ) -> float:
        """A duration configured in whole milliseconds (`..._MS`), returned in seconds."""
        return self.int(name, default_ms, minimum=minimum, maximum=maximum) / 1000

    def port(self, name: builtins.str, default: builtins.int) -> builtins.int:
        return self.int(name, default, minimum=0, maximum=65535)

    def bool(self, name: builtins.str, default: builtins.bool) -> builtins.bool:
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(name, f"must be true or false, got {value!r}")

    def list(self, name: builtins.str) -> builtins.list[builtins.str]:
        value = self.raw(name)
        return [] if value is None else [item.strip() for item in value.split(",") if item.strip()]

    def choice(self, name: builtins.str, default: builtins.str, choices: set[builtins.str]) -> builtins.str:
        value = self.str(name, default)
        if value not in choices:
            raise ConfigError(name, f"must be one of {', '.join(sorted(choices))}, got {value!r}")
        return value

    def http_url(self, name: builtins.str, default: builtins.str | None = None) -> builtins.str:
        """An absolute http(s) URL with a host. The value is not echoed: its userinfo may hold a password."""
        value = self.str(name, default)
        if not is_http_url(value):
            raise ConfigError(
                name, "must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:8080"
            )
        return value

    def parsed(self, name: builtins.str, parse: Callable[[builtins.str], T], default: T) -> T:
        value = self.raw(name)
        if value is None:
            return default
        try:
            return parse(value)
        except (ValueError, TypeError) as exc:
            raise ConfigError(name, str(exc)) from None


def exit_on_config_error(error: ConfigError) -> NoReturn:
    # Exactly one line, whatever a parser's message holds: log collectors and `up` show the first line only.
    problem = " ".join(error.problem.split())
    print(f"paygate: configuration error: {error.variable} {problem}", file=sys.stderr)
    raise SystemExit(EXIT_CONFIG)
