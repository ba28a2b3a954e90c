#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: software_facts
short_description: Inventory of the software installed on a host
version_added: 0.1.0
description:
  - Lists installed software from the host's package databases as one fact,
    C(ansible_facts.depot_software), with the same keys on every platform.
  - One module name works on every platform. This file is the POSIX implementation and the
    documentation of both; C(software_facts.ps1) is the Windows implementation, picked by Ansible
    when the connection's shell is PowerShell.
  - "B(POSIX): C(dpkg) runs one C(dpkg-query -W) (packages in an installed state; C(install_date)
    is the time dpkg last wrote the package's file list, that is its last install or upgrade);
    C(rpm) runs one C(rpm -qa) (the C(gpg-pubkey) pseudo-packages are left out). The rpm database
    is read only where one exists (C(/usr/lib/sysimage/rpm), C(/var/lib/rpm), C(~/.rpmdb)), so the
    module never creates one."
  - "B(Windows): C(registry) reads the Uninstall keys (C(HKLM) 64- and 32-bit views, scope
    C(machine); the C(HKCU) keys of the connecting user, scope C(user)), leaving out system
    components, updates and entries without a display name; C(msix) lists the provisioned and
    installed AppX/MSIX packages."
author:
  - Depot developers (!UNKNOWN)
options:
  name:
    description:
      - Only software whose name matches this shell-style glob (C(*), C(?), C([...])), compared
        case-insensitively. Default all.
    type: str
  sources:
    description:
      - Where to look. Default what the host has - on POSIX C(dpkg) when C(dpkg-query) is installed
        and C(rpm) when C(rpm) is installed and a database exists; on Windows C(registry) and C(msix).
      - A source the host does not have (including the other platform's) is skipped, so one task
        serves a mixed fleet; RV(sources) says which were read.
    type: list
    elements: str
    choices: [dpkg, rpm, registry, msix]
attributes:
  check_mode:
    support: full
    description: The module only reads; it behaves the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
  facts:
    support: full
    description: Returns C(ansible_facts.depot_software).
  platform:
    support: full
    platforms: [posix, windows]
    description: Linux (POSIX, this file) and Windows (C(software_facts.ps1)).
notes:
  - One process per source; no shell is involved.
seealso:
  - module: depot.software.preflight
  - module: ansible.builtin.package_facts
"""

EXAMPLES = r"""
- name: Inventory everything
  depot.software.software_facts:

- name: Is an OpenSSH server installed, and which version?
  depot.software.software_facts:
    name: openssh-server
- ansible.builtin.debug:
    msg: "{{ ansible_facts.depot_software | map(attribute='version') | first | default('absent') }}"

- name: Only the dpkg database, libraries only
  depot.software.software_facts:
    name: 'lib*'
    sources: [dpkg]

- name: Windows - everything 7-Zip from the Uninstall keys
  depot.software.software_facts:
    name: '7-Zip*'
    sources: [registry]
"""

RETURN = r"""
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: dict
  contains:
    depot_software:
      description:
        - One entry per installed package (or Uninstall entry), sorted by name then source.
        - Every entry has every key; a key the source does not know is null.
        - C(name) package name or display name; C(version) as the source writes it (dpkg
          C([epoch:]upstream-revision), rpm C([epoch:]version-release), the registry's
          C(DisplayVersion)); C(publisher) dpkg C(Maintainer), rpm C(Vendor), registry
          C(Publisher); C(source) C(dpkg), C(rpm), C(registry) or C(msix); C(product_code) the MSI
          product code or Uninstall key name (Windows); C(uninstall_string) the registry's
          C(QuietUninstallString) or C(UninstallString) (Windows); C(install_date) C(YYYY-MM-DD)
          (UTC on POSIX); C(architecture) dpkg C(amd64)/C(all), rpm C(x86_64)/C(noarch), Windows
          C(x64)/C(x86)/C(arm64); C(scope) C(machine), or C(user) for per-user software on Windows.
      type: list
      elements: dict
      returned: always
      sample:
        - name: openssh-server
          version: "1:9.2p1-2+deb12u3"
          publisher: Debian OpenSSH Maintainers <debian-ssh@lists.debian.org>
          source: dpkg
          product_code: null
          uninstall_string: null
          install_date: "2026-01-31"
          architecture: amd64
          scope: machine
sources:
  description: The sources actually read, in the order read.
  returned: always
  type: list
  elements: str
  sample: [dpkg]
"""

import fnmatch
import os
import time

from ansible.module_utils.basic import AnsibleModule

ALL_SOURCES = ["dpkg", "rpm", "registry", "msix"]
POSIX_SOURCES = ["dpkg", "rpm"]
KEYS = ["name", "version", "publisher", "source", "product_code", "uninstall_string",
        "install_date", "architecture", "scope"]

# Separators that no package name, version or architecture can contain (control characters);
# the one free-text field (maintainer / vendor) comes last and is split off with maxsplit.
FS = "\x1f"  # ASCII unit separator
RS = "\x1e"  # ASCII record separator

DPKG_ADMINDIR = "/var/lib/dpkg"
DPKG_FIELDS = ["db:Status-Abbrev", "Package", "Architecture", "Version", "Maintainer"]
DPKG_FORMAT = FS.join("${%s}" % f for f in DPKG_FIELDS) + RS + "\n"
# second letter of db:Status-Abbrev: installed, triggers-pending, triggers-awaited
DPKG_INSTALLED = ("i", "t", "W")

RPM_DBPATHS = ["/usr/lib/sysimage/rpm", "/var/lib/rpm", "~/.rpmdb"]
RPM_DBFILES = ["rpmdb.sqlite", "Packages", "Packages.db"]
RPM_FORMAT = FS.join([
    "%{NAME}",
    "%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}",
    "%{ARCH}",
    "%{INSTALLTIME}",
    "%{VENDOR}",
]) + RS + "\n"


def _entry(**values):
    entry = dict.fromkeys(KEYS)
    entry.update(values)
    entry["scope"] = entry["scope"] or "machine"
    return entry


def _date(epoch):
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


def _records(text, nfields):
    for record in text.split(RS):
        record = record.lstrip("\n")
        if not record:
            continue
        fields = record.split(FS, nfields - 1)
        if len(fields) == nfields:
            yield fields


def parse_dpkg(text, admindir=None):
    admindir = admindir or DPKG_ADMINDIR
    entries = []
    for status, name, arch, version, maintainer in _records(text, len(DPKG_FIELDS)):
        if len(status) < 2 or status[1] not in DPKG_INSTALLED or not name:
            continue
        install_date = None
        for list_name in ("%s:%s.list" % (name, arch), "%s.list" % name):
            try:
                install_date = _date(os.stat(os.path.join(admindir, "info", list_name)).st_mtime)
                break
            except OSError:
                pass
        entries.append(_entry(
            name=name, version=version or None, publisher=maintainer.strip() or None,
            source="dpkg", install_date=install_date, architecture=arch or None,
        ))
    return entries


def _none(value):
    value = value.strip()
    return None if not value or value == "(none)" else value


def parse_rpm(text):
    entries = []
    for name, version, arch, installtime, vendor in _records(text, 5):
        if not name or name == "gpg-pubkey":
            continue
        install_date = None
        if installtime.strip().isdigit():
            install_date = _date(int(installtime))
        entries.append(_entry(
            name=name, version=_none(version), publisher=_none(vendor), source="rpm",
            install_date=install_date, architecture=_none(arch),
        ))
    return entries


def find_rpm_dbpath(candidates=None):
    """The first candidate directory holding an rpm database, or None (never creates one)."""
    seen = set()
    for candidate in candidates or RPM_DBPATHS:
        path = os.path.realpath(os.path.expanduser(candidate))
        if path in seen:
            continue
        seen.add(path)
        if any(os.path.isfile(os.path.join(path, f)) for f in RPM_DBFILES):
            return path
    return None


def query_dpkg(module, dpkg_query):
    rc, out, err = module.run_command([dpkg_query, "-W", "-f", DPKG_FORMAT])
    if rc != 0:
        module.fail_json(msg="dpkg-query failed (rc %d): %s" % (rc, err.strip()), rc=rc, stderr=err)
    return parse_dpkg(out)


def query_rpm(module, rpm, dbpath):
    rc, out, err = module.run_command([rpm, "--dbpath", dbpath, "-qa", "--queryformat", RPM_FORMAT])
    if rc != 0:
        module.fail_json(msg="rpm -qa failed (rc %d): %s" % (rc, err.strip()), rc=rc, stderr=err)
    return parse_rpm(out)


def name_filter(pattern):
    if not pattern:
        return lambda name: True
    pattern = pattern.lower()
    return lambda name: fnmatch.fnmatchcase(name.lower(), pattern)


def gather(module, sources, pattern):
    """Return (entries, sources_read)."""
    requested = sources if sources else POSIX_SOURCES
    entries = []
    read = []
    for source in requested:
        if source in read:
            continue
        if source == "dpkg":
            dpkg_query = module.get_bin_path("dpkg-query")
            if not dpkg_query:
                continue
            entries.extend(query_dpkg(module, dpkg_query))
        elif source == "rpm":
            rpm = module.get_bin_path("rpm")
            dbpath = find_rpm_dbpath() if rpm else None
            if not dbpath:
                continue
            entries.extend(query_rpm(module, rpm, dbpath))
        else:
            continue  # registry, msix: Windows sources
        read.append(source)
    match = name_filter(pattern)
    entries = [e for e in entries if match(e["name"])]
    entries.sort(key=lambda e: (e["name"].lower(), e["name"], e["source"], e["architecture"] or ""))
    return entries, read


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str"),
            sources=dict(type="list", elements="str", choices=ALL_SOURCES),
        ),
        supports_check_mode=True,
    )
    entries, read = gather(module, module.params["sources"], module.params["name"])
    module.exit_json(changed=False, ansible_facts=dict(depot_software=entries), sources=read)


if __name__ == "__main__":
    main()
