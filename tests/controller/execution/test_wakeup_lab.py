"""Wake-on-LAN on the lab: a magic packet sent to the lab's broadcast address reaches an offline host."""

import socket

import pytest

from depot.execution.wakeup import host_macs, magic_packet, send

pytestmark = pytest.mark.lab


def test_magic_packet_reaches_the_offline_host(lab, lab_inventory):
    macs = host_macs([str(lab_inventory)], ["h2", "h3"], "depot_mac")
    assert macs == {"h2": lab.host("h2").mac, "h3": lab.host("h3").mac}
    with lab.wol_listener("h2") as listener:
        lab.offline("h2")
        try:
            assert lab.ssh("h2", "true").returncode == 255
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:  # not a magic packet, not broadcast
                sock.sendto(b"unicast", (lab.host("h2").address, 9))
            send(macs["h2"], lab.broadcast, 9, count=3)
            send(macs["h3"], lab.broadcast, 9, count=1)  # everybody hears it; its payload names h3
            listener.wait(4, timeout=10)
            packets = listener.wait(5, timeout=2)  # a moment for anything that should not come
        finally:
            lab.online("h2")
    assert len(packets) == 4 and all(len(p) == 102 for p in packets)  # the unicast did not reach the offline host
    named = [p[6:12].hex(":") for p in packets]
    assert sorted(named) == sorted([macs["h2"]] * 3 + [macs["h3"]])
    assert [p for p in packets if p[6:12].hex(":") == macs["h2"]] == [magic_packet(macs["h2"])] * 3


def test_listener_on_another_port_and_online_host(lab):
    with lab.wol_listener("h3", port=7) as listener:
        send(lab.host("h3").mac, lab.broadcast, 9)  # another port: not heard
        send(lab.host("h3").mac, lab.broadcast, 7, count=1)
        assert listener.wait(1, timeout=10) == [magic_packet(lab.host("h3").mac)]
    assert listener.wait(2, timeout=0.5) == [magic_packet(lab.host("h3").mac)]
    assert lab.ssh("h3", "true").returncode == 0
