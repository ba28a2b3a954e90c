"""depot.software.script end to end with ansible-playbook on the lab's real hosts: secrets, result
codes, detection, the time limit and run-as, each checked against the host's own state."""

import hashlib
import json
import subprocess
import uuid

import pytest

from tests.integration.conftest import dedent

pytestmark = pytest.mark.lab

HOST = "h7"
BASE = "/opt/depot-test/helper-script"


def script(text, **args):
    return {"depot.software.script": dict(script=dedent(text), **args), "register": "r"}


def read(lab, host, path):
    return lab.host_path(host, path).read_text()


def grep_host(lab, host, needle):
    """Files of the host (everything it wrote: overlay upper layer, /run, /tmp) containing needle."""
    hosts_dir = lab.workdir / "hosts" / host
    upper = [p for p in (hosts_dir / "upper", hosts_dir / "rw" / "upper") if p.is_dir() and any(p.iterdir())]
    assert upper, "the overlay upper layer of %s was not found" % host
    places = [str(upper[0])] + [str(lab.host_path(host, p)) for p in ("/run", "/tmp", "/var/tmp")]
    done = subprocess.run(["grep", "-rlaF", "--no-messages", "--", needle] + places, capture_output=True, text=True)
    return done.stdout.splitlines()


@pytest.fixture
def workdir(lab):
    path = "%s/%s" % (BASE, uuid.uuid4().hex[:8])
    lab.exec(HOST, ["mkdir", "-p", path])
    yield path
    lab.exec(HOST, ["rm", "-rf", path])


def test_secrets_are_exported_and_masked_everywhere(lab, play, workdir, tmp_path, monkeypatch):
    secret = "dhlp-S3cret-%s" % uuid.uuid4().hex
    other = "dhlp-%s" % uuid.uuid4().hex
    log = tmp_path / "ansible.log"
    monkeypatch.setenv("ANSIBLE_LOG_PATH", str(log))
    task = script(r"""
        echo "token=$DHLP_TOKEN and again $DHLP_TOKEN"
        echo "other=$DHLP_OTHER"
        echo "argument=$2"
        echo "stderr sees $DHLP_TOKEN" >&2
        printf %s "$DHLP_TOKEN" | sha256sum | cut -d' ' -f1 > {dir}/token.sha256
        printf %s "$DHLP_OTHER" | sha256sum | cut -d' ' -f1 > {dir}/other.sha256
        """.replace("{dir}", workdir),
        secrets={"DHLP_TOKEN": secret, "DHLP_OTHER": other}, arguments=["--token", secret])
    results = play([task], HOST)
    result = results.last(HOST)
    assert (result["outcome"], result.get("failed", False), result["rc"]) == ("success", False, 0), result.get("msg")

    # The script got the real values (as environment variables) ...
    assert read(lab, HOST, workdir + "/token.sha256").strip() == hashlib.sha256(secret.encode()).hexdigest()
    assert read(lab, HOST, workdir + "/other.sha256").strip() == hashlib.sha256(other.encode()).hexdigest()
    # ... and every output line shows the mask instead.
    assert result["stdout_tail"] == ["token=******** and again ********", "other=********", "argument=********"]
    assert result["stderr_tail"] == ["stderr sees ********"]
    assert secret not in json.dumps(result["cmd"]) and "********" in result["cmd"]

    # Not one copy of either value in anything ansible-playbook printed (the whole JSON result),
    # in the controller's ansible log, or in any file on the host.
    # (The search itself works: it finds the digest the script wrote.)
    assert grep_host(lab, HOST, hashlib.sha256(secret.encode()).hexdigest()) != []
    for value in (secret, other):
        assert value not in results.process.stdout
        assert value not in results.process.stderr
        assert log.exists() and value not in log.read_text()
        assert grep_host(lab, HOST, value) == []


def test_result_file_3010_is_a_soft_reboot(lab, play):
    boot = lab.boot_id(HOST)
    result = play([script('echo 3010 > "$DEPOT_RESULT_FILE"; exit 0')], HOST).last(HOST)
    assert (result["outcome"], result["rc"], result.get("failed", False)) == ("soft_reboot", 3010, False)
    assert (result["reboot_required"], result["rebooted"], result["changed"]) == (True, False, True)
    assert [(a["rc"], a["class"]) for a in result["attempts"]] == [(3010, "soft_reboot")]
    assert lab.boot_id(HOST) == boot  # deferred by default: the host was not rebooted

    # Without the result file the exit status is the code: 3010 % 256 = 194 is a plain failure.
    plain = play([script("exit 194")], HOST).last(HOST)
    assert (plain["outcome"], plain["rc"], plain.get("failed", False)) == ("failure", 194, True)


def test_satisfied_detection_means_the_script_does_not_run(lab, play, workdir):
    runs, marker = workdir + "/runs", workdir + "/installed"
    task = script("echo run >> %s; touch %s" % (runs, marker), detection=dict(rules=[dict(type="file", path=marker)]))

    first = play([task], HOST).last(HOST)
    assert (first["outcome"], first["changed"], first["detected_before"], first["detected_after"]) == \
        ("success", True, False, True)
    assert read(lab, HOST, runs).splitlines() == ["run"]

    for _ in range(2):
        again = play([task], HOST).last(HOST)
        assert (again["outcome"], again["changed"], again["status"]) == ("already", False, "satisfied")
        assert again["rc"] is None
    assert read(lab, HOST, runs).splitlines() == ["run"]  # ran once in three plays

    # Detection no longer satisfied: it runs again.
    lab.exec(HOST, ["rm", marker])
    third = play([task], HOST).last(HOST)
    assert (third["outcome"], third["changed"]) == ("success", True)
    assert read(lab, HOST, runs).splitlines() == ["run", "run"]


def test_script_that_does_not_satisfy_its_detection_is_not_detected(lab, play, workdir):
    task = script("echo claimed", detection=dict(rules=[dict(type="file", path=workdir + "/never")]))
    result = play([task], HOST).last(HOST)
    assert (result["outcome"], result.get("failed", False), result["rc"]) == ("not_detected", True, 0)
    assert result["stdout_tail"] == ["claimed"]


def alive(lab, host, pid):
    """The process exists and is not a zombie, seen from inside the host."""
    state = lab.exec(host, ["ps", "-o", "stat=", "-p", str(pid)]).stdout.strip()
    return bool(state) and not state.startswith("Z")


def test_timeout_ends_the_sleeping_script_and_its_children(lab, play, workdir):
    pids = workdir + "/pids"
    task = script("""
        sleep 600 &
        echo "$$ $!" > %s
        wait
        touch %s/finished
        """ % (pids, workdir), timeout=2)
    result = play([task], HOST).last(HOST)
    assert (result["outcome"], result.get("failed", False), result["status"]) == ("timeout", True, "timeout")
    assert "timeout" in result["msg"]
    shell, child = read(lab, HOST, pids).split()
    assert not alive(lab, HOST, shell)
    assert not alive(lab, HOST, child)
    assert not lab.host_path(HOST, workdir + "/finished").exists()


def test_run_as_user(lab, play, workdir):
    user = "dhlprunner"
    if lab.exec(HOST, ["id", "-u", user]).returncode != 0:
        lab.add_user(HOST, user)
    uid = int(lab.exec(HOST, ["id", "-u", user]).stdout)
    lab.exec(HOST, ["chmod", "1777", workdir])
    out = workdir + "/whoami"
    task = script('id -un > %s; echo "$HOME" >> %s; echo "$DHLP_SECRET" >> %s' % (out, out, out),
                  run_as="user", run_as_user=user, secrets={"DHLP_SECRET": "visible-to-the-user"})
    result = play([task], HOST).last(HOST)
    assert (result["outcome"], result.get("failed", False)) == ("success", False), result.get("msg")
    assert result["run_as"] == {"context": "user", "user": user}
    assert read(lab, HOST, out).splitlines() == [user, "/home/%s" % user, "visible-to-the-user"]
    assert lab.host_path(HOST, out).stat().st_uid == uid  # the host's own account wrote it

    missing = play([script("true", run_as="user", run_as_user="dhlp-nobody-here")], HOST).last(HOST)
    assert missing.get("failed", False) and "dhlp-nobody-here" in missing["msg"]
