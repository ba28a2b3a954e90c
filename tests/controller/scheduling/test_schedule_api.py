"""Schedules and maintenance windows of deployments through the API: stored normalised, invalid
input rejected with the field named and nothing stored, edits of a ready deployment return it to
draft, and the preview endpoints (saved and unsaved schedules)."""

import pytest

SCHEDULE = {"rrule": "FREQ=DAILY;BYHOUR=2;BYMINUTE=30", "timezone": "Europe/Berlin", "start": "2030-03-01T00:00:00"}


@pytest.fixture
def target(client, inventory):
    return client.post("/api/v1/targets", json={"name": "web", "kind": "group", "group": "web",
                                                "inventory": str(inventory)}).json()["id"]


def body(target, **fields):
    return {"name": "nightly", "steps": [{"action": "script", "script": "true", "target_ids": [target]}], **fields}


def test_schedule_and_windows_are_stored_and_read_back(client, target):
    r = client.post("/api/v1/deployments", json=body(
        target, schedule={**SCHEDULE, "misfire": "skip"},
        windows=[{"kind": "recurring", "rrule": "FREQ=WEEKLY;BYDAY=SA;BYHOUR=1", "timezone": "Europe/Berlin",
                  "start": "2030-01-01T00:00:00", "duration_seconds": 4 * 3600},
                 {"kind": "one_off", "start": "2030-06-01T00:00:00Z", "end": "2030-06-02T00:00:00+00:00"}],
        exclusions=[{"kind": "one_off", "start": "2030-12-24T00:00:00+01:00", "end": "2030-12-27T00:00:00+01:00"}]))
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["schedule"]["rrule"] == "FREQ=DAILY;BYHOUR=2;BYMINUTE=30;BYSECOND=0;WKST=MO"   # normalised
    assert (d["schedule"]["timezone"], d["schedule"]["start"], d["schedule"]["misfire"]) == \
        ("Europe/Berlin", "2030-03-01T00:00:00", "skip")
    assert d["schedule"]["next_run_at"].startswith("2030-03-01T01:30:00")   # 02:30 CET
    assert d["schedule"]["last_fired"] is not None
    recurring, one_off = d["windows"]
    assert (recurring["kind"], recurring["duration_seconds"], recurring["start"]) == ("recurring", 14400, "2030-01-01T00:00:00")
    assert (one_off["kind"], one_off["start"][:19], one_off["end"][:19]) == ("one_off", "2030-06-01T00:00:00", "2030-06-02T00:00:00")
    assert d["exclusions"][0]["start"][:19] == "2030-12-23T23:00:00"
    assert client.get(f"/api/v1/deployments/{d['id']}").json() == d

    plain = client.post("/api/v1/deployments", json=body(target)).json()
    assert (plain["schedule"], plain["windows"], plain["exclusions"]) == (None, [], [])


@pytest.mark.parametrize("fields, loc", [
    ({"schedule": {**SCHEDULE, "rrule": "FREQ=FORTNIGHTLY"}}, ["body", "schedule", "rrule"]),
    ({"schedule": {**SCHEDULE, "rrule": "FREQ=MONTHLY;BYMONTH=2;BYMONTHDAY=30"}}, ["body", "schedule", "rrule"]),
    ({"schedule": {**SCHEDULE, "timezone": "Europe/Atlantis"}}, ["body", "schedule", "timezone"]),
    ({"schedule": {**SCHEDULE, "misfire": "whenever"}}, ["body", "schedule", "misfire"]),
    # once, at a time already past: it would never start the deployment
    ({"schedule": {**SCHEDULE, "rrule": "FREQ=DAILY;COUNT=1", "start": "2020-01-01T00:00:00"}},
     ["body", "schedule", "start"]),
    ({"windows": [{"kind": "one_off", "start": "2030-06-02T00:00:00Z", "end": "2030-06-01T00:00:00Z"}]},
     ["body", "windows", 0, "end"]),
    ({"windows": [{"kind": "one_off", "start": "2030-06-01T00:00:00", "end": "2030-06-02T00:00:00Z"}]},
     ["body", "windows", 0, "start"]),
    ({"windows": [{"kind": "one_off", "start": "2030-06-01T00:00:00Z"}]}, ["body", "windows", 0, "end"]),
    ({"exclusions": [{"kind": "recurring", "rrule": "FREQ=YEARLY", "timezone": "Mars/Olympus",
                      "start": "2030-12-24T00:00:00", "duration_seconds": 86400}]}, ["body", "exclusions", 0, "timezone"]),
    ({"windows": [{"kind": "recurring", "rrule": "FREQ=DAILY", "timezone": "UTC", "start": "2030-01-01T00:00:00",
                   "duration_seconds": 0}]}, ["body", "windows", 0, "duration_seconds"]),
])
def test_invalid_schedule_or_window_names_the_field_and_stores_nothing(client, target, table_counts, fields, loc):
    before = table_counts()
    r = client.post("/api/v1/deployments", json=body(target, **fields))
    assert r.status_code == 422, r.text
    assert loc in [e["loc"] for e in r.json()["detail"]], r.json()
    assert table_counts() == before


def test_editing_the_schedule_of_a_ready_deployment_returns_it_to_draft(client, target, table_counts):
    d = client.post("/api/v1/deployments", json=body(target)).json()
    url = f"/api/v1/deployments/{d['id']}"
    assert client.post(f"{url}/ready").json()["state"] == "ready"

    before = table_counts()
    r = client.patch(url, json={"windows": [{"kind": "one_off", "start": "2030-06-02T00:00:00Z",
                                             "end": "2030-06-01T00:00:00Z"}]})
    assert (r.status_code, r.json()["detail"][0]["loc"]) == (422, ["body", "windows", 0, "end"])
    assert client.get(url).json()["state"] == "ready" and table_counts() == before

    r = client.patch(url, json={"schedule": SCHEDULE, "exclusions": [
        {"kind": "one_off", "start": "2030-03-05T00:00:00Z", "end": "2030-03-06T00:00:00Z"}]})
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["schedule"]["timezone"], len(r.json()["exclusions"])) == ("draft", "Europe/Berlin", 1)

    r = client.patch(url, json={"schedule": None, "exclusions": []})
    assert (r.json()["schedule"], r.json()["exclusions"]) == (None, [])


def test_preview_of_a_saved_schedule_marks_the_gap_and_the_windows(client, target):
    # Daily 02:30 in Berlin over the spring change (2030-03-31): that day 02:30 does not exist -> 03:30 CEST.
    d = client.post("/api/v1/deployments", json=body(
        target, schedule=SCHEDULE,
        exclusions=[{"kind": "one_off", "start": "2030-03-30T00:00:00Z", "end": "2030-03-31T00:00:00Z"}])).json()
    r = client.get(f"/api/v1/deployments/{d['id']}/schedule/preview",
                   params={"count": 3, "after": "2030-03-29T12:00:00Z"})
    assert r.status_code == 200, r.text
    occurrences = r.json()["occurrences"]
    assert [o["at"][:19] for o in occurrences] == ["2030-03-30T01:30:00", "2030-03-31T01:30:00", "2030-04-01T00:30:00"]
    assert [o["local"] for o in occurrences] == ["2030-03-30T02:30:00+01:00", "2030-03-31T03:30:00+02:00",
                                                 "2030-04-01T02:30:00+02:00"]
    assert [o["adjustment"] for o in occurrences] == [None, "gap", None]
    assert [o["in_window"] for o in occurrences] == [False, True, True]   # the first falls in the exclusion

    plain = client.post("/api/v1/deployments", json=body(target)).json()
    assert client.get(f"/api/v1/deployments/{plain['id']}/schedule/preview").status_code == 404
    assert client.get(f"/api/v1/deployments/{d['id']}/schedule/preview", params={"count": 0}).status_code == 422


def test_preview_of_an_unsaved_schedule(client, table_counts):
    before = table_counts()
    # New York falls back on 2030-11-03: 01:30 happens twice and runs once, at the first (EDT).
    r = client.post("/api/v1/schedules/preview", json={
        "schedule": {"rrule": "FREQ=DAILY;BYHOUR=1;BYMINUTE=30", "timezone": "America/New_York",
                     "start": "2030-11-01T00:00:00"},
        "windows": [{"kind": "one_off", "start": "2030-11-03T00:00:00Z", "end": "2030-11-04T00:00:00Z"}],
        "count": 3, "after": "2030-11-02T00:00:00Z"})
    assert r.status_code == 200, r.text
    occurrences = r.json()["occurrences"]
    assert [o["local"] for o in occurrences] == ["2030-11-02T01:30:00-04:00", "2030-11-03T01:30:00-04:00",
                                                 "2030-11-04T01:30:00-05:00"]
    assert [o["adjustment"] for o in occurrences] == [None, "fold", None]
    assert [o["in_window"] for o in occurrences] == [False, True, False]
    assert table_counts() == before

    r = client.post("/api/v1/schedules/preview", json={"schedule": {**SCHEDULE, "rrule": "FREQ=HOURLY;BYHOUR=25"}})
    assert (r.status_code, r.json()["detail"][0]["loc"]) == (422, ["body", "schedule", "rrule"])
