"""Target resolution through ansible-inventory against a small static YAML inventory."""

import pytest

from depot.targets import service
from depot.targets.schemas import TargetSpec


def spec(inventory, **fields):
    return TargetSpec(inventory=str(inventory), **fields)


def test_group_with_children_in_inventory_order(inventory):
    assert service.resolve(spec(inventory, kind="group", group="linux")) == ["web1", "web2", "db1"]
    assert service.resolve(spec(inventory, kind="group", group="web")) == ["web1", "web2"]
    assert set(service.resolve(spec(inventory, kind="group", group="all"))) == {"web1", "web2", "db1", "lone"}
    assert service.resolve(spec(inventory, kind="group", group="empty")) == []


def test_hosts(inventory):
    assert service.resolve(spec(inventory, kind="host", hosts=["db1", "lone"])) == ["db1", "lone"]
    with pytest.raises(service.InventoryError, match="not in the inventory .*: ghost"):
        service.resolve(spec(inventory, kind="host", hosts=["db1", "ghost"]))


def test_unknown_group(inventory):
    with pytest.raises(service.InventoryError, match="group 'nope' is not in the inventory"):
        service.resolve(spec(inventory, kind="group", group="nope"))


@pytest.mark.parametrize("filters, expected", [
    ([{"var": "os_family", "op": "eq", "value": "Debian"}], ["web1", "db1"]),
    ([{"var": "os_family", "op": "ne", "value": "Debian"}], ["web2"]),
    ([{"var": "site", "op": "in", "value": ["dmz", "wan"]}], ["db1"]),
    ([{"var": "services", "op": "contains", "value": "php"}], ["web1"]),
    ([{"var": "db_engine", "op": "exists"}], ["db1"]),
    ([{"var": "os_family", "op": "eq", "value": "Debian"}, {"var": "site", "op": "eq", "value": "lan"}], ["web1"]),
    ([{"var": "missing.path", "op": "ne", "value": 1}], ["web1", "web2", "db1"]),
])
def test_dynamic_filters(inventory, filters, expected):
    assert service.resolve(spec(inventory, kind="dynamic", group="linux", filters=filters)) == expected


def test_dynamic_defaults_to_all(inventory):
    target = spec(inventory, kind="dynamic", filters=[{"var": "os_family", "op": "eq", "value": "Windows"}])
    assert target.group == "all"
    assert service.resolve(target) == ["lone"]


def test_unparsable_source_is_an_error(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("all: [this is not, an inventory\n")
    with pytest.raises(service.InventoryError, match="could not read"):
        service.resolve(spec(bad, kind="group", group="all"))


def test_one_call_reads_each_source_once(inventory, monkeypatch):
    calls = []
    real_run = service.subprocess.run

    def counting_run(argv, **kwargs):
        calls.append(argv)
        assert "ANSIBLE_CONFIG" not in kwargs["env"] and "ANSIBLE_INVENTORY_ENABLED" not in kwargs["env"]
        assert "shell" not in kwargs
        return real_run(argv, **kwargs)

    monkeypatch.setenv("ANSIBLE_CONFIG", "/nonexistent/ansible.cfg")
    monkeypatch.setenv("ANSIBLE_INVENTORY_ENABLED", "ini")       # would refuse the YAML inventory
    monkeypatch.setattr(service.subprocess, "run", counting_run)
    cache = {}
    service.resolve(spec(inventory, kind="group", group="web"), cache)
    service.resolve(spec(inventory, kind="group", group="db"), cache)
    assert len(calls) == 1
    assert calls[0][1:] == ["-i", str(inventory.resolve()), "--list"]
    assert calls[0][0].endswith("ansible-inventory")


@pytest.fixture
def runs(monkeypatch):
    """How many times ansible-inventory ran."""
    import subprocess
    calls = []
    real = subprocess.run

    def counting(argv, *args, **kwargs):
        if str(argv[0]).endswith("ansible-inventory"):
            calls.append(argv)
        return real(argv, *args, **kwargs)
    monkeypatch.setattr(service.subprocess, "run", counting)
    return calls


def test_a_static_inventory_is_read_once_per_version(inventory, runs):
    assert service.resolve(spec(inventory, kind="group", group="web")) == ["web1", "web2"]
    assert service.resolve(spec(inventory, kind="group", group="db")) == ["db1"]
    assert len(runs) <= 1                      # one read (none if an earlier test read this version)
    before = len(runs)
    inventory.write_text(inventory.read_text().replace("web2:", "web3:"))
    assert service.resolve(spec(inventory, kind="group", group="web")) == ["web1", "web3"]
    assert len(runs) == before + 1


def test_a_script_or_plugin_config_is_read_every_time(tmp_path, runs):
    script = tmp_path / "inventory.sh"
    script.write_text('#!/bin/sh\necho \'{"web": {"hosts": ["w1"]}, "_meta": {"hostvars": {}}}\'\n')
    script.chmod(0o755)
    for _ in range(2):
        assert service.resolve(spec(script, kind="group", group="web")) == ["w1"]
    assert len(runs) == 2
    config = tmp_path / "cloud.yml"
    config.write_text("plugin: ansible.builtin.constructed\nstrict: false\n")
    for _ in range(2):
        with pytest.raises(service.InventoryError):
            service.resolve(spec(config, kind="group", group="web"))
    assert len(runs) == 4
