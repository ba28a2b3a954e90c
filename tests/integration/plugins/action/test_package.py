"""depot.software.package end to end with ansible-playbook on the lab's real hosts: each test
uses its own host(s), and reads the truth from the host itself, not from the task's claims."""

import hashlib
import subprocess

import pytest

from tests.integration.conftest import installer

pytestmark = pytest.mark.lab


def package(marker, kind="ok", **args):
    """A package task whose installer is a lab test installer and whose detection is its marker."""
    task_args = dict(name=marker.rsplit("/", 1)[-1], installer_type="script", src=installer(kind),
                     install_command=["{installer}", marker],
                     detection=dict(rules=[dict(type="file", path=marker)]))
    task_args.update(args)
    return {"depot.software.package": task_args, "register": "r"}


def exists(lab, host, path):
    return lab.host_path(host, path).exists()


def test_install_then_idempotent_rerun_is_one_remote_execution(lab, play):
    marker = "/opt/depot-test/idem"
    first = play([package(marker)], "h1").last("h1")
    assert (first["outcome"], first["changed"], first["rc"]) == ("success", True, 0)
    assert (first["detected_before"], first["detected_after"]) == (False, True)
    assert exists(lab, "h1", marker)

    lab.reset_commands("h1")
    second = play([package(marker)], "h1").last("h1")
    assert (second["outcome"], second["changed"], second["status"]) == ("already", False, "satisfied")
    assert len(second["attempts"]) == 1
    assert len(lab.commands("h1")) == 1, lab.commands("h1")


def test_uninstall_and_already_absent(lab, play):
    marker = "/opt/depot-test/uninst"
    play([package(marker)], "h1")
    remove = package(marker, state="absent", uninstall_command=[installer("uninstall"), marker])
    first = play([remove], "h1").last("h1")
    assert (first["outcome"], first["changed"]) == ("success", True)
    assert not exists(lab, "h1", marker)
    again = play([remove], "h1").last("h1")
    assert (again["outcome"], again["changed"]) == ("already", False)


def test_soft_reboot_immediate_reboots_and_resumes(lab, play):
    marker = "/opt/depot-test/soft"
    boot_before = lab.boot_id("h2")
    result = play([package(marker, "soft-reboot", reboot_timing="immediate")], "h2").last("h2")
    assert (result["outcome"], result["rebooted"], result["reboot_required"], result.get("failed", False)) == ("soft_reboot", True, False, False)
    assert result["attempts"][0]["rc"] == 3010
    assert lab.boot_id("h2") != boot_before
    assert exists(lab, "h2", marker)


def test_soft_reboot_deferred_reports_reboot_required(lab, play):
    boot_before = lab.boot_id("h2")
    result = play([package("/opt/depot-test/soft-deferred", "soft-reboot")], "h2").last("h2")
    assert (result["outcome"], result["rebooted"], result["reboot_required"]) == ("soft_reboot", False, True)
    assert lab.boot_id("h2") == boot_before


def test_hard_reboot_1641_waits_for_the_real_reboot_and_verifies(lab, play):
    marker = "/opt/depot-test/hard"
    boot_before = lab.boot_id("h3")
    result = play([package(marker, "hard-reboot")], "h3").last("h3")
    assert (result["outcome"], result["rebooted"], result.get("failed", False), result["detected_after"]) == ("hard_reboot", True, False, True)
    assert result["attempts"][0]["rc"] == 1641
    assert lab.boot_id("h3") != boot_before


def test_1618_is_retried_until_success(lab, play):
    marker = "/opt/depot-test/busy"
    task = package(marker, "busy-then-ok", retries=3, retry_interval=1,
                   install_command=["{installer}", marker, "2"])
    result = play([task], "h4").last("h4")
    assert result["outcome"] == "success"
    assert [a["class"] for a in result["attempts"]] == ["retry", "retry", "success"]
    assert [a["rc"] for a in result["attempts"]] == [1618, 1618, 0]


def test_1618_retries_exhausted(lab, play):
    marker = "/opt/depot-test/busy2"
    task = package(marker, "busy-then-ok", retries=1, retry_interval=0,
                   install_command=["{installer}", marker, "5"])
    result = play([task], "h4").last("h4")
    assert (result["outcome"], result.get("failed", False), len(result["attempts"])) == ("retry", True, 2)
    assert not exists(lab, "h4", marker)


def test_retry_after_reboot(lab, play):
    marker = "/opt/depot-test/after-reboot"
    boot_before = lab.boot_id("h5")
    task = package(marker, "fail-until-reboot", retry_after_reboot=True)
    result = play([task], "h5").last("h5")
    assert (result["outcome"], result["rebooted"], result.get("failed", False)) == ("success", True, False)
    assert [a["class"] for a in result["attempts"]] == ["failure", "success"]
    assert lab.boot_id("h5") != boot_before
    assert exists(lab, "h5", marker)


def test_hanging_installer_is_killed_by_the_timeout(lab, play):
    marker = "/opt/depot-test/hang"
    result = play([package(marker, "hang", timeout=3)], "h6").last("h6")
    assert (result["outcome"], result.get("failed", False)) == ("timeout", True)
    # Nothing of the installer's process tree is left on the host.
    left = lab.exec("h6", ["pgrep", "-f", installer("hang")])
    assert left.stdout.strip() == "", left.stdout


def test_failing_installer(lab, play):
    result = play([package("/opt/depot-test/fail", "fail")], "h6").last("h6")
    assert (result["outcome"], result.get("failed", False), result["rc"]) == ("failure", True, 1603)


def test_success_but_not_detected(lab, play):
    result = play([package("/opt/depot-test/lie", "lie")], "h7").last("h7")
    assert (result["outcome"], result.get("failed", False), result["rc"]) == ("not_detected", True, 0)
    assert "not detected" in result["msg"]


def test_run_as_user_and_logged_in_user(lab, play):
    lab.add_user("h8", "alice")
    lab.add_user("h8", "bob")
    who = "/var/tmp/depot-whoami-%s"
    script_args = lambda ctx, **kw: {"depot.software.script": dict(
        script="id -un > %s; chmod 644 %s" % (who % ctx, who % ctx), **kw), "register": "r"}
    as_system = play([script_args("system")], "h8").last("h8")
    assert as_system["run_as"] == {"context": "system", "user": "root"}
    as_user = play([script_args("user", run_as="user", run_as_user="bob")], "h8").last("h8")
    assert as_user["run_as"]["user"] == "bob"
    assert lab.host_path("h8", who % "user").read_text().strip() == "bob"

    nobody = play([script_args("nobody", run_as="logged_in_user")], "h8").last("h8")
    assert (nobody["outcome"], nobody.get("skipped"), nobody.get("failed", False)) == ("no_user_session", True, False)
    lab.login("h8", "alice")
    try:
        logged = play([script_args("logged", run_as="logged_in_user")], "h8").last("h8")
    finally:
        lab.logout("h8", "alice")
    assert logged["run_as"] == {"context": "logged_in_user", "user": "alice"}
    assert lab.host_path("h8", who % "logged").read_text().strip() == "alice"


def test_offline_host_is_unreachable(lab, play):
    lab.offline("h7")
    try:
        results = play([package("/opt/depot-test/offline")], "h7")
    finally:
        lab.online("h7")
    assert results.stats("h7")["unreachable"] == 1


@pytest.fixture(scope="module")
def content(lab, tmp_path_factory):
    """A real .deb built here and served by the lab's HTTP server on the bridge."""
    root = tmp_path_factory.mktemp("content")
    pkg = root / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "opt" / "depot-hello").mkdir(parents=True)
    (pkg / "opt" / "depot-hello" / "hello").write_text("depot hello 1.2.0\n")
    (pkg / "DEBIAN" / "control").write_text(
        "Package: depot-hello\nVersion: 1.2.0\nArchitecture: all\nMaintainer: Depot <depot@example.invalid>\n"
        "Description: Depot lab test package\n")
    www = root / "www"
    www.mkdir()
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(pkg), str(www / "depot-hello_1.2.0_all.deb")],
                   check=True, capture_output=True)
    digest = hashlib.sha256((www / "depot-hello_1.2.0_all.deb").read_bytes()).hexdigest()
    return dict(url=lab.serve(www) + "/depot-hello_1.2.0_all.deb", sha256=digest)


def deb_task(content, **args):
    task = dict(name="depot-hello", installer_type="deb", src=content["url"], checksum=content["sha256"], version="1.2.0")
    task.update(args)
    return {"depot.software.package": task, "register": "r"}


def test_real_deb_pulled_verified_cached_and_removed(lab, play, content):
    first = play([deb_task(content)], "h1").last("h1")
    assert (first["outcome"], first["changed"]) == ("success", True)
    assert first["content"]["bytes_downloaded"] > 0
    status = lab.exec("h1", ["dpkg-query", "-W", "-f", "${Version}", "depot-hello"])
    assert status.stdout == "1.2.0"
    # Not installed on any other host: each host's package database is its own.
    assert lab.exec("h2", ["dpkg-query", "-W", "depot-hello"]).returncode != 0

    # Removed by hand: the next install takes the installer from the cache, downloading nothing.
    lab.exec("h1", ["dpkg", "-r", "depot-hello"])
    again = play([deb_task(content)], "h1").last("h1")
    assert (again["outcome"], again["content"]["cached"], again["content"]["bytes_downloaded"]) == ("success", True, 0)

    removed = play([deb_task(content, state="absent")], "h1").last("h1")
    assert (removed["outcome"], removed["changed"]) == ("success", True)
    assert lab.exec("h1", ["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", "depot-hello"]).stdout.strip() != "ii"


def test_checksum_mismatch_fails_before_anything_runs(lab, play, content):
    result = play([deb_task(content, checksum="0" * 64)], "h2").last("h2")
    assert result.get("failed", False) and "checksum mismatch" in result["msg"]
    assert lab.exec("h2", ["dpkg-query", "-W", "depot-hello"]).returncode != 0
    assert list(lab.host_path("h2", "/var/cache/depot").rglob("*.deb")) == []  # the bad download was not kept


BAD_INPUTS = [
    (dict(installer_type="dmg"), "installer_type"),
    (dict(installer_type="msi"), "installer_type msi is for Windows hosts"),
    (dict(exit_codes=dict(success=[0, 3010], soft_reboot=[3010])), "3010 is in two classes"),
    (dict(timeout=-1), "timeout must be 0 or more"),
    (dict(run_as="user"), "run_as_user is required"),
    (dict(run_as_user="bob"), "run_as_user is only used with run_as: user"),
    (dict(detection=dict(rules=[dict(type="registry", key="HKLM:\\SOFTWARE\\X")])), "detection.rules[0].type registry cannot be evaluated on a POSIX host"),
    (dict(detection=dict(rules=[dict(type="file")])), "detection.rules[0].path is required"),
    (dict(src="http://10.213.47.1/x.sh"), "checksum (sha256) is required"),
    (dict(retries=-2), "retries must be 0 or more"),
]


@pytest.mark.parametrize("bad, message", BAD_INPUTS, ids=[m for _, m in BAD_INPUTS])
def test_bad_input_fails_at_once_and_touches_nothing(lab, play, bad, message):
    marker = "/opt/depot-test/bad-input"
    lab.reset_commands("h5")
    result = play([package(marker, **bad)], "h5").last("h5")
    assert result.get("failed", False) and message in result["msg"], result.get("msg")
    assert lab.commands("h5") == []        # not one command reached the host
    assert not exists(lab, "h5", marker)


def test_arguments_reach_the_host_verbatim_without_a_shell(lab, play):
    """Shell metacharacters in arguments arrive as single argv items and execute nothing."""
    marker = "/opt/depot-test/verbatim"
    hostile = ["$(touch /tmp/pwned1)", "; touch /tmp/pwned2", "`touch /tmp/pwned3`", "a b  c", "*"]
    task = {"depot.software.script": dict(
        script='mkdir -p /opt/depot-test; for a in "$@"; do printf "%s\\n" "$a"; done > ' + marker, arguments=hostile), "register": "r"}
    play([task], "h5")
    assert lab.host_path("h5", marker).read_text().splitlines() == hostile
    for n in (1, 2, 3):
        assert not exists(lab, "h5", "/tmp/pwned%d" % n)


def test_detection_that_cannot_be_evaluated_fails_before_installing(lab, play):
    marker = "/opt/depot-test/unknown-state"
    task = package(marker, detection=dict(rules=[dict(type="script", script="exit 4")]))
    result = play([task], "h6").last("h6")
    assert result.get("failed", False) and "detection.rules[0] (script)" in result["msg"]
    assert "exited 4" in result["msg"]
    assert not exists(lab, "h6", marker)


def test_a_second_attempt_waits_for_an_installer_whose_controller_died(lab, play, tmp_path):
    """The controller dies mid-install (its ansible-playbook killed): the installer goes on on the
    host, still holding the attempt lock. The re-verification that follows waits for it, then
    detection finds the package: installed once, never twice at the same time."""
    import os
    import signal
    import time

    from tests.integration.conftest import ROOT

    base = "/opt/depot-test/orphan"
    marker, log = base + "/agent", base + "/log"
    script = ("mkdir -p %s; echo start >> %s; sleep 8; echo installed > %s; echo done >> %s"
              % (base, log, marker, log))
    task = {"depot.software.package": dict(name="orphan", installer_type="script",
                                           install_command=["/bin/sh", "-c", script],
                                           detection=dict(rules=[dict(type="file", path=marker)])),
            "register": "r"}
    book = tmp_path / "orphan.yml"
    import yaml
    book.write_text(yaml.safe_dump([dict(hosts="h4", gather_facts=False, tasks=[task])]))
    first = subprocess.Popen([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(play.inventory), str(book)],
                             cwd=str(ROOT), env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg")),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while not (lab.host_path("h4", log).exists() and "start" in lab.host_path("h4", log).read_text()):
        assert time.monotonic() < deadline and first.poll() is None, "the first installer never started"
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)          # the controller's run dies, with its ssh session
    first.wait()
    assert not exists(lab, "h4", marker)

    again = play([task], "h4").last("h4")
    assert again["outcome"] == "already", again
    assert lab.host_path("h4", log).read_text().split() == ["start", "done"]
    waited = [a.get("waited_for") for a in again["attempts"]]
    assert waited and waited[0] and waited[0]["seconds"] > 0, again["attempts"]
