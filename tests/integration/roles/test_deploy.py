"""The depot.software.deploy role through playbooks/deploy.yml on the lab's real hosts: step order,
halting, the deployment's failure, the one deferred reboot at the end, and the published
per-step records (set_stats, read from the JSON callback's custom_stats)."""

import uuid

import pytest

from tests.integration.conftest import ROOT, installer

pytestmark = pytest.mark.lab

PLAYBOOK = ROOT / "playbooks" / "deploy.yml"
RECORD_KEYS = sorted(["id", "name", "action", "outcome", "successful", "fail_deployment", "rc", "boot_id", "reboot_required",
                      "reboot_allowed", "rebooted", "attempts", "msg"])
REBOOT_COMMAND = "/usr/local/sbin/lab-reboot"
END_REBOOT_TASK = "Reboot once at the end of the steps"


@pytest.fixture
def base(lab):
    """A marker directory of this test's own, on every lab host; removed afterwards."""
    path = "/opt/depot-test/helper-deploy/%s" % uuid.uuid4().hex[:8]
    yield path
    for host in lab.hosts:
        lab.exec(host, ["rm", "-rf", path])


def package_step(name, kind, marker, **flags):
    """A package step whose installer is a lab test installer and whose detection is its marker."""
    step = dict(name=name, action="package", args=dict(
        name=name, installer_type="script", src=installer(kind), install_command=["{installer}", marker],
        detection=dict(rules=[dict(type="file", path=marker)])))
    step.update(flags)
    return step


def script_step(name, text, **flags):
    step = dict(name=name, action="script", args=dict(script=text))
    step.update(flags)
    return step


def deploy(play, hosts, steps, **extra):
    return play.run(PLAYBOOK, extra_vars=dict(depot_targets=hosts, depot_steps=steps, **extra))


def records(results, host):
    return results.custom(host)["depot_results"]


def task_results(results, host, name):
    """The host's results of the role's task ``name`` (the callback prefixes the role's name)."""
    return [r for r in results[host] if r["_task"].split(" : ", 1)[-1] == name]


def reboots(lab, host):
    """How many times the host was told to reboot (through its sshd) since the last reset."""
    return sum(REBOOT_COMMAND in command for command in lab.commands(host))


def exists(lab, host, path):
    return lab.host_path(host, path).exists()


def test_steps_run_in_order_and_one_record_per_step_is_published(lab, play, base):
    order = base + "/order"
    steps = [
        script_step("first", "mkdir -p %s && echo first >> %s" % (base, order)),
        package_step("second", "ok", base + "/second"),
        # Runs only after the package step: its marker must already be there.
        script_step("third", "test -e %s/second && echo third >> %s" % (base, order)),
    ]
    results = deploy(play, "h1:h2", steps)
    for host in ("h1", "h2"):
        assert results.stats(host)["failures"] == 0 and results.stats(host)["unreachable"] == 0
        assert lab.host_path(host, order).read_text().splitlines() == ["first", "third"]
        assert exists(lab, host, base + "/second")
        recs = records(results, host)
        assert [sorted(r) for r in recs] == [RECORD_KEYS] * 3
        assert [(r["id"], r["name"], r["action"]) for r in recs] == \
            [(1, "first", "script"), (2, "second", "package"), (3, "third", "script")]
        assert [r["outcome"] for r in recs] == ["success", "success", "success"]
        assert all(r["successful"] and r["fail_deployment"] and r["attempts"] == 1 for r in recs)
        assert [r["rc"] for r in recs] == [0, 0, 0]
        assert not any(r["reboot_required"] or r["rebooted"] for r in recs)
    # Only the targets were touched.
    assert set(results.data["stats"]) == {"h1", "h2"}
    assert not exists(lab, "h3", order)

    # Again: every step with detection is already satisfied; the scripts without detection run again.
    again = deploy(play, "h1", steps)
    assert [r["outcome"] for r in records(again, "h1")] == ["success", "already", "success"]
    assert lab.host_path("h1", order).read_text().splitlines() == ["first", "third", "first", "third"]


def test_a_failed_step_cancels_the_later_steps_and_fails_the_host(lab, play, base):
    steps = [
        package_step("one", "ok", base + "/one"),
        package_step("two", "fail", base + "/two"),
        package_step("three", "ok", base + "/three"),
    ]
    results = deploy(play, "h1", steps)
    recs = records(results, "h1")
    assert [(r["name"], r["outcome"], r["successful"]) for r in recs] == \
        [("one", "success", True), ("two", "failure", False), ("three", "cancelled", False)]
    assert recs[1]["rc"] == 1603 and recs[2]["rc"] is None and recs[2]["attempts"] == 0
    assert exists(lab, "h1", base + "/one")
    assert not exists(lab, "h1", base + "/three")  # never ran
    assert results.stats("h1")["failures"] == 1
    failed = task_results(results, "h1", "Fail the host when a step that fails the deployment was not successful")
    assert len(failed) == 1 and failed[0]["failed"] and failed[0]["msg"] == "unsuccessful steps: two"


def test_a_step_awaiting_a_reboot_runs_nothing_and_does_not_fail_the_host(lab, play, base):
    host = "h2"
    boot = lab.boot_id(host)
    steps = [
        package_step("waits", "ok", base + "/waits", unless_boot_id=boot),
        package_step("after", "ok", base + "/after"),
    ]
    results = deploy(play, host, steps)
    recs = records(results, host)
    assert [(r["name"], r["outcome"], r["successful"]) for r in recs] == \
        [("waits", "awaiting_reboot", False), ("after", "cancelled", False)]
    assert recs[0]["boot_id"] == boot and recs[0]["attempts"] == 0
    assert not exists(lab, host, base + "/waits") and not exists(lab, host, base + "/after")
    assert results.stats(host)["failures"] == 0 and results.stats(host)["changed"] == 0

    # Once the host has rebooted the same step runs.
    lab.reboot(host)
    results = deploy(play, host, steps)
    assert [r["outcome"] for r in records(results, host)] == ["success", "success"]
    assert records(results, host)[0]["boot_id"] == lab.boot_id(host)


def test_without_only_run_further_steps_if_successful_the_later_steps_run(lab, play, base):
    steps = [
        package_step("lies", "lie", base + "/lies", only_run_further_steps_if_successful=False),
        package_step("after", "ok", base + "/after"),
    ]
    results = deploy(play, "h1", steps)
    recs = records(results, "h1")
    assert [(r["name"], r["outcome"]) for r in recs] == [("lies", "not_detected"), ("after", "success")]
    assert exists(lab, "h1", base + "/after")
    assert not exists(lab, "h1", base + "/lies")
    assert results.stats("h1")["failures"] == 1  # fail_deployment_if_unsuccessful defaults to true


def test_fail_deployment_if_unsuccessful_false_leaves_the_host_ok(lab, play, base):
    steps = [
        package_step("optional", "fail", base + "/optional", fail_deployment_if_unsuccessful=False),
        package_step("later", "ok", base + "/later"),
    ]
    results = deploy(play, "h2", steps)
    recs = records(results, "h2")
    assert [(r["outcome"], r["fail_deployment"]) for r in recs] == [("failure", False), ("cancelled", True)]
    assert not exists(lab, "h2", base + "/later")  # halted, as only_run_further_steps_if_successful says
    assert results.stats("h2")["failures"] == 0
    assert results.process.returncode == 0

    # Both flags off: the later step runs too, and the host still ends ok.
    steps[0]["only_run_further_steps_if_successful"] = False
    results = deploy(play, "h2", steps)
    assert [r["outcome"] for r in records(results, "h2")] == ["failure", "success"]
    assert exists(lab, "h2", base + "/later")
    assert results.stats("h2")["failures"] == 0


def boot_id_step(name, path):
    return script_step(name, "cat /proc/sys/kernel/random/boot_id > %s" % path)


def test_soft_reboot_steps_share_one_reboot_at_the_end(lab, play, base):
    hosts = ("h3", "h4")
    before = {h: lab.boot_id(h) for h in hosts}
    for h in hosts:
        lab.reset_commands(h)
    steps = [
        package_step("soft-a", "soft-reboot", base + "/soft-a"),
        package_step("soft-b", "soft-reboot", base + "/soft-b"),
        boot_id_step("last", base + "/last-boot"),
    ]
    results = deploy(play, "h3:h4", steps)
    for h in hosts:
        assert results.stats(h)["failures"] == 0
        recs = records(results, h)
        assert [r["outcome"] for r in recs] == ["soft_reboot", "soft_reboot", "success"]
        assert [r["rc"] for r in recs] == [3010, 3010, 0]
        # Published after the reboot: the reboot is recorded on the steps that asked for it.
        assert [(r["reboot_required"], r["rebooted"]) for r in recs] == [(False, True), (False, True), (False, False)]
        assert lab.boot_id(h) != before[h]
        # The last step ran before the reboot, and the host was rebooted exactly once.
        assert lab.host_path(h, base + "/last-boot").read_text().strip() == before[h]
        assert reboots(lab, h) == 1, lab.commands(h)
        assert exists(lab, h, base + "/soft-a") and exists(lab, h, base + "/soft-b")
        reboot = task_results(results, h, END_REBOOT_TASK)
        assert len(reboot) == 1 and reboot[0]["rebooted"] is True and reboot[0]["changed"] is True


def test_end_reboot_never_leaves_the_reboot_pending(lab, play, base):
    host = "h4"
    before = lab.boot_id(host)
    lab.reset_commands(host)
    steps = [package_step("soft", "soft-reboot", base + "/soft"), package_step("ok", "ok", base + "/ok")]
    results = deploy(play, host, steps, depot_end_reboot="never")
    recs = records(results, host)
    assert [r["outcome"] for r in recs] == ["soft_reboot", "success"]
    assert [(r["reboot_required"], r["rebooted"]) for r in recs] == [(True, False), (False, False)]
    assert results.stats(host)["failures"] == 0
    assert lab.boot_id(host) == before
    assert reboots(lab, host) == 0
    assert exists(lab, host, base + "/ok")


def test_no_reboot_when_no_step_asks_for_one(lab, play, base):
    host = "h3"
    before = lab.boot_id(host)
    results = deploy(play, host, [package_step("ok", "ok", base + "/ok")])
    assert records(results, host)[0]["outcome"] == "success"
    assert lab.boot_id(host) == before
    skipped = task_results(results, host, END_REBOOT_TASK)
    assert len(skipped) == 1 and skipped[0].get("skipped") is True


def test_step_records_are_published_even_when_the_end_reboot_fails(lab, play, base):
    host = "h1"
    before = lab.boot_id(host)
    steps = [package_step("soft", "soft-reboot", base + "/soft")]
    # A reboot command that fails at once (the lab's inventory sets depot_reboot_command; extra vars win).
    results = deploy(play, host, steps, depot_reboot_command="/bin/false")
    assert lab.boot_id(host) == before
    assert results.stats(host)["failures"] == 1  # the host did not finish: it is failed
    recs = records(results, host)
    assert [(r["outcome"], r["reboot_required"], r["rebooted"]) for r in recs] == [("soft_reboot", True, False)]


def test_a_step_with_reboot_never_is_not_rebooted_at_the_end(lab, play, base):
    host = "h4"
    before = lab.boot_id(host)
    step = package_step("soft", "soft-reboot", base + "/soft")
    step["args"]["reboot"] = "never"
    results = deploy(play, host, [step])
    recs = records(results, host)
    assert [(r["outcome"], r["reboot_required"], r["rebooted"]) for r in recs] == [("soft_reboot", True, False)]
    assert lab.boot_id(host) == before
