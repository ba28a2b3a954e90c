# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument specs shared by the executors (modules) and the action plugins.

The module half of a spec is what one attempt on the host needs; the action half is what
only the controller-side loop uses (retries, exit-code classes, reboots). Keeping both here
means the action plugin validates exactly the options the module will receive, before
anything runs on the host.
"""

from __future__ import annotations

WINDOWS_INSTALLER_TYPES = ("msi", "msix", "exe", "msp", "choco", "winget")
POSIX_INSTALLER_TYPES = ("deb", "rpm", "script", "archive")
INSTALLER_TYPES = WINDOWS_INSTALLER_TYPES + POSIX_INSTALLER_TYPES

DETECTION_RULE_TYPES = ("file", "dpkg", "rpm", "msi", "msix", "registry", "script")
WINDOWS_ONLY_RULES = ("msi", "msix", "registry")
POSIX_ONLY_RULES = ("dpkg", "rpm")

RUN_AS_SPEC = dict(
    run_as=dict(type="str", default="system", choices=["system", "logged_in_user", "user"]),
    run_as_user=dict(type="str"),
    run_as_password=dict(type="str", no_log=True),
    # Windows only: how run_as user logs on; new_credentials is runas /netonly (shares only).
    run_as_logon_type=dict(type="str", default="interactive",
                           choices=["interactive", "batch", "network_cleartext", "new_credentials"]),
)

_DETECTION_SPEC = dict(
    type="dict",
    options=dict(
        match=dict(type="str", default="all", choices=["all", "any"]),
        rules=dict(type="list", elements="dict", required=True),
    ),
)

_COMMON_EXECUTION_SPEC = dict(
    timeout=dict(type="int", default=3600),
    tail_lines=dict(type="int", default=40),
    environment=dict(type="dict", default={}, no_log=True),
    detection=_DETECTION_SPEC,
    detect_only=dict(type="bool", default=False),
    **RUN_AS_SPEC
)

PACKAGE_MODULE_SPEC = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    installer_type=dict(type="str", required=True, choices=list(INSTALLER_TYPES)),
    product_id=dict(type="str"),
    version=dict(type="str"),
    src=dict(type="str"),
    checksum=dict(type="str"),
    cache_dir=dict(type="path"),
    arguments=dict(type="list", elements="str", default=[]),
    install_command=dict(type="raw"),
    uninstall_command=dict(type="raw"),
    log_path=dict(type="path"),
    **_COMMON_EXECUTION_SPEC
)

SCRIPT_MODULE_SPEC = dict(
    name=dict(type="str"),
    script=dict(type="str"),
    script_path=dict(type="str"),
    interpreter=dict(type="list", elements="str"),
    arguments=dict(type="list", elements="str", default=[]),
    secrets=dict(type="dict", default={}, no_log=True),
    **_COMMON_EXECUTION_SPEC
)
SCRIPT_MUTUALLY_EXCLUSIVE = [("script", "script_path")]
SCRIPT_REQUIRED_ONE_OF = [("script", "script_path")]

EXIT_CODE_CLASSES = ("success", "soft_reboot", "hard_reboot", "retry", "already")

# Options only the action plugin reads; they are never sent to the host.
ACTION_SPEC = dict(
    retries=dict(type="int", default=0),
    retry_interval=dict(type="int", default=30),
    retry_after_reboot=dict(type="bool", default=False),
    exit_codes=dict(type="dict", options={c: dict(type="list", elements="int") for c in EXIT_CODE_CLASSES}),
    reboot=dict(type="str", default="if_required", choices=["never", "if_required", "force"]),
    reboot_timing=dict(type="str", default="deferred", choices=["immediate", "deferred"]),
    reboot_timeout=dict(type="int", default=600),
    # ISO 8601 instant with a UTC offset: no reboot of ours that could end after it (maintenance window).
    reboot_not_after=dict(type="str"),
    reboot_command=dict(type="str"),
    boot_time_command=dict(type="str"),
    test_command=dict(type="str"),
    connect_timeout=dict(type="int", default=5),
)

# Required keys of each detection rule type.
RULE_REQUIRED = {
    "file": ("path",),
    "dpkg": ("name",),
    "rpm": ("name",),
    "msi": ("product_code",),
    "msix": ("name",),
    "registry": ("key",),
    "script": ("script",),
}


def detection_errors(spec, windows):
    """Problems that make a detection spec impossible to evaluate on this platform, each naming
    the rule by index; an empty list when it is fine."""
    if spec is None:
        return []
    errors = []
    rules = spec.get("rules") or []
    if not rules:
        errors.append("detection.rules must hold at least one rule")
    for index, rule in enumerate(rules):
        where = "detection.rules[%d]" % index
        if not isinstance(rule, dict):
            errors.append("%s must be a dict" % where)
            continue
        kind = rule.get("type")
        if kind not in DETECTION_RULE_TYPES:
            errors.append("%s.type %r is not one of %s" % (where, kind, ", ".join(DETECTION_RULE_TYPES)))
            continue
        if windows and kind in POSIX_ONLY_RULES or not windows and kind in WINDOWS_ONLY_RULES:
            errors.append("%s.type %s cannot be evaluated on a %s host" % (where, kind, "Windows" if windows else "POSIX"))
        for key in RULE_REQUIRED[kind]:
            if rule.get(key) in (None, ""):
                errors.append("%s.%s is required for a %s rule" % (where, key, kind))
        interpreter = rule.get("interpreter")
        if interpreter is not None and not (isinstance(interpreter, list) and all(isinstance(i, str) for i in interpreter)):
            errors.append("%s.interpreter must be a list of strings" % where)
    return errors
