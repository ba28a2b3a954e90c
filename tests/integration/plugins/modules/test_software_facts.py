"""depot.software.software_facts with ansible-playbook on the lab's real hosts: packages installed
with dpkg inside one host are listed there, with what dpkg itself says, and nowhere else."""

import shutil
import subprocess
import time

import pytest

pytestmark = pytest.mark.lab

HOST, OTHER = "h6", "h7"
PACKAGES = {  # name: (version, maintainer)
    "dhlp-facts-probe": ("1:2.3.4-1", "Depot Helper <helper@example.invalid>"),
    "dhlp-facts-other": ("0.9", "Someone Else <else@example.invalid>"),
}
DEB_DIR = "/opt/depot-test/helper-facts"
KEYS = ["architecture", "install_date", "name", "product_code", "publisher", "scope", "source", "uninstall_string",
        "version"]


def build_deb(root, name, version, maintainer):
    pkg = root / name
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "opt" / name).mkdir(parents=True)
    (pkg / "opt" / name / "README").write_text("%s %s\n" % (name, version))
    (pkg / "etc").mkdir()
    (pkg / "etc" / ("%s.conf" % name)).write_text("setting=1\n")
    (pkg / "DEBIAN" / "conffiles").write_text("/etc/%s.conf\n" % name)
    (pkg / "DEBIAN" / "control").write_text(
        "Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: %s\nDescription: Depot lab facts probe\n"
        % (name, version, maintainer))
    deb = root / ("%s.deb" % name)
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(pkg), str(deb)], check=True, capture_output=True)
    return deb


@pytest.fixture(scope="module")
def installed(lab, tmp_path_factory):
    """Both test packages installed with dpkg -i inside HOST only; removed afterwards."""
    root = tmp_path_factory.mktemp("facts-debs")
    inside = lab.host_path(HOST, DEB_DIR)
    inside.mkdir(parents=True, exist_ok=True)
    for name, (version, maintainer) in PACKAGES.items():
        shutil.copy(str(build_deb(root, name, version, maintainer)), str(inside / ("%s.deb" % name)))
    done = lab.exec(HOST, ["dpkg", "-i"] + ["%s/%s.deb" % (DEB_DIR, name) for name in PACKAGES])
    assert done.returncode == 0, done.stderr
    try:
        yield PACKAGES
    finally:
        lab.exec(HOST, ["dpkg", "--purge"] + list(PACKAGES))
        lab.exec(HOST, ["rm", "-rf", DEB_DIR])


def facts(**args):
    return [{"depot.software.software_facts": args, "register": "r"}]


def listed(result):
    assert not result.get("failed", False), result.get("msg")
    return result["ansible_facts"]["depot_software"]


def host_packages(lab, host):
    """Installed package names according to the host's own dpkg."""
    out = lab.exec(host, ["dpkg-query", "-W", "-f", "${db:Status-Abbrev}\t${Package}\n"]).stdout
    return {name for status, name in (line.split("\t") for line in out.splitlines()) if status[1:2] in ("i", "t", "W")}


def test_installed_deb_is_listed_with_its_version_on_that_host_only(lab, play, installed):
    results = play(facts(name="dhlp-facts-probe"), "%s,%s" % (HOST, OTHER))
    here, there = listed(results.last(HOST)), listed(results.last(OTHER))
    assert there == []
    assert len(here) == 1
    entry = here[0]
    assert sorted(entry) == KEYS
    assert entry["name"] == "dhlp-facts-probe"
    assert entry["version"] == "1:2.3.4-1"
    assert lab.exec(HOST, ["dpkg-query", "-W", "-f", "${Version}", "dhlp-facts-probe"]).stdout == entry["version"]
    assert (entry["source"], entry["architecture"], entry["scope"]) == ("dpkg", "all", "machine")
    assert entry["publisher"] == "Depot Helper <helper@example.invalid>"
    assert (entry["product_code"], entry["uninstall_string"]) == (None, None)
    listing = lab.host_path(HOST, "/var/lib/dpkg/info/dhlp-facts-probe.list")
    assert entry["install_date"] == time.strftime("%Y-%m-%d", time.gmtime(listing.stat().st_mtime))
    assert "dpkg" in results.last(HOST)["sources"]
    assert results.last(HOST).get("changed") is False


def test_name_glob_filters_case_insensitively(lab, play, installed):
    both = listed(play(facts(name="dhlp-facts-*"), HOST).last(HOST))
    assert [e["name"] for e in both] == ["dhlp-facts-other", "dhlp-facts-probe"]  # sorted by name
    assert {e["name"]: e["version"] for e in both} == {n: v for n, (v, _) in PACKAGES.items()}

    assert [e["name"] for e in listed(play(facts(name="DHLP-Facts-P*"), HOST).last(HOST))] == ["dhlp-facts-probe"]
    assert [e["name"] for e in listed(play(facts(name="dhlp-facts-?ther"), HOST).last(HOST))] == ["dhlp-facts-other"]
    assert listed(play(facts(name="dhlp-facts"), HOST).last(HOST)) == []  # a glob, not a substring


def test_removed_package_is_no_longer_listed(lab, play, installed):
    """dpkg -r keeps the package's conffile (state config-files, rc): known to dpkg, not installed, not listed."""
    lab.exec(HOST, ["dpkg", "-r", "dhlp-facts-other"])
    try:
        status = lab.exec(HOST, ["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", "dhlp-facts-other"]).stdout.strip()
        assert status == "rc"
        names = [e["name"] for e in listed(play(facts(name="dhlp-facts-*"), HOST).last(HOST))]
        assert names == ["dhlp-facts-probe"]
    finally:
        lab.exec(HOST, ["dpkg", "-i", "%s/dhlp-facts-other.deb" % DEB_DIR])


def test_unfiltered_list_is_the_hosts_dpkg_database(lab, play, installed):
    results = play(facts(), "%s,%s" % (HOST, OTHER))
    for host in (HOST, OTHER):
        entries = listed(results.last(host))
        assert {e["name"] for e in entries if e["source"] == "dpkg"} == host_packages(lab, host)
        assert {e["source"] for e in entries} <= set(results.last(host)["sources"])
        names = [(e["name"].lower(), e["name"]) for e in entries]
        assert names == sorted(names)
    assert set(PACKAGES) <= host_packages(lab, HOST)
    assert set(PACKAGES).isdisjoint(host_packages(lab, OTHER))
