"""The dashboard on the lab: `depot serve` (with its worker) on the lab bridge, real hosts, a real
browser. Through the UI: sign in, create a two-step deployment of slow installers with the form, mark it
ready, start it, and watch one host go Ready → Active → Success in the grid while the page is never
reloaded; open a host's log tail; cancel a second, running deployment and see its waiting hosts and
then the deployment itself Cancelled. Screenshots of each stage (tests/artifacts/screenshots/;
docs/dashboard.png with DEPOT_SAVE_SCREENSHOTS=1)."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.controller.dashboard.browser import free_port, serve, sign_in
from tests.lab import HOST_INSTALLERS

pytestmark = pytest.mark.lab
LONG = 240_000    # ms: generous bounds for what real hosts do (auto-waiting, not timing assertions)


def expect(*args, **kwargs):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(*args, **kwargs)


@pytest.fixture
def served(lab, tmp_path):
    yield from serve(tmp_path, lab.bridge_address, free_port(lab.bridge_address), no_worker=False,
                     env={"DEPOT_WORKER_POLL_INTERVAL": "0.3", "DEPOT_EVENT_BATCH_SECONDS": "0.2"})


def cell(page, host, position=1):
    return page.get_by_role("row", name=host, exact=True).get_by_role("button", name=re.compile(rf"step {position}\b"))


def host_of(button) -> str:
    return button.evaluate("el => el.closest('[role=row]').dataset.host")


def package(served, name, seconds, marker):
    """A script package whose installer is the lab's `slow` one: sleeps, then creates ``marker``."""
    installer = f"#!/bin/sh\nexec {HOST_INSTALLERS}/slow \"$1\" {seconds}\n"
    p = served.ok(served.api.post("/packages", json=dict(
        name=name, version="1.0", platform="linux", installer_type="script",
        options=dict(install_command=["{installer}", marker], detection=dict(rules=[dict(type="file", path=marker)])))))
    served.ok(served.api.post(f"/packages/{p['id']}/content", files={"file": (f"{name}-setup", installer.encode())}))
    return p


def test_a_deployment_runs_live_in_the_browser(lab, lab_inventory, served, new_page, shot):
    run = uuid.uuid4().hex[:8]
    api = served.api
    served.ok(api.post("/targets", json=dict(name="first", kind="host", hosts=["h1", "h2", "h3", "h4"],
                                             inventory=str(lab_inventory))))
    second = served.ok(api.post("/targets", json=dict(name="second", kind="host", hosts=["h5", "h6", "h7", "h8"],
                                                      inventory=str(lab_inventory))))
    package(served, "slow-agent", 6, f"/opt/depot-ui-{run}/slow-agent")
    package(served, "slow-config", 2, f"/opt/depot-ui-{run}/slow-config")
    slower = package(served, "slower-agent", 30, f"/opt/depot-ui-{run}/slower-agent")

    page = new_page()
    sign_in(page, served)
    shot(page, "deployments-empty")

    # A deployment of two steps through the form, two hosts at a time, so hosts wait their turn.
    page.get_by_role("link", name="New deployment").click()
    form = page.get_by_role("form", name="New deployment")
    form.get_by_label("Name", exact=True).fill("ui rollout")
    form.get_by_label("Max concurrent hosts").fill("2")
    step1 = form.get_by_role("group", name="Step 1")
    step1.get_by_label("Package").select_option(label="slow-agent 1.0 (linux, script)")
    step1.get_by_role("checkbox", name="first").check()
    form.get_by_role("button", name="Add step").click()
    step2 = form.get_by_role("group", name="Step 2")
    step2.get_by_label("Package").select_option(label="slow-config 1.0 (linux, script)")
    step2.get_by_role("checkbox", name="first").check()
    shot(page, "new-deployment")
    form.get_by_role("button", name="Create deployment").click()
    expect(page.get_by_role("heading", name="ui rollout", level=1)).to_be_visible()
    page.evaluate("window.__stillTheSamePage = true")      # gone if anything reloads the page
    badges = page.locator(".badges")
    expect(badges).to_have_attribute("aria-label", "State: Draft")
    page.get_by_role("button", name="Mark ready").click()
    expect(badges).to_have_attribute("aria-label", "State: Ready")
    expect(page.get_by_role("status", name="Live updates")).to_have_text("Live")
    page.get_by_role("button", name="Start").click()
    expect(badges).to_have_attribute("aria-label", "State: Active")

    # Two hosts are active in step 1; follow one that still waits: Ready → Active → Success, live.
    grid = page.get_by_role("table", name="Host status by step")
    expect(grid.locator('button[data-step="1"][data-status="active"]')).to_have_count(2, timeout=LONG)
    waiting = grid.locator('button[data-step="1"][data-status="ready"]')
    expect(waiting).to_have_count(2)
    host = host_of(waiting.last)
    expect(cell(page, host)).to_have_text("Ready")
    shot(page, "started")
    expect(cell(page, host)).to_have_text("Active", timeout=LONG)
    expect(grid.locator('button[data-status="success"]')).not_to_have_count(0)
    shot(page, "running", docs=True)
    expect(cell(page, host)).to_have_text("Success", timeout=LONG)
    # Step 2 starts once step 1 has finished everywhere (CCM order).
    expect(cell(page, host, 2)).to_have_text("Success", timeout=LONG)
    expect(badges).to_have_attribute("aria-label", "State: Completed, outcome: Success", timeout=LONG)
    expect(grid.locator('button[data-status="success"]')).to_have_count(8)
    expect(page.get_by_role("status", name="Live updates")).to_have_text("Finished")
    expect(page.locator(".summary")).to_contain_text("8 of 8 host results finished")
    assert page.evaluate("window.__stillTheSamePage") is True
    for name in ("h1", "h2", "h3", "h4"):
        assert lab.host_path(name, f"/opt/depot-ui-{run}/slow-config").exists()

    # A host's details: its step, rc, outcome and the tail of its log.
    cell(page, host).click()
    details = page.get_by_role("region", name="Host details")
    step = details.get_by_role("article", name=re.compile(r"^Step 1 "))
    expect(step).to_contain_text("Success")
    log_tail = step.get_by_label("Log tail of step 1")
    expect(log_tail).to_contain_text(f"changed: [{host}]")      # the run's output for this host
    log_tail.scroll_into_view_if_needed()
    shot(page, "host-log")

    # A second deployment (through the API), cancelled from the UI while its first host runs.
    d2 = served.ok(api.post("/deployments", json=dict(name="to be cancelled", max_concurrent_hosts=1, steps=[
        dict(action="package", package_id=slower["id"], target_ids=[second["id"]])])))
    served.ok(api.post(f"/deployments/{d2['id']}/ready"))
    served.ok(api.post(f"/deployments/{d2['id']}/start"))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Deployments").click()
    page.get_by_role("table", name="Deployments").get_by_role("link", name="to be cancelled").click()
    expect(page.get_by_role("heading", name="to be cancelled", level=1)).to_be_visible()
    expect(grid.locator('button[data-status="active"]')).to_have_count(1, timeout=LONG)
    running = host_of(grid.locator('button[data-status="active"]'))
    page.get_by_role("group", name="Deployment actions").get_by_role("button", name="Cancel deployment").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel deployment").click()
    expect(grid.locator('button[data-status="cancelled"]')).to_have_count(3)
    expect(page.locator(".summary")).to_contain_text("3 cancelled")
    expect(badges).to_contain_text("Cancelling")
    shot(page, "cancelling")
    # The running host finishes its step; then the deployment completes, cancelled.
    expect(badges).to_have_attribute("aria-label", "State: Completed, outcome: Cancelled", timeout=LONG)
    expect(cell(page, running)).to_have_text("Success")
    expect(page.get_by_role("group", name="Deployment actions").get_by_role("button")).to_have_text(["Archive"])
    shot(page, "cancelled")
    assert page.evaluate("window.__stillTheSamePage") is True
