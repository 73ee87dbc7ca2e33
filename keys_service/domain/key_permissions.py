"""What a customer key may do (scopes) and where from (an IP allow-list): validation, narrowing, checks.

Pure: no I/O. The merchant grants scopes per session; the key starts with the grant; the customer may narrow
it in the portal but never widen it. "*" means every scope: a grant of ["*"] allows any narrowing, and a key
narrowed to ["*"] (only possible when granted ["*"]) keeps every scope.

The allow-list is a list of CIDR blocks parsed with `ipaddress` (strict: host bits must be zero, so a typo
like "10.0.0.1/8" is refused instead of silently widening). An empty list means anywhere. A key with a list
is refused when the caller's IP is outside it or unknown (fail closed).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence

from paygate_runtime.errors import InvalidArgument

WILDCARD = "*"
ALL_SCOPES: tuple[str, ...] = (WILDCARD,)
MAX_SCOPES = 32
MAX_SCOPE_CHARS = 64
MAX_ALLOWLIST_ENTRIES = 32
# Longer than any written CIDR ("ffff:...:ffff/128" is 43 chars); anything longer is junk, refused by size.
MAX_CIDR_CHARS = 64
_SCOPE = re.compile(r"[a-z0-9_:.\-]{1,64}")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# What VerifyKey checks against: (IP version, network as an int, netmask as an int), precomputed once when a
# key's facts are read (and then cached), so a check is a few integer operations, not ipaddress objects.
Block = tuple[int, int, int]
_V4_MAPPED_PREFIX = b"\0" * 10 + b"\xff\xff"


def validate_scopes(raw: object, *, field: str = "scopes") -> tuple[str, ...]:
    """1..32 distinct scopes, each `[a-z0-9_:.-]{1,64}` or "*"; order kept, duplicates dropped.

    "*" together with named scopes is refused: it would make the named ones meaningless, which is a sign
    the caller meant something else.
    """
    if isinstance(raw, str) or not isinstance(raw, Sequence):
        raise InvalidArgument("invalid_scopes", f"{field} must be a list of strings", field=field)
    if not 1 <= len(raw) <= MAX_SCOPES:
        raise InvalidArgument("invalid_scopes", f"{field} must have 1 to {MAX_SCOPES} entries", field=field)
    scopes: list[str] = []
    for item in raw:
        if not isinstance(item, str) or not (item == WILDCARD or _SCOPE.fullmatch(item)):
            raise InvalidArgument(
                "invalid_scopes",
                f'each of {field} must be "*" or 1 to 64 of a-z, 0-9, "_", ":", ".", "-"',
                field=field,
            )
        if item not in scopes:
            scopes.append(item)
    if WILDCARD in scopes and len(scopes) > 1:
        raise InvalidArgument("invalid_scopes", f'"*" cannot be combined with other {field}', field=field)
    return tuple(scopes)


def is_within(requested: Iterable[str], granted: Iterable[str]) -> bool:
    """True when every requested scope is allowed by the grant."""
    grant = set(granted)
    if WILDCARD in grant:
        return True
    return all(scope in grant for scope in requested)


def narrow_scopes(requested: object, granted: Sequence[str]) -> tuple[str, ...]:
    """The validated new scopes of a key, refused when any of them is outside the merchant's grant."""
    scopes = validate_scopes(requested)
    if not is_within(scopes, granted):
        outside = [s for s in scopes if s not in granted]
        raise InvalidArgument(
            "scope_not_granted",
            f"scopes not granted by the merchant: {', '.join(outside)}",
            field="scopes",
        )
    return scopes


def parse_allowlist(raw: object, *, field: str = "ip_allowlist") -> tuple[Network, ...]:
    """0..32 CIDR blocks (a bare address means a single host); duplicates dropped, order kept."""
    if isinstance(raw, str) or not isinstance(raw, Sequence):
        raise InvalidArgument("invalid_ip_allowlist", f"{field} must be a list of CIDR blocks", field=field)
    if len(raw) > MAX_ALLOWLIST_ENTRIES:
        raise InvalidArgument(
            "invalid_ip_allowlist", f"{field} has at most {MAX_ALLOWLIST_ENTRIES} entries", field=field
        )
    networks: list[Network] = []
    for item in raw:
        network = _network(item, field)
        if network not in networks:
            networks.append(network)
    return tuple(networks)


def _network(item: object, field: str) -> Network:
    if not isinstance(item, str) or not item or len(item) > MAX_CIDR_CHARS or not item.isascii():
        raise InvalidArgument("invalid_ip_allowlist", f"{field}: not a CIDR block", field=field)
    text = item.strip()
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError:
        shown = text if text.isprintable() else repr(text)
        raise InvalidArgument(
            "invalid_ip_allowlist",
            f"{field}: {shown!s} is not a CIDR block (like 203.0.113.0/24 or 2001:db8::/32)",
            field=field,
        ) from None


def compile_allowlist(networks: Sequence[Network]) -> tuple[Block, ...]:
    return tuple((n.version, int(n.network_address), int(n.netmask)) for n in networks)


def parse_ip(raw: str) -> tuple[int, int] | None:
    """The caller's address as (version, int), or None when empty or not an address. An IPv4-mapped IPv6
    address (::ffff:203.0.113.7) counts as its IPv4 address, as proxies often write them so. inet_pton is
    strict (dotted quads only for IPv4) and fast: this runs on every verification of a key with a list."""
    if not raw or len(raw) > MAX_CIDR_CHARS:
        return None
    text = raw.strip()
    try:
        if ":" in text:
            packed = socket.inet_pton(socket.AF_INET6, text)
            if packed[:12] == _V4_MAPPED_PREFIX:
                return 4, int.from_bytes(packed[12:], "big")
            return 6, int.from_bytes(packed, "big")
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except (OSError, ValueError):
        return None


def ip_allowed(allowlist: Sequence[Block], raw_ip: str) -> bool:
    """An empty list allows everything; otherwise the IP must parse and fall inside one block."""
    if not allowlist:
        return True
    address = parse_ip(raw_ip)
    if address is None:
        return False
    version, value = address
    return any(v == version and value & mask == network for v, network, mask in allowlist)
