"""Tests of depot.software.software_facts (POSIX): parsers, source selection, and real runs of the
module on this machine through `ansible localhost -m depot.software.software_facts`."""

import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
if os.path.join(ROOT, ".collections") not in sys.path:
    sys.path.insert(0, os.path.join(ROOT, ".collections"))

from ansible_collections.depot.software.plugins.modules import software_facts as sf  # noqa: E402

from tests.unit.plugins.modules.localhost import run_module  # noqa: E402

CONTRACT_KEYS = {"name", "version", "publisher", "source", "product_code", "uninstall_string",
                 "install_date", "architecture", "scope"}
US, RS = "\x1f", "\x1e"


class Failed(Exception):
    pass


class FakeModule:
    def __init__(self, bins=None, commands=None):
        self.bins = bins or {}
        self.commands = commands or {}
        self.ran = []

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return self.bins.get(name)

    def run_command(self, args, **kwargs):
        assert isinstance(args, list), "commands must be argv lists"
        assert "use_unsafe_shell" not in kwargs
        self.ran.append(args)
        for key, answer in self.commands.items():
            if tuple(args[: len(key)]) == key:
                return answer
        raise AssertionError("unexpected command %r" % (args,))

    def fail_json(self, **kwargs):
        raise Failed(kwargs)


def dpkg_record(status, name, arch, version, maintainer):
    return US.join([status, name, arch, version, maintainer]) + RS + "\n"


# ------------------------------------------------------------------------------------------------
# dpkg


def test_dpkg_format_uses_control_separators_and_puts_free_text_last():
    assert sf.DPKG_FORMAT.startswith("${db:Status-Abbrev}" + US + "${Package}")
    assert sf.DPKG_FORMAT.endswith("${Maintainer}" + RS + "\n")


def test_parse_dpkg(tmp_path):
    info = tmp_path / "info"
    info.mkdir()
    (info / "openssh-server.list").write_text("/.\n")
    (info / "libc6:amd64.list").write_text("/.\n")
    os.utime(str(info / "openssh-server.list"), (1767168000, 1767168000))
    os.utime(str(info / "libc6:amd64.list"), (1700000000, 1700000000))
    text = (
        dpkg_record("ii ", "openssh-server", "amd64", "1:9.2p1-2+deb12u3",
                    "Debian OpenSSH Maintainers <debian-ssh@lists.debian.org>")
        + dpkg_record("ii ", "libc6", "amd64", "2.36-9", "GNU Libc Maintainers <x@y> " + US + " odd")
        + dpkg_record("rc ", "old-package", "amd64", "1.0", "Someone <s@x>")  # config files only
        + dpkg_record("iU ", "half-unpacked", "amd64", "1.0", "Someone <s@x>")
        + dpkg_record("it ", "triggers-pending", "all", "2.0", "")
        + "garbage without separators" + RS + "\n"
    )
    entries = sf.parse_dpkg(text, str(tmp_path))
    assert [e["name"] for e in entries] == ["openssh-server", "libc6", "triggers-pending"]
    ssh = entries[0]
    assert ssh == {"name": "openssh-server", "version": "1:9.2p1-2+deb12u3",
                   "publisher": "Debian OpenSSH Maintainers <debian-ssh@lists.debian.org>",
                   "source": "dpkg", "product_code": None, "uninstall_string": None,
                   "install_date": "2025-12-31", "architecture": "amd64", "scope": "machine"}
    assert entries[1]["install_date"] == "2023-11-14"  # multi-arch list file name
    assert entries[1]["publisher"] == "GNU Libc Maintainers <x@y> " + US + " odd"  # free text intact
    assert entries[2]["publisher"] is None and entries[2]["install_date"] is None
    assert all(set(e) == CONTRACT_KEYS for e in entries)


def test_query_dpkg_is_one_argv_command():
    out = dpkg_record("ii ", "zlib1g", "amd64", "1:1.2.13.dfsg-1", "Mark Brown <broonie@debian.org>")
    module = FakeModule(bins={"dpkg-query": "/usr/bin/dpkg-query"},
                        commands={("/usr/bin/dpkg-query",): (0, out, "")})
    entries, read = sf.gather(module, ["dpkg"], None)
    assert read == ["dpkg"] and [e["name"] for e in entries] == ["zlib1g"]
    assert module.ran == [["/usr/bin/dpkg-query", "-W", "-f", sf.DPKG_FORMAT]]


def test_dpkg_query_failure_fails_the_module():
    module = FakeModule(bins={"dpkg-query": "/usr/bin/dpkg-query"},
                        commands={("/usr/bin/dpkg-query",): (2, "", "dpkg-query: error: parsing file\n")})
    with pytest.raises(Failed) as e:
        sf.gather(module, ["dpkg"], None)
    assert "dpkg-query failed" in e.value.args[0]["msg"] and "parsing file" in e.value.args[0]["msg"]


# ------------------------------------------------------------------------------------------------
# rpm


def test_parse_rpm():
    rec = lambda *f: US.join(f) + RS + "\n"  # noqa: E731
    text = (
        rec("bash", "5.2.26-3.fc40", "x86_64", "1767168000", "Fedora Project")
        + rec("openssh-server", "2:9.6p1-1.fc40", "x86_64", "1700000000", "(none)")
        + rec("gpg-pubkey", "a15b79cc-63d04c2c", "(none)", "1700000000", "(none)")
        + rec("fonts-filesystem", "1:2.0.5-14.fc40", "noarch", "(none)", "")
    )
    entries = sf.parse_rpm(text)
    assert [e["name"] for e in entries] == ["bash", "openssh-server", "fonts-filesystem"]
    assert entries[0] == {"name": "bash", "version": "5.2.26-3.fc40", "publisher": "Fedora Project",
                          "source": "rpm", "product_code": None, "uninstall_string": None,
                          "install_date": "2025-12-31", "architecture": "x86_64", "scope": "machine"}
    assert entries[1]["publisher"] is None and entries[1]["version"] == "2:9.6p1-1.fc40"
    assert entries[2]["install_date"] is None and entries[2]["architecture"] == "noarch"


def test_rpm_format_epoch_only_when_set():
    assert "%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}" in sf.RPM_FORMAT
    assert sf.RPM_FORMAT.endswith("%{VENDOR}" + RS + "\n")


def test_find_rpm_dbpath_never_creates(tmp_path):
    empty, real = tmp_path / "var-lib-rpm", tmp_path / "sysimage-rpm"
    empty.mkdir()
    real.mkdir()
    assert sf.find_rpm_dbpath([str(empty), str(tmp_path / "missing")]) is None
    assert sorted(os.listdir(str(empty))) == [] and not (tmp_path / "missing").exists()
    (real / "rpmdb.sqlite").write_bytes(b"")
    assert sf.find_rpm_dbpath([str(empty), str(real)]) == str(real)
    (empty / "Packages").write_bytes(b"")  # a BerkeleyDB database
    assert sf.find_rpm_dbpath([str(empty), str(real)]) == str(empty)


def test_rpm_skipped_without_database(monkeypatch, tmp_path):
    monkeypatch.setattr(sf, "RPM_DBPATHS", [str(tmp_path)])
    module = FakeModule(bins={"rpm": "/usr/bin/rpm"})
    assert sf.gather(module, ["rpm"], None) == ([], [])
    assert module.ran == []  # rpm -qa would create a database


def test_rpm_reads_the_database_found(monkeypatch, tmp_path):
    (tmp_path / "rpmdb.sqlite").write_bytes(b"")
    monkeypatch.setattr(sf, "RPM_DBPATHS", [str(tmp_path)])
    out = US.join(["bash", "5.2-1", "x86_64", "1767168000", "V"]) + RS + "\n"
    module = FakeModule(bins={"rpm": "/usr/bin/rpm"}, commands={("/usr/bin/rpm",): (0, out, "")})
    entries, read = sf.gather(module, None, None)
    assert read == ["rpm"] and entries[0]["name"] == "bash"
    assert module.ran == [["/usr/bin/rpm", "--dbpath", str(tmp_path), "-qa", "--queryformat", sf.RPM_FORMAT]]


# ------------------------------------------------------------------------------------------------
# filter and sources


@pytest.mark.parametrize("pattern, name, expected", [
    (None, "anything", True),
    ("openssh-server", "openssh-server", True),
    ("openssh-*", "openssh-client", True),
    ("OpenSSH*", "openssh-client", True),  # case-insensitive, as on Windows
    ("lib?", "libc", True),
    ("lib?", "libc6", False),
    ("[ab]ash", "bash", True),
    ("ssh", "openssh-server", False),  # a glob, not a substring
])
def test_name_filter(pattern, name, expected):
    assert sf.name_filter(pattern)(name) is expected


def test_windows_sources_are_skipped_on_posix():
    module = FakeModule(bins={"dpkg-query": "/usr/bin/dpkg-query"})
    assert sf.gather(module, ["registry", "msix"], None) == ([], [])
    assert module.ran == []


def test_missing_tool_is_skipped():
    assert sf.gather(FakeModule(), ["dpkg", "rpm"], None) == ([], [])


# ------------------------------------------------------------------------------------------------
# for real, through ansible


def dpkg_installed():
    out = subprocess.run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}|${Package}|${Architecture}|${Version}\n"],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        status, name, arch, version = line.split("|")
        if len(status) > 1 and status[1] in "itW":
            rows.append((name, arch, version))
    return rows


needs_dpkg = pytest.mark.skipif(not shutil.which("dpkg-query"), reason="no dpkg on this machine")


@needs_dpkg
def test_ansible_finds_openssh_server_with_its_real_version():
    expected = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "openssh-server"],
                              capture_output=True, text=True, check=True).stdout
    rc, result = run_module("depot.software.software_facts", {"name": "openssh-server"})
    assert rc == 0, result
    assert result["changed"] is False
    entries = result["ansible_facts"]["depot_software"]
    assert len(entries) == 1
    ssh = entries[0]
    assert set(ssh) == CONTRACT_KEYS
    assert ssh["name"] == "openssh-server" and ssh["version"] == expected
    assert ssh["source"] == "dpkg" and ssh["scope"] == "machine"
    assert ssh["product_code"] is None and ssh["uninstall_string"] is None
    assert "OpenSSH" in ssh["publisher"]
    time.strptime(ssh["install_date"], "%Y-%m-%d")
    assert "dpkg" in result["sources"]


@needs_dpkg
def test_ansible_full_dpkg_inventory_matches_dpkg_query():
    rc, result = run_module("depot.software.software_facts", {"sources": ["dpkg"]}, check=True)
    assert rc == 0, result
    assert result["sources"] == ["dpkg"]
    got = sorted((e["name"], e["architecture"], e["version"]) for e in result["ansible_facts"]["depot_software"])
    assert got == sorted(dpkg_installed())
    assert all(set(e) == CONTRACT_KEYS for e in result["ansible_facts"]["depot_software"])


def test_ansible_glob_without_match_is_empty():
    rc, result = run_module("depot.software.software_facts", {"name": "no-such-package-*"})
    assert rc == 0 and result["ansible_facts"]["depot_software"] == []


def test_ansible_windows_sources_on_posix_read_nothing():
    rc, result = run_module("depot.software.software_facts", {"sources": ["registry", "msix"]})
    assert rc == 0, result
    assert result["sources"] == [] and result["ansible_facts"]["depot_software"] == []


def test_ansible_bad_source_names_the_option():
    rc, result = run_module("depot.software.software_facts", {"sources": ["apk"]})
    assert rc != 0 and "sources" in result["msg"]


@pytest.mark.skipif(not (shutil.which("rpm") and shutil.which("rpmbuild")), reason="needs rpm and rpmbuild")
def test_ansible_reads_a_real_rpm_database(tmp_path):
    """Build a tiny rpm, record it in an rpm database under $HOME/.rpmdb (Debian's rpm default
    database path, one of the module's candidates) and read it through the module."""
    home = tmp_path / "home"
    home.mkdir()
    spec = tmp_path / "t.spec"
    spec.write_text(textwrap.dedent("""\
        Name: depot-test-pkg
        Version: 1.2.3
        Release: 4
        Epoch: 2
        Summary: depot test package
        License: MIT
        Vendor: Depot Test Vendor
        BuildArch: noarch
        %description
        test
        %files
    """))
    subprocess.run(["rpmbuild", "-bb", "--define", "_topdir %s" % (tmp_path / "top"), str(spec)],
                   check=True, capture_output=True)
    rpm_file = next((tmp_path / "top" / "RPMS" / "noarch").glob("*.rpm"))
    dbpath = home / ".rpmdb"
    dbpath.mkdir()
    subprocess.run(["rpm", "--dbpath", str(dbpath), "-i", "--justdb", "--nodeps", "--nosignature", str(rpm_file)],
                   check=True, capture_output=True)
    installtime = int(subprocess.run(["rpm", "--dbpath", str(dbpath), "-q", "--queryformat", "%{INSTALLTIME}",
                                      "depot-test-pkg"], check=True, capture_output=True, text=True).stdout)
    if os.path.realpath(str(dbpath)) != sf.find_rpm_dbpath(["/usr/lib/sysimage/rpm", "/var/lib/rpm", str(dbpath)]):
        pytest.skip("this machine has a system rpm database, which the module prefers")

    rc, result = run_module("depot.software.software_facts", {"sources": ["rpm"], "name": "depot-test-*"},
                            env={"HOME": str(home)})
    assert rc == 0, result
    assert result["sources"] == ["rpm"]
    assert result["ansible_facts"]["depot_software"] == [{
        "name": "depot-test-pkg", "version": "2:1.2.3-4", "publisher": "Depot Test Vendor", "source": "rpm",
        "product_code": None, "uninstall_string": None,
        "install_date": time.strftime("%Y-%m-%d", time.gmtime(installtime)),
        "architecture": "noarch", "scope": "machine",
    }]


@pytest.mark.skipif(not shutil.which("rpm"), reason="needs rpm")
def test_ansible_does_not_create_an_rpm_database(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    if sf.find_rpm_dbpath(["/usr/lib/sysimage/rpm", "/var/lib/rpm"]):
        pytest.skip("this machine has a system rpm database")
    rc, result = run_module("depot.software.software_facts", {"name": "openssh-server"}, env={"HOME": str(home)})
    assert rc == 0, result
    assert "rpm" not in result["sources"]
    assert not (home / ".rpmdb").exists()
