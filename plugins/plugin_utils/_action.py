# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller-side half of ``package`` and ``script``: validate everything before the host
is touched, then run the attempt loop over the module (one remote execution per attempt)."""

from __future__ import annotations

import datetime
import re
import time

from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure
from ansible.plugins.action import ActionBase

from ansible_collections.depot.software.plugins.module_utils._spec import ACTION_SPEC, detection_errors
from ansible_collections.depot.software.plugins.plugin_utils._exit_codes import Classifier, ExitCodeError
from ansible_collections.depot.software.plugins.plugin_utils._loop import AttemptLoop, Host, HostUnreachable
from ansible_collections.depot.software.plugins.plugin_utils._reboot import Rebooter, is_windows, reboot_commands

# Messages of a connection that was never established, as opposed to one lost mid-session.
_CONNECT_FAILURES = re.compile(
    r"connect to host|Connection refused|No route to host|Connection timed out|timed out during banner"
    r"|Could not resolve|Name or service not known|Permission denied|Failed to establish a new connection",
    re.IGNORECASE,
)


# psrp and winrm wrap errors as AnsibleConnectionFailure only while connecting; a session that
# breaks mid-command surfaces as requests' ConnectionError, an OSError.
CONNECTION_ERRORS = (AnsibleConnectionFailure, OSError)


def prefer_python_implementation(connection):
    """Make a POSIX connection pick ``name.py`` over ``name.ps1``.

    Our modules ship both files under one name. Windows connections prefer ``.ps1``; the ssh
    and local connections take any suffix (``('',)``), and the module loader then returns
    whichever file the directory lists first.
    """
    preferences = tuple(connection.module_implementation_preferences)
    if ".py" not in preferences:
        connection.module_implementation_preferences = (".py",) + preferences


def is_connect_failure(message):
    return bool(_CONNECT_FAILURES.search(message or ""))


class _AnsibleHost(Host):
    def __init__(self, action, module_name, module_args, task_vars, rebooter):
        self.action = action
        self.module_name = module_name
        self.module_args = module_args
        self.task_vars = task_vars
        self.rebooter = rebooter

    def attempt(self, detect_only=False):
        args = dict(self.module_args, detect_only=detect_only)
        # Connect first, on its own: whatever fails here failed before any session existed. (The
        # ssh plugin connects per command, so for it the message tells - is_connect_failure.)
        try:
            self.action._connection._connect()
        except CONNECTION_ERRORS as e:
            raise HostUnreachable(str(e), at_connect=True)
        try:
            result = self.action._execute_module(module_name=self.module_name, module_args=args, task_vars=self.task_vars)
        except CONNECTION_ERRORS as e:
            raise HostUnreachable(str(e), at_connect=is_connect_failure(str(e)))
        if result.get("unreachable"):
            raise HostUnreachable(result.get("msg", "unreachable"), at_connect=is_connect_failure(result.get("msg")))
        return result

    def reboot(self, previous_boot_id):
        return self.rebooter.reboot(previous_boot_id)

    def wait_for_boot(self, previous_boot_id):
        return self.rebooter.wait_for_boot(previous_boot_id)

    def sleep(self, seconds):
        time.sleep(seconds)


class ExecutorAction(ActionBase):
    """Runs the module of the same name once, as is, taking ``name.py`` on POSIX hosts; for
    modules with no loop of their own (preflight, software_facts)."""

    TRANSFERS_FILES = False
    MODULE = None

    def run(self, tmp=None, task_vars=None):
        result = super(ExecutorAction, self).run(tmp, task_vars)
        if not is_windows(self._connection):
            prefer_python_implementation(self._connection)
        result.update(self._execute_module(module_name=self.MODULE, module_args=self._task.args, task_vars=task_vars))
        return result


class DepotAction(ActionBase):
    """Subclasses name the module and its argument spec and add their own checks."""

    TRANSFERS_FILES = False
    _requires_connection = True
    MODULE = None
    MODULE_SPEC = {}
    MUTUALLY_EXCLUSIVE = ()
    REQUIRED_ONE_OF = ()

    def extra_errors(self, args, windows):
        """Checks specific to the module; each message names its option."""
        return []

    def want_present(self, args):
        return True

    def installer_type(self, args):
        return None

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(DepotAction, self).run(tmp, task_vars)
        try:
            return dict(result, **self._run(task_vars))
        except AnsibleActionFail as e:
            return dict(result, failed=True, msg=str(e), outcome="invalid", changed=False)

    def _run(self, task_vars):
        windows = is_windows(self._connection)
        if not windows:
            prefer_python_implementation(self._connection)
        spec = dict(self.MODULE_SPEC, **ACTION_SPEC)
        args = self.validate_argument_spec(
            argument_spec=spec,
            mutually_exclusive=list(self.MUTUALLY_EXCLUSIVE),
            required_one_of=list(self.REQUIRED_ONE_OF),
        )[1]
        errors = self._common_errors(args, windows) + self.extra_errors(args, windows)
        try:
            classifier = Classifier(args["exit_codes"], state=args.get("state", "present"),
                                    installer_type=self.installer_type(args))
        except ExitCodeError as e:
            errors.append(str(e))
        try:
            not_after = parse_instant("reboot_not_after", args["reboot_not_after"])
        except ValueError as e:
            errors.append(str(e))
        if errors:
            raise AnsibleActionFail("; ".join(errors))

        rebooter = Rebooter(self, reboot_commands(self._connection, args, task_vars),
                            reboot_timeout=args["reboot_timeout"], connect_timeout=args["connect_timeout"])
        module_args = {k: v for k, v in args.items() if k in self.MODULE_SPEC and v is not None}
        host = _AnsibleHost(self, self.MODULE, module_args, task_vars, rebooter)
        loop = AttemptLoop(host, classifier, want_present=self.want_present(args), retries=args["retries"],
                           retry_interval=args["retry_interval"], retry_after_reboot=args["retry_after_reboot"],
                           reboot=args["reboot"], reboot_timing=args["reboot_timing"],
                           reboot_not_after=not_after, reboot_duration=args["reboot_timeout"])
        return loop.run()

    def _common_errors(self, args, windows):
        errors = []
        for option in ("timeout", "tail_lines", "retries", "retry_interval"):
            if args[option] < 0:
                errors.append("%s must be 0 or more, got %d" % (option, args[option]))
        for option in ("reboot_timeout", "connect_timeout"):
            if args[option] <= 0:
                errors.append("%s must be more than 0, got %d" % (option, args[option]))
        if args["run_as"] == "user":
            if not args["run_as_user"]:
                errors.append("run_as_user is required when run_as is user (the credential is missing)")
            if windows and not args["run_as_password"]:
                errors.append("run_as_password is required when run_as is user on a Windows host (the credential is missing)")
        else:
            for option in ("run_as_user", "run_as_password"):
                if args[option]:
                    errors.append("%s is only used with run_as: user, but run_as is %s" % (option, args["run_as"]))
        errors += detection_errors(args["detection"], windows)
        errors += env_name_errors("environment", args.get("environment") or {})
        return errors


def parse_instant(option, value):
    """``value`` (ISO 8601 with a UTC offset, e.g. 2026-05-01T06:00:00Z) as an aware datetime; None
    stays None. A ValueError names ``option``."""
    if value is None:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValueError("%s must be an ISO 8601 date and time with a UTC offset (such as 2026-05-01T06:00:00Z), "
                         "got %r" % (option, value))
    return moment


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def env_name_errors(option, names):
    return ["%s: %r is not a valid environment variable name" % (option, n) for n in names if not _ENV_NAME.match(str(n))]
