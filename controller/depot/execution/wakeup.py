"""Wake-on-LAN (DESIGN §3.4): magic packets for hosts whose MAC address the inventory knows.

A magic packet is six 0xFF bytes, then the target's six MAC bytes sixteen times (102 bytes), sent
as a UDP broadcast (port 9 by convention); the sleeping machine's network card recognises it and
powers the machine on. Which hosts are woken, and when, is the claim pass's business; this module
only parses MAC addresses, reads them from the inventory and sends packets.
"""

from __future__ import annotations

import re
import socket
from ipaddress import IPv4Address

from pydantic import Field

from depot.schemas import InModel
from depot.targets.service import load_inventory

_MAC_FORMS = (
    re.compile(r"[0-9a-f]{2}([:-])[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}"),  # aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff
    re.compile(r"[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}"),              # aabb.ccdd.eeff
    re.compile(r"[0-9a-f]{12}"),                                       # aabbccddeeff
)


def parse_mac(text: str) -> str:
    """The MAC address ``text`` in canonical form (lower case, colons), or ValueError."""
    value = text.strip().lower() if isinstance(text, str) else ""
    if not any(form.fullmatch(value) for form in _MAC_FORMS):
        raise ValueError(f"{text!r} is not a MAC address (expected six hex bytes, e.g. 52:54:00:12:34:56)")
    digits = re.sub(r"[^0-9a-f]", "", value)
    if digits in ("ffffffffffff", "000000000000"):
        raise ValueError(f"{text!r} is the {'broadcast' if digits[0] == 'f' else 'all-zero'} MAC address, "
                         "not a host's")
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def magic_packet(mac: str) -> bytes:
    """The 102-byte Wake-on-LAN payload for ``mac`` (any form :func:`parse_mac` accepts)."""
    return b"\xff" * 6 + bytes.fromhex(parse_mac(mac).replace(":", "")) * 16


class WakeOptions(InModel):
    """How a step wakes its hosts before the first contact."""

    broadcast: IPv4Address = Field(default=IPv4Address("255.255.255.255"),
                                   description="Where the magic packets go: a (directed) broadcast address")
    port: int = Field(default=9, ge=1, le=65535, description="UDP port of the magic packets")
    boot_seconds: int = Field(default=120, ge=0, le=3600,
                              description="Estimated boot time, waited after waking before the first contact")
    mac_var: str = Field(default="depot_mac", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                         description="Inventory host variable holding the host's MAC address")


def send(mac: str, broadcast: str, port: int, count: int = 3) -> None:
    """Send the magic packet for ``mac`` to ``broadcast``:``port`` over UDP, ``count`` times."""
    packet = magic_packet(mac)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        for _ in range(count):
            sock.sendto(packet, (str(broadcast), port))


def host_macs(inventory_sources: list[str], hosts: list[str], mac_var: str) -> dict[str, str | None]:
    """Each host's MAC address from the inventory variable ``mac_var`` (canonical form), or None
    when no source gives the host that variable (a later source wins, as with several ``-i``).
    A value that is not a MAC address raises ValueError naming the host."""
    cache: dict[str, dict] = {}
    hostvars: dict[str, dict] = {}
    for source in inventory_sources:
        for host, variables in load_inventory(source, cache).get("_meta", {}).get("hostvars", {}).items():
            hostvars.setdefault(host, {}).update(variables)
    macs: dict[str, str | None] = {}
    for host in hosts:
        value = hostvars.get(host, {}).get(mac_var)
        if value is None:
            macs[host] = None
        elif not isinstance(value, str):  # e.g. an unquoted 52:54:00:12:34:56 is a YAML 1.1 number
            raise ValueError(f"host {host!r}: {mac_var} is {value!r} (a {type(value).__name__}), not a MAC "
                             "address; quote it in the inventory")
        else:
            try:
                macs[host] = parse_mac(value)
            except ValueError as e:
                raise ValueError(f"host {host!r}: {mac_var}: {e}") from None
    return macs
