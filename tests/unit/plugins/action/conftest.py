# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the contract tests of the Windows branch of the action plugins.

There is no Windows host here. The action plugins (``plugins/action/package.py`` and ``script.py``)
are built the way ansible-core's own unit tests build action plugins - a ``Task`` with args, a
``PlayContext``, a ``DataLoader``, a ``Templar`` and ``ansible.plugins.loader`` as the shared loader
object - over the *real* ``psrp`` (or ``winrm``) connection plugin, whose ``_shell`` is ansible's
PowerShell shell plugin. The connection never connects: the two methods of the action that reach
the host are replaced on the instance:

- ``_execute_module`` replays results in the exact shape ``package.ps1`` / ``script.ps1`` return
  (``Initialize-DepotResult`` and ``Set-DepotRunResult`` in ``_DepotWin.psm1``, plus the
  ``invocation`` that ``Ansible.Basic`` adds), or raises what the connection plugin raises;
- ``_low_level_execute_command`` answers the raw commands of the reboot machinery (reboot command,
  boot time command, readiness test command) with recorded results, or raises.

Time is a fake clock: the Rebooter gets it as its ``clock``/``sleep``, and the ``time`` names of the
loop's modules point at it, so nothing waits and nothing depends on timing.

The connection error messages below were recorded from ansible-core 2.19's ``psrp`` and ``winrm``
connection plugins (pypsrp 0.9, pywinrm 0.5, requests 2.34, urllib3 2.8) pointed at a closed port,
a server that drops the connection without answering, and a server that answers 401 - then the
loopback address was replaced by a host name.
"""

from __future__ import annotations

import copy
import datetime
import functools
import pathlib
import re
import types

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.playbook.task import Task
from ansible.plugins import loader as plugin_loader
from ansible.plugins.loader import connection_loader
from ansible.template import Templar

from ansible_collections.depot.software.plugins.action import package as package_action
from ansible_collections.depot.software.plugins.action import script as script_action
from ansible_collections.depot.software.plugins.plugin_utils import _action, _reboot

COLLECTION_ROOT = pathlib.Path(__file__).resolve().parents[4]
HOST = "win1.depot.test"

# ------------------------------------------------------------------------------------------------
# Boot ids: Get-DepotBootId and the default boot_time_command both print LastBootUpTime.ToFileTime().

_FILETIME_EPOCH = datetime.datetime(1601, 1, 1, tzinfo=datetime.timezone.utc)


def filetime(moment):
    """A datetime as the decimal FILETIME string PowerShell prints for ``[DateTime].ToFileTime()``."""
    delta = moment - _FILETIME_EPOCH
    return str((delta.days * 86400 + delta.seconds) * 10 ** 7 + delta.microseconds * 10)


BOOT_1 = filetime(datetime.datetime(2026, 11, 20, 6, 12, 41, 503221, tzinfo=datetime.timezone.utc))
BOOT_2 = filetime(datetime.datetime(2026, 11, 21, 10, 24, 7, 118904, tzinfo=datetime.timezone.utc))

# ------------------------------------------------------------------------------------------------
# Recorded connection errors (see the module docstring).

# Nothing listens on the WinRM port (the host is down or still booting): at connect.
PSRP_REFUSED = (
    "Failed to connect to the host via PSRP: HTTPSConnectionPool(host='win1.depot.test', port=5986): Max retries "
    "exceeded with url: /wsman (Caused by NewConnectionError(\"HTTPSConnection(host='win1.depot.test', port=5986): "
    "Failed to establish a new connection: [Errno 111] Connection refused\"))"
)
WINRM_REFUSED = (
    "ntlm: HTTPSConnectionPool(host='win1.depot.test', port=5986): Max retries exceeded with url: /wsman (Caused by "
    "NewConnectionError(\"HTTPSConnection(host='win1.depot.test', port=5986): Failed to establish a new connection: "
    "[Errno 111] Connection refused\"))"
)
REFUSED = {"psrp": PSRP_REFUSED, "winrm": WINRM_REFUSED}
# The connection was dropped while a command was running (the host is going down). The psrp and winrm
# plugins let this through as a raw requests.exceptions.ConnectionError; wrapped, it reads the same.
ABORTED = "('Connection aborted.', RemoteDisconnected('Remote end closed connection without response'))"
RESET_BY_PEER = "('Connection aborted.', ConnectionResetError(104, 'Connection reset by peer'))"
# What the plugins do wrap while a command runs: read timeouts.
PSRP_READ_TIMEOUT = "HTTP read timeout during PSRP script execution"
WINRM_READ_TIMEOUT = (
    "winrm connection error: HTTPSConnectionPool(host='win1.depot.test', port=5986): Read timed out. (read timeout=30)"
)
# Never connected: wrong password, connect timeout, connection dropped while opening the runspace.
PSRP_AUTH = "failed to authenticate with the server: Failed to authenticate the user Administrator with ntlm"
WINRM_AUTH = "ntlm: the specified credentials were rejected by the server"
PSRP_CONNECT_TIMEOUT = (
    "Failed to connect to the host via PSRP: HTTPSConnectionPool(host='win1.depot.test', port=5986): Max retries "
    "exceeded with url: /wsman (Caused by ConnectTimeoutError(<HTTPSConnection(host='win1.depot.test', port=5986) at "
    "0x7f3c1a2b9d50>, 'Connection to win1.depot.test timed out. (connect timeout=5)'))"
)
PSRP_ABORTED_AT_OPEN = "Failed to connect to the host via PSRP: " + ABORTED

# ------------------------------------------------------------------------------------------------
# Raw command results, as ActionBase._low_level_execute_command returns them over psrp/winrm.


def raw(rc=0, stdout="", stderr=""):
    return dict(rc=rc, stdout=stdout, stdout_lines=stdout.splitlines(), stderr=stderr, stderr_lines=stderr.splitlines())


def boot_time(value):
    return raw(stdout=value + "\r\n")


SHUTDOWN_OK = raw()  # shutdown.exe /r prints nothing when the restart is scheduled
SHUTDOWN_ALREADY_SCHEDULED = raw(1190, stderr="A system shutdown has already been scheduled.(1190)\r\n")
LOGONUI_STARTING = raw(1, stderr=(
    "LogonUI still starting\r\nAt line:1 char:118\r\n"
    "+ ... -lt [TimeSpan]::FromSeconds(30)) { throw 'LogonUI still starting' } }; ...\r\n"
    "+                                         ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\r\n"
    "    + CategoryInfo          : OperationStopped: (LogonUI still starting:String) [], RuntimeException\r\n"
    "    + FullyQualifiedErrorId : LogonUI still starting\r\n"
))
READY = raw(stdout="ready\r\n")

# ------------------------------------------------------------------------------------------------
# Module results in the shape package.ps1 / script.ps1 return.

SYSTEM = "NT AUTHORITY\\SYSTEM"
MSIEXEC = "C:\\Windows\\System32\\msiexec.exe"
POWERSHELL = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
SHA = "5f1d6a2b9c3e4f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8"
MSI_PATH = "C:\\ProgramData\\Depot\\cache\\sha256\\%s\\acme-agent-2.1.0.msi" % SHA
MSI_LOG = "C:\\ProgramData\\Depot\\cache\\logs\\acme-agent.log"
PRODUCT_CODE = "{6F4A1C2E-8B3D-4E5F-9A0B-1C2D3E4F5A6B}"


def msi_log(status, restart=False):
    lines = [
        "MSI (s) (A4:1C) [10:22:31:398]: Note: 1: 1707 ",
        "MSI (s) (A4:1C) [10:22:31:412]: Product: Acme Agent -- Installation completed successfully.",
        "MSI (s) (A4:1C) [10:22:31:412]: Windows Installer installed the product. Product Name: Acme Agent. Product "
        "Version: 2.1.0. Product Language: 1033. Manufacturer: Acme Corp. Installation success or error status: "
        "%d." % status,
    ]
    if restart:
        lines.append("MSI (s) (A4:1C) [10:22:31:415]: Windows Installer requires a system restart. Product Name: Acme "
                     "Agent. Product Version: 2.1.0. Product Language: 1033. Manufacturer: Acme Corp. Type of System "
                     "Restart: 1. Reason for Restart: 0.")
    lines.append("=== Logging stopped: 11/21/2026  10:22:31 ===")
    return lines


def ps_result(status, rc=None, detected_before=None, detected_after=None, boot_id=BOOT_1, context="system",
              user=SYSTEM, **extra):
    """Every key Initialize-DepotResult sets, then the attempt's own values."""
    result = dict(status=status, rc=rc, detected_before=detected_before, detected_after=detected_after, changed=False,
                  cmd=[], duration=0.0, stdout_tail=[], stderr_tail=[], log_tail=[], content=None, boot_id=boot_id,
                  run_as=dict(context=context, user=user))
    result.update(extra)
    return result


def msi_executed(rc, detected_after=True, boot_id=BOOT_1, state="present", **extra):
    """Set-DepotRunResult after msiexec ran (default msi command line, content pulled into the cache)."""
    if state == "present":
        cmd = [MSIEXEC, "/i", MSI_PATH, "/qn", "/norestart", "/L*v", MSI_LOG]
        content = dict(path=MSI_PATH, sha256=SHA, cached=False, bytes_downloaded=5234688)
    else:
        cmd = [MSIEXEC, "/x", PRODUCT_CODE, "/qn", "/norestart", "/L*v", MSI_LOG]
        content = None
    values = dict(changed=True, cmd=cmd, duration=41.327, log_tail=msi_log(rc, restart=rc in (3010, 1641)),
                  content=content)
    values.update(extra)
    return ps_result("executed", rc=rc, detected_before=state != "present", detected_after=detected_after,
                     boot_id=boot_id, **values)


def msi_busy(boot_id=BOOT_1):
    """package.ps1 found the Global\\_MSIExecute mutex held and did not start msiexec."""
    return ps_result("busy", rc=1618, detected_before=False, boot_id=boot_id,
                     msg="installer busy: Global\\_MSIExecute is held by pid 4242 (msiexec.exe)")


def satisfied(present=True, boot_id=BOOT_2, **extra):
    """Detection already agrees with the desired state (also the answer of a detect_only call)."""
    return ps_result("satisfied", detected_before=present, boot_id=boot_id, **extra)


def would_change(present=False, boot_id=BOOT_2, changed=False):
    """Detection disagrees; detect_only or check mode: nothing ran."""
    return ps_result("would_change", detected_before=present, boot_id=boot_id, changed=changed)


def module_failed(msg, **extra):
    """$module.FailJson(...) of Ansible.Basic: failed, msg, the exception record, the result so far."""
    result = ps_result(None, **extra)
    result.update(failed=True, msg=msg, exception="%s\r\nAt C:\\Windows\\TEMP\\ansible-moduletmp-1337\\package.ps1:1 "
                  "char:1\r\n+ CategoryInfo          : NotSpecified: (:) [], RuntimeException" % msg)
    return result


# ------------------------------------------------------------------------------------------------
# The fakes.

NO_LOG_MASK = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
NO_LOG_OPTIONS = ("run_as_password", "environment", "secrets")


class FakeClock(object):
    """Monotonic time that only moves when something sleeps."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def module(self):
        """A stand-in for the ``time`` module inside the plugin modules."""
        return types.SimpleNamespace(sleep=self.sleep, monotonic=self.monotonic, time=lambda: self.now)


class ModuleReplay(object):
    """Replaces ``ActionBase._execute_module``: answers each call with the next recorded result, or
    raises it when it is an exception; adds the ``invocation`` that Ansible.Basic returns."""

    def __init__(self, events):
        self.events = events
        self.answers = []
        self.calls = []

    def add(self, *answers):
        self.answers.extend(answers)
        return self

    def __call__(self, module_name=None, module_args=None, task_vars=None, **kwargs):
        args = copy.deepcopy(module_args)
        self.calls.append(dict(module_name=module_name, module_args=args, task_vars=task_vars))
        self.events.append(("module", "detect" if args.get("detect_only") else "attempt"))
        if not self.answers:
            raise AssertionError("unexpected module call #%d: %r" % (len(self.calls), args))
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        result = copy.deepcopy(answer)
        shown = {k: (NO_LOG_MASK if k in NO_LOG_OPTIONS and v else v) for k, v in args.items()}
        result.setdefault("invocation", dict(module_args=shown))
        return result

    @property
    def detect_only(self):
        return [c["module_args"].get("detect_only") for c in self.calls]


class RawReplay(object):
    """Replaces ``ActionBase._low_level_execute_command``. Each command is recognised as one of the
    reboot machinery's kinds and answered from that kind's queue; the last answer of a queue
    repeats. An answer that is an exception is raised."""

    def __init__(self, events):
        self.events = events
        self.queues = {}
        self.commands = []
        self.kinds = {}  # exact command text -> kind, for custom commands

    def on(self, kind, *answers):
        self.queues.setdefault(kind, []).extend(answers)
        return self

    def kind(self, cmd):
        if cmd in self.kinds:
            return self.kinds[cmd]
        if "LastBootUpTime" in cmd:
            return "boot_time"
        if "LogonUI" in cmd:
            return "test"
        if "shutdown" in cmd.lower():
            return "reboot"
        return "other"

    def __call__(self, cmd, sudoable=True, in_data=None, executable=None, encoding_errors="surrogate_then_replace",
                 chdir=None):
        kind = self.kind(cmd)
        self.commands.append((kind, cmd))
        self.events.append(("raw", kind))
        queue = self.queues.get(kind)
        if not queue:
            raise AssertionError("unexpected raw command (%s): %r" % (kind, cmd))
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, BaseException):
            raise answer
        return copy.deepcopy(answer)

    def of_kind(self, kind):
        return [cmd for k, cmd in self.commands if k == kind]


def new_connection(transport, events):
    """The real psrp/winrm connection plugin with a host's options; it never connects. close, reset
    and set_option are recorded (and still run)."""
    connection = connection_loader.get(transport, PlayContext(), None)
    options = dict(remote_addr=HOST, remote_user="Administrator", remote_password="Lab-Passw0rd", port=5986)
    if transport == "psrp":
        options.update(protocol="https", auth="ntlm", cert_validation="ignore")
    else:
        options.update(scheme="https", transport=["ntlm"], server_cert_validation="ignore")
    connection.set_options(var_options={"_extras": {}}, direct=options)

    def spy(name):
        original = getattr(connection, name)

        @functools.wraps(original)
        def recorded(*args, **kwargs):
            events.append((name,) + args)
            return original(*args, **kwargs)
        setattr(connection, name, recorded)

    for name in ("close", "reset", "set_option"):
        spy(name)
    return connection


PLUGINS = {"package": package_action.ActionModule, "script": script_action.ActionModule}


class WindowsHarness(object):
    """One action plugin over a Windows connection, with its fakes."""

    def __init__(self, monkeypatch, plugin, transport):
        self.plugin = plugin
        self.transport = transport
        self.events = []
        self.clock = FakeClock()
        self.module = ModuleReplay(self.events)
        self.raw = RawReplay(self.events)
        self.connection = new_connection(transport, self.events)
        # The plugins connect before each module call; here that never touches a network. Errors
        # queued in connect_failures are raised by it, as psrp/winrm raise theirs while connecting.
        self.connect_failures = []
        self.connection._connect = self._connect
        self.action = None
        # The loop sleeps through _AnsibleHost.sleep (time.sleep of _action); the Rebooter takes its
        # clock and sleep as arguments, bound at definition time, so it is handed the fake ones.
        monkeypatch.setattr(_action, "time", self.clock.module())
        monkeypatch.setattr(_reboot, "time", self.clock.module())
        monkeypatch.setattr(_action, "Rebooter", functools.partial(_reboot.Rebooter, clock=self.clock.monotonic,
                                                                   sleep=self.clock.sleep))

    def _connect(self):
        self.events.append(("_connect",))
        if self.connect_failures:
            raise self.connect_failures.pop(0)
        return self.connection

    def build(self, args, check_mode=False):
        task = Task()
        task.action = "depot.software.%s" % self.plugin
        task.args = copy.deepcopy(args)
        task.check_mode = check_mode
        play_context = PlayContext()
        play_context.remote_addr = HOST
        loader = DataLoader()
        action = PLUGINS[self.plugin](task, self.connection, play_context, loader, Templar(loader=loader),
                                      plugin_loader)
        action._load_name = task.action  # what PluginLoader sets on the plugins it loads
        action._execute_module = self.module
        action._low_level_execute_command = self.raw
        self.action = action
        return action

    def run(self, args, task_vars=None, check_mode=False):
        task_vars = dict(ansible_host=HOST, ansible_connection=self.transport, inventory_hostname="win1",
                         **(task_vars or {}))
        return self.build(args, check_mode=check_mode).run(task_vars=task_vars)

    def untouched(self):
        """Nothing reached the host: no module call and no raw command."""
        return not self.module.calls and not self.raw.commands


@pytest.fixture
def windows(monkeypatch):
    """``windows(plugin="package", transport="psrp")`` -> a WindowsHarness."""
    def make(plugin="package", transport="psrp"):
        return WindowsHarness(monkeypatch, plugin, transport)
    return make


# ------------------------------------------------------------------------------------------------
# The Windows executors' own option specs, read from the .ps1 sources.


def _hashtable_keys(text, start):
    """Top-level keys of the PowerShell hashtable literal whose ``@{`` is at ``start``."""
    keys = []
    depth = 0
    for line in text[start:].splitlines():
        if depth == 1:
            match = re.match(r"\s*(\w+)\s*=", line)
            if match:
                keys.append(match.group(1))
        depth += line.count("{") - line.count("}")
        if depth <= 0:
            break
    return keys


def ps_module_options(module):
    """Option names of plugins/modules/<module>.ps1: its own spec plus Get-DepotCommonSpec's."""
    source = (COLLECTION_ROOT / "plugins" / "modules" / ("%s.ps1" % module)).read_text()
    spec_start = source.index("$spec = @{")
    own = _hashtable_keys(source, source.index("options = @{", spec_start) + len("options = "))
    names = set(own)
    if "Get-DepotCommonSpec" in source:
        psm1 = (COLLECTION_ROOT / "plugins" / "module_utils" / "_DepotWin.psm1").read_text()
        common = psm1.index("Function Get-DepotCommonSpec")
        names.update(_hashtable_keys(psm1, psm1.index("options = @{", common) + len("options = ")))
    return names
