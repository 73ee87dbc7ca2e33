"""Which client a request comes from, for per-client limits (the dashboard's failed sign-ins), behind proxies.

Pure: no I/O. Without trusted proxies (PAYGATE_TRUSTED_PROXIES empty, the default) the client is the TCP peer:
`X-Forwarded-For` is ignored, since anyone can write it. When the peer is one of the trusted proxies, the
header is read from the right: each trusted proxy appends the address it received the request from, so the
right-most entry that is NOT a trusted proxy is the first address no trusted hop can vouch beyond, which is
the client. Entries left of it are the client's own claims and are never read, so a client cannot pick its
own rate-limit bucket by sending the header itself.

IPv6 clients are counted per /64: one subscriber line usually holds a whole /64 and could otherwise rotate
through it to dodge a per-address limit.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# A header longer than this is read from its right end only: the walk never needs more hops than there are
# proxies in front of the gateway, and a client must not make each request cost a long parse.
MAX_HOPS = 32
_IPV6_CLIENT_PREFIX = 64


def parse_trusted_proxies(raw: str) -> tuple[Network, ...]:
    """PAYGATE_TRUSTED_PROXIES: comma-separated CIDRs or single addresses ("10.0.0.0/8, 2001:db8::1").
    Raises ValueError naming the first bad entry (host bits set count as bad: "10.0.0.1/8" is a typo)."""
    networks: list[Network] = []
    for item in raw.split(","):
        entry = item.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=True))
        except ValueError:
            raise ValueError(
                f"{entry[:60]!r} is not an IP network in CIDR notation (like 10.0.0.0/8)"
            ) from None
    return tuple(networks)


def _address(raw: str) -> Address | None:
    """One header entry or peer as an address: plain, "[v6]", "[v6]:port" or "v4:port"; None if unreadable."""
    text = raw.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        text = text[1:end]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]  # an IPv4 address with a port
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id:
            return ipaddress.IPv6Address(text.split("%", 1)[0])
    return address


def _trusted(address: Address, proxies: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def _key(address: Address) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, _IPV6_CLIENT_PREFIX), strict=False))
    return str(address)


def forwarded_entries(header_values: Iterable[str]) -> list[str]:
    """Every X-Forwarded-For header of a request, in order, split into entries (repeated headers are one
    list, as RFC 7230 folds them); only the right-most MAX_HOPS are kept."""
    entries: list[str] = []
    for value in header_values:
        entries.extend(value.split(","))
    return entries[-MAX_HOPS:]


def client_key(peer: str | None, header_values: Iterable[str], proxies: Sequence[Network]) -> str:
    """The rate-limit key of a request's client (an address, or an IPv6 /64)."""
    peer_address = _address(peer or "")
    if peer_address is None:
        return (peer or "unknown")[:64]
    if not proxies or not _trusted(peer_address, proxies):
        return _key(peer_address)
    nearest = peer_address
    for entry in reversed(forwarded_entries(header_values)):
        address = _address(entry)
        if address is None:
            # An unreadable hop: nothing left of it can be trusted, and it is no address to count by. The
            # request counts against the last hop we could read (stricter, never looser).
            return _key(nearest)
        if not _trusted(address, proxies):
            return _key(address)
        nearest = address
    # Every hop is a trusted proxy (the client is inside the proxies' own network): the left-most one.
    return _key(nearest)
