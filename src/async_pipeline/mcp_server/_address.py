"""Where ``mcp --http`` listens, and which Host and Origin headers count as this machine.

Loopback is decided by address, never by spelling (adr/0003): an IP literal is loopback
when :mod:`ipaddress` says so (all of 127.0.0.0/8, ``::1``, and IPv4-mapped forms such as
``::ffff:127.0.0.1``), and ``localhost`` is the one name trusted, in any case. Every other
name is treated as reachable from elsewhere, whatever it resolves to today: resolution can
change under us, and the safe mistake is asking for a token one time too many.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from async_pipeline.errors import UsageError

__all__ = [
    "DEFAULT_HOST",
    "Bind",
    "is_loopback_host",
    "loopback_host_header",
    "loopback_origin",
    "parse_address",
    "resolve_bind",
]

DEFAULT_HOST = "127.0.0.1"
_LOCALHOST = "localhost"


def parse_address(text: str) -> tuple[str | None, int]:
    """``PORT``, ``HOST:PORT`` or ``[IPV6]:PORT`` as ``(host or None, port)``."""
    host: str | None
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep:
            raise _bad_address(text)
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
    else:
        host, port_text = None, text
    if host == "" or not port_text.isdigit() or int(port_text) > 65535:
        raise _bad_address(text)
    return host, int(port_text)


def _bad_address(text: str) -> UsageError:
    return UsageError(
        "ASYNC_PIPELINE_USAGE",
        f"--http: {text!r} is not [HOST:]PORT",
        hint="e.g. --http 8765, --http 127.0.0.1:8765 or --http [::1]:8765",
    )


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # Python < 3.13 calls ::ffff:127.0.0.1 not loopback; the socket it names is.
        return address.ipv4_mapped
    return address


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (an IP literal or a name, no port) names this machine's loopback."""
    if host.lower() == _LOCALHOST:
        return True
    address = _ip(host)
    return address is not None and address.is_loopback


@dataclass(frozen=True)
class Bind:
    """A listening address decided before binding: what to bind, and whether it is loopback.

    ``shown`` is how the announcement writes the host (``localhost`` lowercased, IPv6 in
    brackets); ``address`` is what the socket binds (a name is resolved by the system).
    """

    shown: str
    address: str
    loopback: bool


def resolve_bind(host: str | None) -> Bind:
    """Classify the ``--http`` host (``None``: 127.0.0.1); a usage error if it is ambiguous."""
    host = DEFAULT_HOST if host is None else host
    if host.lower() == _LOCALHOST:
        return Bind(_LOCALHOST, DEFAULT_HOST, loopback=True)
    if ":" in host:
        if not _ip(host) is not None:
            raise UsageError(
                "ASYNC_PIPELINE_USAGE",
                f"--http: {host!r} is not an IPv6 address",
                hint="write IPv6 addresses in brackets, e.g. --http [::1]:8765",
            )
        return Bind(f"[{host}]", host, loopback=is_loopback_host(host))
    if _ip(host) is not None:
        return Bind(host, host, loopback=is_loopback_host(host))
    if _is_ipv4_shorthand(host):
        # The C library reads "0" as 0.0.0.0 and "127.1" as 127.0.0.1: what would be bound
        # is not what was written, so say so rather than guess along with it.
        raise UsageError(
            "ASYNC_PIPELINE_USAGE",
            f"--http: {host!r} is not a full IPv4 address",
            hint="write all four parts, e.g. --http 127.0.0.1:8765 (or 0.0.0.0 for every "
            "interface, which needs --token-env)",
        )
    return Bind(host, host, loopback=False)


def _is_ipv4_shorthand(text: str) -> bool:
    try:
        socket.inet_aton(text)
    except OSError:
        return False
    return True


def loopback_host_header(value: str | None) -> bool:
    """Whether a ``Host`` header (``name``, ``name:port``, ``[v6]:port``) names loopback."""
    if not value:
        return False
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return False
        return ":" in host and is_loopback_host(host)
    host, sep, port = value.partition(":")
    if sep and not port.isdigit():
        return False
    return is_loopback_host(host)


def loopback_origin(value: str) -> bool:
    """Whether an ``Origin`` header is a page served from this machine.

    ``http``/``https`` on a loopback address or ``localhost``, any port: hosts and
    inspectors run their UIs on ports of their own choosing. ``null`` (sandboxed frames,
    ``file:`` pages) and anything with a path, user or query is not an origin we serve.
    """
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or parts.hostname is None:
        return False
    if parts.path or parts.query or parts.fragment or "@" in parts.netloc:
        return False
    return is_loopback_host(parts.hostname)
