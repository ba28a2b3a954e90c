"""Wake-on-LAN without the lab: MAC parsing, the magic packet, the options, MACs from an inventory."""

import socket

import pytest
from pydantic import ValidationError

from depot.execution.wakeup import WakeOptions, host_macs, magic_packet, parse_mac, send


@pytest.mark.parametrize("text", ["52:54:00:12:34:5f", "52-54-00-12-34-5F", "5254.0012.345f", "52540012345F",
                                  "52:54:00:12:34:5F", " 52:54:00:12:34:5f\n"])
def test_parse_mac_accepts_the_usual_forms(text):
    assert parse_mac(text) == "52:54:00:12:34:5f"


@pytest.mark.parametrize("text", ["xyz", "", "52:54:00:12:34", "52:54:00:12:34:56:78", "52:54-00:12:34:56",
                                  "5254.0012.34", "52540012345", "52540012345g", "52:54:00:12:34:5", "5:54:00:12:34:56",
                                  "52 54 00 12 34 56", "52:54:00:12:34:56:"])
def test_parse_mac_rejects_anything_else(text):
    with pytest.raises(ValueError) as e:
        parse_mac(text)
    assert str(e.value) == f"{text!r} is not a MAC address (expected six hex bytes, e.g. 52:54:00:12:34:56)"


@pytest.mark.parametrize("text, kind", [("ff:ff:ff:ff:ff:ff", "broadcast"), ("FFFFFFFFFFFF", "broadcast"),
                                        ("00:00:00:00:00:00", "all-zero"), ("0000.0000.0000", "all-zero")])
def test_parse_mac_rejects_broadcast_and_zero(text, kind):
    with pytest.raises(ValueError, match=f"is the {kind} MAC address"):
        parse_mac(text)


def test_parse_mac_rejects_non_strings():
    with pytest.raises(ValueError, match="is not a MAC address"):
        parse_mac(525400123456)


def test_magic_packet_layout():
    packet = magic_packet("52-54-00-12-34-56")
    assert len(packet) == 102
    assert packet[:6] == b"\xff" * 6
    mac = bytes([0x52, 0x54, 0x00, 0x12, 0x34, 0x56])
    assert [packet[6 + 6 * i:12 + 6 * i] for i in range(16)] == [mac] * 16
    with pytest.raises(ValueError, match="not a MAC address"):
        magic_packet("52:54:00")


def test_wake_options_defaults_and_validation():
    options = WakeOptions()
    assert (str(options.broadcast), options.port, options.boot_seconds, options.mac_var) == \
        ("255.255.255.255", 9, 120, "depot_mac")
    assert str(WakeOptions(broadcast="10.213.47.255").broadcast) == "10.213.47.255"
    bad = {"broadcast": "10.213.47", "port": 0, "boot_seconds": 3601, "mac_var": "depot mac", "extra": 1}
    for field, value in bad.items():
        with pytest.raises(ValidationError) as e:
            WakeOptions(**{field: value})
        assert [err["loc"] for err in e.value.errors()] == [(field,)], field
        assert field in str(e.value)
    for field, value in {"port": 65536, "boot_seconds": -1, "broadcast": "::1"}.items():
        with pytest.raises(ValidationError, match=field):
            WakeOptions(**{field: value})
    assert WakeOptions(port=65535, boot_seconds=0).boot_seconds == 0


def test_send_delivers_count_packets():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:  # loopback only
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        send("52:54:00:12:34:56", "127.0.0.1", receiver.getsockname()[1], count=2)
        assert [receiver.recv(200) for _ in range(2)] == [magic_packet("52:54:00:12:34:56")] * 2


INVENTORY = """\
all:
  hosts:
    a: {depot_mac: "52-54-00-AA-BB-01"}
    b: {ansible_host: 10.0.0.2}
    c: {depot_mac: "5254.00aa.bb03", other_mac: "52:54:00:aa:bb:33"}
"""


def test_host_macs_from_an_inventory(tmp_path):
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(INVENTORY)
    assert host_macs([str(inventory)], ["a", "b", "c", "unknown"], "depot_mac") == {
        "a": "52:54:00:aa:bb:01", "b": None, "c": "52:54:00:aa:bb:03", "unknown": None}
    assert host_macs([str(inventory)], ["c"], "other_mac") == {"c": "52:54:00:aa:bb:33"}
    # a later source wins
    override = tmp_path / "override.yml"
    override.write_text('all:\n  hosts:\n    b: {depot_mac: "52:54:00:aa:bb:02"}\n')
    assert host_macs([str(inventory), str(override)], ["a", "b"], "depot_mac") == {
        "a": "52:54:00:aa:bb:01", "b": "52:54:00:aa:bb:02"}


def test_host_macs_names_the_host_with_a_bad_mac(tmp_path):
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(INVENTORY + '    d: {depot_mac: "not-a-mac"}\n    e: {depot_mac: 52:54:00:12:34:56}\n')
    assert host_macs([str(inventory)], ["a", "b"], "depot_mac")["a"] == "52:54:00:aa:bb:01"  # only the asked hosts
    with pytest.raises(ValueError) as e:
        host_macs([str(inventory)], ["a", "d"], "depot_mac")
    assert str(e.value) == ("host 'd': depot_mac: 'not-a-mac' is not a MAC address "
                            "(expected six hex bytes, e.g. 52:54:00:12:34:56)")
    # unquoted, YAML 1.1 reads 52:54:00:12:34:56 as a base-60 number
    with pytest.raises(ValueError, match="host 'e': depot_mac is .*not a MAC address; quote it"):
        host_macs([str(inventory)], ["e"], "depot_mac")
