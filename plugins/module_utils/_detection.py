# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Detection rules on POSIX hosts (DESIGN §2.3): is the thing installed?

Every rule answers True or False, or raises :class:`DetectionError` when it cannot be
evaluated, which makes the whole call fail before anything runs.
"""

from __future__ import annotations

import os
import re
import tempfile

from ansible_collections.depot.software.plugins.module_utils._spec import WINDOWS_ONLY_RULES


class DetectionError(Exception):
    pass


def _segments(version):
    return [int(s) if s.isdigit() else s for s in re.findall(r"\d+|[A-Za-z]+", version)]


def version_ge(actual, wanted):
    """``actual >= wanted``, comparing numeric and alphabetic segments in turn as rpmvercmp does
    (without epochs and tildes): 1.10 > 1.9, and a number beats letters at the same position."""
    a, b = _segments(actual), _segments(wanted)
    for x, y in zip(a, b):
        if x == y:
            continue
        if isinstance(x, int) != isinstance(y, int):
            return isinstance(x, int)
        return x > y
    return len(a) >= len(b)


class Detector(object):
    """Evaluates a ``detection`` spec with an AnsibleModule's run_command."""

    def __init__(self, module):
        self.module = module

    def evaluate(self, spec):
        """Return ``(detected, details)`` where details lists each rule's answer."""
        rules = spec.get("rules") or []
        if not rules:
            raise DetectionError("detection.rules is empty")
        details = []
        for index, rule in enumerate(rules):
            if not isinstance(rule, dict):
                raise DetectionError("detection.rules[%d] must be a dict" % index)
            try:
                answer = self.rule(rule)
            except DetectionError as e:
                raise DetectionError("detection.rules[%d] (%s): %s" % (index, rule.get("type"), e))
            details.append(dict(type=rule.get("type"), detected=answer))
        answers = [d["detected"] for d in details]
        detected = any(answers) if spec.get("match") == "any" else all(answers)
        return detected, details

    def rule(self, rule):
        kind = rule.get("type")
        if kind in WINDOWS_ONLY_RULES:
            raise DetectionError("rule type %s is only available on Windows hosts" % kind)
        handler = getattr(self, "_rule_%s" % kind, None)
        if handler is None:
            raise DetectionError("unknown rule type %r" % (kind,))
        return handler(rule)

    @staticmethod
    def _require(rule, key):
        value = rule.get(key)
        if value in (None, ""):
            raise DetectionError("option %s is required" % key)
        return str(value)

    def _rule_file(self, rule):
        path = self._require(rule, "path")
        if not os.path.isabs(path):
            raise DetectionError("path must be absolute, got %r" % path)
        if not os.path.isfile(path):
            return False
        if rule.get("version") is None:
            return True
        with open(path, errors="replace") as f:
            first = f.readline().strip()
        return bool(first) and version_ge(first, str(rule["version"]))

    def _rule_dpkg(self, rule):
        name = self._require(rule, "name")
        rc, out, err = self.module.run_command(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}\t${Version}", "--", name])
        if rc != 0:
            if "no packages found" in err or "not installed" in err or rc == 1:
                return False
            raise DetectionError("dpkg-query failed (rc %d): %s" % (rc, err.strip()))
        status, installed = (out.split("\t", 1) + [""])[:2]
        if not status.startswith("ii"):
            return False
        if rule.get("version") is None:
            return True
        compared = self.module.run_command(["dpkg", "--compare-versions", installed, "ge", str(rule["version"])])
        return compared[0] == 0

    def _rule_rpm(self, rule):
        name = self._require(rule, "name")
        rc, out, err = self.module.run_command(["rpm", "-q", "--qf", "%{VERSION}-%{RELEASE}\\n", "--", name])
        if rc != 0:
            if "is not installed" in out + err:
                return False
            raise DetectionError("rpm -q failed (rc %d): %s" % (rc, (out + err).strip()))
        if rule.get("version") is None:
            return True
        return any(version_ge(line, str(rule["version"])) for line in out.split())

    def _rule_script(self, rule):
        script = self._require(rule, "script")
        interpreter = rule.get("interpreter") or ["/bin/sh"]
        if not isinstance(interpreter, list) or not all(isinstance(i, str) for i in interpreter):
            raise DetectionError("interpreter must be a list of strings")
        fd, path = tempfile.mkstemp(prefix="depot-detect-")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(script)
            rc, out, err = self.module.run_command(interpreter + [path])
        finally:
            os.unlink(path)
        # The MECM/Intune truth table.
        if rc != 0:
            raise DetectionError("detection script exited %d (unknown state): %s" % (rc, err.strip()[-200:]))
        return bool(out.strip())


def default_rules(installer_type, product_id, version=None):
    """The rule implied by the installer type when the caller gave none, or None."""
    kinds = {"deb": "dpkg", "rpm": "rpm"}
    if installer_type in kinds and product_id:
        rule = dict(type=kinds[installer_type], name=product_id)
        if version:
            rule["version"] = version
        return dict(match="all", rules=[rule])
    return None
