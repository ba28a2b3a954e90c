"""The dashboard in a browser against `depot serve --no-worker` (no lab): signing in (a bad token
gets the API's reason), the user and role in the top bar, the lists, the schedule preview, the
virtualised grid of a deployment with 10,000 hosts updating live while the test changes host
statuses the way a worker does, host details, the new-deployment form, and actions shown by role
and state with the API's errors on screen."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import insert, select

from depot.database.core import make_engine, make_sessionmaker, transaction
from depot.deployments.models import Deployment, HostResult
from depot.orchestration.service import set_host_status
from depot.orchestration.states import HostStatus
from tests.controller.dashboard.browser import free_port, serve, sign_in

BIG = 10_000          # hosts of the big deployment
INVENTORY = "all:\n  children:\n    web:\n      hosts:\n        web1: {}\n        web2: {}\n"


def expect(*args, **kwargs):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(*args, **kwargs)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dashboard")
    yield from serve(tmp, "127.0.0.1", free_port(), no_worker=True)


@pytest.fixture(scope="module")
def seeded(served, tmp_path_factory):
    """Through the API: a target, a package, a published policy, and deployments — an empty draft, a
    draft with a schedule and a window, a ready one, an active one (2 hosts) and a big active one,
    which the test then grows to 10,000 hosts × 2 steps in the database."""
    inventory = tmp_path_factory.mktemp("inventory") / "inventory.yml"
    inventory.write_text(INVENTORY)
    s, api = served, served.api
    web = s.ok(api.post("/targets", json={"name": "web", "kind": "group", "group": "web", "inventory": str(inventory)}))
    package = s.ok(api.post("/packages", json={"name": "agent", "version": "2.1.0", "platform": "linux",
                                               "installer_type": "deb", "product_id": "agent"}))
    policy = s.ok(api.post("/policies", json={"name": "agent policy", "category": "software",
                                              "package_id": package["id"]}))
    s.ok(api.post(f"/policies/{policy['id']}/publish"))
    step = {"action": "package", "package_id": package["id"], "target_ids": [web["id"]]}

    def deployment(name, steps, state, **extra):
        d = s.ok(api.post("/deployments", json={"name": name, "steps": steps, **extra}))
        if state in ("ready", "active"):
            s.ok(api.post(f"/deployments/{d['id']}/ready"))
        if state == "active":
            s.ok(api.post(f"/deployments/{d['id']}/start"))
        return d["id"]

    ids = {
        "empty": deployment("empty draft", [], "draft"),
        "scheduled": deployment("nightly agent", [step], "draft", schedule={
            "rrule": "FREQ=DAILY;BYHOUR=2;BYMINUTE=30", "timezone": "Europe/Berlin", "start": "2030-03-01T00:00:00"},
            windows=[{"kind": "recurring", "rrule": "FREQ=DAILY;BYHOUR=1", "timezone": "Europe/Berlin",
                      "start": "2030-03-01T00:00:00", "duration_seconds": 14400}]),
        "ready": deployment("ready to go", [step], "ready"),
        "active": deployment("cancel me", [step], "active"),
        "big": deployment("big rollout", [{**step, "name": "install agent"},
                                          {"policy_id": policy["id"], "target_ids": [web["id"]], "name": "verify"}],
                          "active"),
    }
    engine = make_engine(f"sqlite:///{served.data_dir / 'depot.db'}")
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        steps = session.get(Deployment, ids["big"]).steps
        session.execute(insert(HostResult), [
            dict(deployment_id=ids["big"], step_id=st.id, position=st.position, host=f"host{i:05d}",
                 status=HostStatus.READY, targets=[web["id"]])
            for st in steps for i in range(1, BIG - 1)])
    yield {"ids": ids, "sessions": sessions}
    engine.dispose()


def move(sessions, deployment_id, host, position, *targets, **fields):
    """Change a host's status as a worker does (depot.orchestration records each transition)."""
    with transaction(sessions) as session:
        row = session.scalar(select(HostResult).where(HostResult.deployment_id == deployment_id,
                                                      HostResult.host == host, HostResult.position == position))
        for target in targets:
            set_host_status(session, [row], target, cause="test", actor="worker:test", **fields)


def cell(page, host, position):
    return page.get_by_role("row", name=host, exact=True).get_by_role("button", name=re.compile(rf"step {position}\b"))


def test_signing_in(new_page, served, shot):
    page = new_page()
    page.goto(served.url + "/")
    expect(page).to_have_url(re.compile(r"/ui/#/login"))
    token = page.get_by_label("API token")
    token.fill("dpt_not-a-real-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert", name="Messages")).to_contain_text("Sign-in failed: unknown token")
    expect(token).to_have_attribute("aria-invalid", "true")
    shot(page, "bad-token")
    token.fill("not even a token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#token-error")).to_contain_text("a bearer token is required")
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()

    token.fill(served.token)
    page.get_by_role("button", name="Sign in").click()
    who = page.get_by_role("group", name="Signed in user")
    expect(who).to_contain_text("e2e")
    expect(who.get_by_label("Role: admin")).to_have_text("admin")
    expect(page).to_have_url(re.compile(r"#/deployments$"))
    assert page.evaluate("sessionStorage.getItem('depot.token')") == served.token
    assert served.token not in page.url
    page.reload()                                   # the tab keeps its sign-in
    expect(who).to_contain_text("e2e")
    shot(page, "signed-in")
    who.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API token")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('depot.token')") is None

    # A token revoked while signed in: the next request signs the tab out, saying why.
    token = served.ok(served.api.post("/tokens", json={"name": "short-lived"}))
    sign_in(page, served, token["token"])
    served.ok(served.api.post(f"/tokens/{token['id']}/revoke"))
    # (whichever request comes next signs the tab out: a background refresh may come first)
    page.evaluate("window.location.hash = '#/packages'")
    expect(page.get_by_role("status")).to_contain_text("You were signed out: the token was revoked")
    expect(page.get_by_label("API token")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('depot.token')") is None


def test_lists_and_the_schedule_preview(new_page, served, seeded, shot):
    page = new_page()
    sign_in(page, served)
    deployments = page.get_by_role("table", name="Deployments")
    for name in ("empty draft", "nightly agent", "ready to go", "cancel me", "big rollout"):
        expect(deployments.get_by_role("link", name=name, exact=True)).to_be_visible()
    big = deployments.get_by_role("row").filter(has=page.get_by_role("link", name="big rollout"))
    expect(big).to_contain_text(re.compile(r"[\d,]+ ready"))
    expect(big.get_by_role("img")).to_have_attribute("aria-label", re.compile(r"\d+ ready"))
    shot(page, "deployments")
    states = page.get_by_role("navigation", name="Deployment states")
    states.get_by_role("link", name=re.compile("^Draft")).click()
    expect(page.get_by_role("heading", name="Draft deployments")).to_be_visible()
    expect(deployments.get_by_role("link", name="empty draft")).to_be_visible()
    expect(deployments.get_by_role("link", name="big rollout")).to_have_count(0)
    expect(states.get_by_role("link", name=re.compile("^Active"))).to_contain_text("2")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Packages").click()
    packages = page.get_by_role("table", name="Packages")
    expect(packages.get_by_role("row").filter(has_text="agent")).to_contain_text("2.1.0")
    shot(page, "packages")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Policies").click()
    expect(page.get_by_role("table", name="Policies").get_by_role("row").filter(has_text="agent policy")) \
        .to_contain_text("Published")
    shot(page, "policies")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Schedules").click()
    page.get_by_label("Recurrence rule (RFC 5545)").fill("FREQ=DAILY;BYHOUR=2;BYMINUTE=30")
    page.get_by_label("Time zone (IANA)").fill("Europe/Berlin")
    page.get_by_label("Start (local wall time)").fill("2030-03-29T00:00")
    page.get_by_label("Occurrences").fill("4")
    page.get_by_role("button", name="Preview").click()
    occurrences = page.get_by_role("table", name="Occurrences")
    expect(occurrences.get_by_role("row")).to_have_count(5)        # a header and 4 occurrences
    # 2030-03-31 02:30 does not exist in Berlin (clocks spring forward): shifted by the gap.
    expect(occurrences.get_by_role("row").filter(has_text="2030-03-31")).to_contain_text("shifted (spring gap)")
    shot(page, "schedule-preview")
    page.get_by_label("Time zone (IANA)").fill("Mars/Olympus")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("alert", name="Messages")).to_contain_text("Preview failed")


def test_a_deployment_with_10000_hosts_is_virtual_and_live(new_page, served, seeded, shot):
    ids, sessions = seeded["ids"], seeded["sessions"]
    page = new_page()
    sign_in(page, served)
    page.goto(f"{served.url}/ui/#/deployments/{ids['big']}")
    expect(page.get_by_role("heading", name="big rollout", level=1)).to_be_visible()
    expect(page.get_by_role("status", name="Live updates")).to_have_text("Live")
    grid = page.get_by_role("table", name="Host status by step")
    expect(grid).to_have_attribute("aria-rowcount", str(BIG + 1))
    expect(cell(page, "host00001", 1)).to_have_text("Ready")
    expect(grid.get_by_role("columnheader")).to_have_text(["Host", re.compile("install agent"), re.compile("verify")])
    # Only the rows in view are in the page.
    assert grid.get_by_role("row").count() < 80
    page.evaluate("window.__stillTheSamePage = true")

    # Live: a worker's changes reach the grid, the counts and the chips without a reload.
    move(sessions, ids["big"], "host00001", 1, HostStatus.ACTIVE)
    expect(cell(page, "host00001", 1)).to_have_text("Active")
    move(sessions, ids["big"], "host00001", 1, HostStatus.FAILED, rc=1603, outcome="failure",
         reason="the installer failed (rc 1603)", log_tail="setup: disk full\nsetup: rolled back",
         attempts=[{"rc": 1618, "class": "retry", "status": "retry", "duration": 1.5},
                   {"rc": 1603, "class": "failure", "status": "failed", "duration": 2.25}])
    move(sessions, ids["big"], "host00002", 1, HostStatus.ACTIVE, HostStatus.SUCCESS, rc=0, outcome="success")
    expect(cell(page, "host00001", 1)).to_have_text("Failed · 1603")
    expect(cell(page, "host00002", 1)).to_have_text("Success")
    chips = page.get_by_role("group", name="Filter hosts by status")
    expect(chips.get_by_role("button", name="Failed: 1")).to_be_visible()
    expect(page.locator(".summary")).to_contain_text("2 of 20,000 host results finished")
    shot(page, "big-live")

    # Details of a host: attempts, rc, outcome, reason and its log tail.
    cell(page, "host00001", 1).click()
    details = page.get_by_role("region", name="Host details")
    step = details.get_by_role("article", name="Step 1 install agent")
    expect(step.get_by_label("Log tail of step 1")).to_contain_text("setup: disk full")
    expect(step).to_contain_text("the installer failed (rc 1603)")
    expect(step).to_contain_text("failure")
    step.get_by_text("Attempts (2)").click()
    expect(step.get_by_role("table", name="Attempts").get_by_role("row")).to_have_count(3)
    shot(page, "host-details")
    details.get_by_role("button", name="Close host details").click()
    expect(details).to_be_hidden()

    # Filters: by status (a chip), by name; the end of the list is one scroll away.
    chips.get_by_role("button", name="Failed: 1").click()
    expect(grid).to_have_attribute("aria-rowcount", "2")
    expect(grid.get_by_role("row", name="host00001")).to_be_visible()
    chips.get_by_role("button", name="All").click()
    expect(grid).to_have_attribute("aria-rowcount", str(BIG + 1))
    page.get_by_label("Filter hosts by name").fill("host09998")
    expect(grid).to_have_attribute("aria-rowcount", "2")
    expect(cell(page, "host09998", 2)).to_have_text("Ready")
    page.get_by_label("Filter hosts by name").fill("")
    expect(grid).to_have_attribute("aria-rowcount", str(BIG + 1))
    page.locator(".grid-viewport").evaluate("el => { el.scrollTop = el.scrollHeight; }")
    expect(cell(page, "web2", 2)).to_have_text("Ready")
    assert grid.get_by_role("row").count() < 80
    # A change far from the view, while scrolled to the end, shows when it is scrolled back.
    move(sessions, ids["big"], "host00003", 1, HostStatus.ACTIVE)
    expect(page.locator(".summary")).to_contain_text("1 active")
    page.locator(".grid-viewport").evaluate("el => { el.scrollTop = 0; }")
    expect(cell(page, "host00003", 1)).to_have_text("Active")
    assert page.evaluate("window.__stillTheSamePage") is True


def test_actions_by_role_and_state(new_page, served, seeded, shot):
    ids = seeded["ids"]
    viewer = new_page()
    sign_in(viewer, served, served.token_for("vera", "viewer"))
    expect(viewer.get_by_role("group", name="Signed in user")).to_contain_text("viewer")
    expect(viewer.get_by_role("table", name="Deployments")).to_be_visible()
    expect(viewer.get_by_role("link", name="New deployment")).to_have_count(0)
    viewer.goto(f"{served.url}/ui/#/deployments/{ids['active']}")
    expect(viewer.get_by_role("heading", name="cancel me", level=1)).to_be_visible()
    expect(cell(viewer, "web1", 1)).to_have_text("Ready")
    actions = viewer.get_by_role("group", name="Deployment actions")
    expect(actions.get_by_role("button")).to_have_count(0)
    shot(viewer, "viewer-no-actions")
    viewer.goto(f"{served.url}/ui/#/deployments/{ids['ready']}")
    expect(viewer.get_by_role("heading", name="ready to go", level=1)).to_be_visible()
    expect(actions.get_by_role("button")).to_have_count(0)

    operator = new_page()
    sign_in(operator, served, served.token_for("otto", "operator"))
    operator.goto(f"{served.url}/ui/#/deployments/{ids['active']}")
    actions = operator.get_by_role("group", name="Deployment actions")
    expect(actions.get_by_role("button")).to_have_text(["Pause", "Cancel deployment"])
    operator.goto(f"{served.url}/ui/#/deployments/{ids['ready']}")
    expect(actions.get_by_role("button")).to_have_text(["Start", "Archive"])
    operator.goto(f"{served.url}/ui/#/deployments/{ids['scheduled']}")
    expect(actions.get_by_role("button")).to_have_text(["Mark ready", "Archive"])
    schedule = operator.get_by_role("region", name="Schedule and windows")
    expect(schedule).to_contain_text("FREQ=DAILY;BYHOUR=2;BYMINUTE=30")
    expect(schedule).to_contain_text("Europe/Berlin")
    expect(schedule.get_by_role("table", name="Occurrences").get_by_role("row")).to_have_count(6)
    expect(schedule).to_contain_text("FREQ=DAILY;BYHOUR=1")
    shot(operator, "scheduled")

    # The API's refusal, on screen.
    admin = new_page()
    sign_in(admin, served)
    admin.goto(f"{served.url}/ui/#/deployments/{ids['empty']}")
    admin.get_by_role("button", name="Mark ready").click()
    expect(admin.get_by_role("alert", name="Messages")).to_contain_text(
        "Mark ready failed: steps: a deployment needs at least one step")
    shot(admin, "api-error")

    # Cancel (confirmed in a dialog): waiting hosts are cancelled at once, live.
    admin.goto(f"{served.url}/ui/#/deployments/{ids['active']}")
    expect(cell(admin, "web1", 1)).to_have_text("Ready")
    admin.get_by_role("group", name="Deployment actions").get_by_role("button", name="Cancel deployment").click()
    dialog = admin.get_by_role("dialog")
    expect(dialog).to_contain_text("running ones finish their current step")
    dialog.get_by_role("button", name="Cancel deployment").click()
    expect(cell(admin, "web1", 1)).to_have_text("Cancelled")
    expect(cell(admin, "web2", 1)).to_have_text("Cancelled")
    expect(admin.locator(".summary")).to_contain_text("2 of 2 host results finished")
    badges = admin.locator(".badges")
    expect(badges).to_have_attribute("aria-label", "State: Completed, outcome: Cancelled")
    expect(admin.get_by_role("status", name="Live updates")).to_have_text("Finished")
    expect(admin.get_by_role("group", name="Deployment actions").get_by_role("button")).to_have_text(["Archive"])
    shot(admin, "cancelled")

    # Pause, then resume.
    admin.goto(f"{served.url}/ui/#/deployments/{ids['big']}")
    actions = admin.get_by_role("group", name="Deployment actions")
    actions.get_by_role("button", name="Pause").click()
    expect(admin.locator(".badges")).to_have_attribute("aria-label", "State: Paused")
    expect(admin.get_by_text("Paused: paused by user:e2e")).to_be_visible()
    expect(actions.get_by_role("button")).to_have_text(["Resume", "Cancel deployment"])
    shot(admin, "paused")
    actions.get_by_role("button", name="Resume").click()
    expect(admin.locator(".badges")).to_have_attribute("aria-label", "State: Active")
    expect(actions.get_by_role("button")).to_have_text(["Pause", "Cancel deployment"])


def test_a_new_deployment_through_the_form(new_page, served, seeded, shot):
    page = new_page()
    sign_in(page, served, served.token_for("olga", "operator"))
    page.get_by_role("link", name="New deployment").click()
    form = page.get_by_role("form", name="New deployment")
    form.get_by_label("Name", exact=True).fill("from the form")
    form.get_by_label("Max concurrent hosts").fill("1")
    form.get_by_label("Package").select_option(label="agent 2.1.0 (linux, deb)")
    form.get_by_role("checkbox", name="web").check()
    form.get_by_role("button", name="Add step").click()
    step2 = form.get_by_role("group", name="Step 2")
    step2.get_by_label("Action").select_option("policy")
    step2.get_by_label("Policy").select_option(label="agent policy (software, install)")
    step2.get_by_role("checkbox", name="web").check()
    shot(page, "new-deployment-form")
    form.get_by_role("button", name="Create deployment").click()
    expect(page.get_by_role("heading", name="from the form", level=1)).to_be_visible()
    expect(page.locator(".badges")).to_have_attribute("aria-label", "State: Draft")
    steps = page.get_by_role("table", name="Steps")
    expect(steps.get_by_role("row")).to_have_count(3)
    expect(steps.get_by_role("row").nth(1)).to_contain_text(re.compile(r"package agent 2\.1\.0\s*deb"))
    expect(steps.get_by_role("row").nth(2)).to_contain_text(re.compile(r"policy agent policy\s*software, install"))
    page.get_by_role("button", name="Mark ready").click()
    expect(page.locator(".badges")).to_have_attribute("aria-label", "State: Ready")
    page.get_by_role("button", name="Start").click()
    expect(page.locator(".badges")).to_have_attribute("aria-label", "State: Active")
    expect(cell(page, "web1", 1)).to_have_text("Ready")
    expect(cell(page, "web2", 2)).to_have_text("Ready")
    shot(page, "new-deployment-started")
