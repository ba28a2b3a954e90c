"""Where a package's ``content_url`` may point (server-side request forgery).

Managed hosts download a package's content from its ``content_url``, so whoever sets it chooses an
address every targeted host connects to (and the controller's signed URLs are not involved). An
admin may set any http(s) URL. Anyone else (:func:`check`) may only point it at a public address
or at a network an admin listed in ``DEPOT_CONTENT_URL_ALLOWED_NETWORKS``, never at the controller
itself:

- http or https, a plain host (a DNS name, a dotted-decimal IPv4 address or a bracketed IPv6
  address) and an optional port: no user name or password in the URL, no percent-encoding,
  backslashes or zone ids in the host, and no other spelling of an IPv4 address (``2130706433``,
  ``0x7f.1``, ``0177.0.0.1``, ``127.1``), since clients disagree on what those mean;
- the host is resolved (``socket.getaddrinfo``) when the package is saved, and *every* address it
  resolves to must be allowed; a name that does not resolve is refused;
- an address is internal when it is in :data:`INTERNAL` (loopback, link-local, private,
  carrier-grade NAT, unspecified, multicast, reserved, ...); an IPv6 address that embeds an IPv4
  address (IPv4-mapped ``::ffff:a.b.c.d``, 6to4, NAT64) is judged by the IPv4 address.

What it does not cover: a name that resolves differently when the host downloads (DNS rebinding),
and a public server that redirects the host elsewhere (the hosts follow redirects). The check keeps
non-admins from *naming* an internal address; the network around the hosts must do the rest.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Callable, Iterable, Sequence
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Addresses a non-admin's content URL may not reach, with what they are.
INTERNAL: tuple[tuple[Network, str], ...] = tuple((ipaddress.ip_network(n), what) for n, what in (
    ("0.0.0.0/8", "unspecified ('this network')"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT (shared)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (cloud metadata services live here)"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignment"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved or broadcast"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "IPv4-compatible (deprecated)"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("2001::/32", "Teredo"),
    ("fc00::/7", "unique local (private)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (private)"),
    ("ff00::/8", "multicast"),
))
NAT64 = ipaddress.ip_network("64:ff9b::/96")

_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")
_NETLOC = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(?P<port>[0-9]{1,5}))?$")
_NUMERIC_LABEL = re.compile(r"^(?:0[xX][0-9A-Fa-f]*|[0-9]+)$")

Resolver = Callable[[str, int], Iterable[str]]


class ContentUrlError(ValueError):
    """The URL is not one this user may give a package; the message says why."""


def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to now (``socket.getaddrinfo``), zone ids dropped."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0].split("%", 1)[0] for info in infos]


def embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (IPv4-mapped, 6to4, NAT64), else None."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def internal(address: Address) -> str | None:
    """What makes ``address`` internal (``"loopback"``, ``"private"``...), or None for a public one."""
    inner = embedded_ipv4(address)
    if inner is not None:
        what = internal(inner)
        return f"{what} (embedded in {address})" if what else None
    for network, what in INTERNAL:
        if address.version == network.version and address in network:
            return what
    return None


def _in(address: Address, networks: Sequence[Network]) -> bool:
    candidates = [address] + [a for a in (embedded_ipv4(address),) if a is not None]
    return any(a.version == n.version and a in n for a in candidates for n in networks)


def _same(a: Address, b: Address) -> bool:
    return (embedded_ipv4(a) or a) == (embedded_ipv4(b) or b)


def parse(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL a non-admin may give, else :class:`ContentUrlError`."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 or c == "\\" for c in url):
        raise ContentUrlError("content_url must not contain whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
    except ValueError as e:
        raise ContentUrlError(f"content_url is not a valid URL: {e}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not url[:len(scheme) + 3].lower() == f"{scheme}://":
        raise ContentUrlError("content_url must be an http:// or https:// URL")
    if "@" in parts.netloc:
        raise ContentUrlError("content_url must not carry a user name or password (keep secrets in credentials)")
    match = _NETLOC.match(parts.netloc)
    if match is None:
        raise ContentUrlError("content_url's host must be a DNS name, a dotted-decimal IPv4 address or a bracketed "
                              "IPv6 address, with an optional port (no percent-encoding or zone ids)")
    host = match["host"]
    port = int(match["port"]) if match["port"] else (443 if scheme == "https" else 80)
    if not 1 <= port <= 65535:
        raise ContentUrlError(f"content_url's port {port} is out of range")
    if host.startswith("["):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ContentUrlError(f"content_url's host [{host}] is not an IPv6 address") from None
        return scheme, host, port
    labels = host.rstrip(".").split(".")
    if all(_NUMERIC_LABEL.match(label) for label in labels) or _NUMERIC_LABEL.match(labels[-1]):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ContentUrlError(f"content_url's host {host} is not a dotted-decimal IPv4 address: write addresses "
                                  "as four decimal numbers (no decimal, octal or hex forms)") from None
        return scheme, host, port
    if not _NAME.match(host):
        raise ContentUrlError(f"content_url's host {host} is not a valid DNS name")
    return scheme, host, port


def check(url: str, allowed_networks: Sequence[Network] = (), controller_url: str | None = None,
          resolver: Resolver = resolve) -> None:
    """Raise :class:`ContentUrlError` unless a non-admin may point a package's content at ``url``:
    every address its host resolves to is public or in ``allowed_networks``, and none is the
    controller's own (the host of ``controller_url``, DEPOT_PUBLIC_URL)."""
    _, host, port = parse(url)
    try:
        addresses = {ipaddress.ip_address(a) for a in resolver(host, port)}
    except (OSError, UnicodeError, ValueError):
        raise ContentUrlError(f"content_url's host {host} does not resolve, so it cannot be checked") from None
    if not addresses:
        raise ContentUrlError(f"content_url's host {host} does not resolve, so it cannot be checked")
    controller = _controller_addresses(controller_url, resolver)
    for address in sorted(addresses, key=lambda a: (a.version, int(a))):
        shown = host if str(address) == host else f"{host} ({address})"
        what = internal(address)
        if what and not _in(address, allowed_networks):
            raise ContentUrlError(
                f"content_url points at {shown}, an internal address ({what}): only an admin may point content at "
                "loopback, link-local, private or other internal addresses, unless DEPOT_CONTENT_URL_ALLOWED_NETWORKS "
                "lists the network")
        if any(_same(address, c) for c in controller):
            raise ContentUrlError(f"content_url points at this controller ({shown}): upload the content instead")


def _controller_addresses(controller_url: str | None, resolver: Resolver) -> set[Address]:
    host = urlsplit(controller_url).hostname if controller_url else None
    if not host:
        return set()
    try:
        return {ipaddress.ip_address(a) for a in resolver(host, 80)}
    except (OSError, UnicodeError, ValueError):
        return set()
