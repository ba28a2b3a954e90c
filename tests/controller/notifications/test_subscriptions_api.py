"""Subscriptions and deliveries through the API: validation names the field and stores nothing,
and a webhook's secret is write-only — encrypted at rest, in no response."""

from sqlalchemy import text


WEBHOOK_SECRET = "whsec-canary-5f1d3c9a"
WEBHOOK = {"name": "ops-hook", "channel": "webhook", "address": "https://hooks.example.com/depot?token=t",
           "secret": WEBHOOK_SECRET, "events": ["deployment.failed", "deployment.threshold"], "threshold_percent": 20}
EMAIL = {"name": "ops-mail", "channel": "email", "address": "ops@example.com,lead@example.com ",
         "events": ["deployment.completed"]}


def stored_secret(app, subscription_id):
    with app.state.engine.connect() as c:
        return c.execute(text("SELECT secret FROM notification_subscriptions WHERE id = :id"),
                         {"id": subscription_id}).scalar_one()


def test_crud_never_returns_the_secret(client, app):
    responses = []
    r = client.post("/api/v1/notifications/subscriptions", json=WEBHOOK)
    assert r.status_code == 201, r.text
    responses.append(r)
    hook = r.json()
    assert hook["has_secret"] is True and "secret" not in hook
    assert (hook["threshold_percent"], hook["min_sample"], hook["enabled"]) == (20, 5, True)
    assert hook["deployment_id"] is None and hook["policy_id"] is None

    r = client.post("/api/v1/notifications/subscriptions", json=EMAIL)
    assert r.status_code == 201, r.text
    assert r.json()["address"] == "ops@example.com, lead@example.com" and r.json()["has_secret"] is False

    path = f"/api/v1/notifications/subscriptions/{hook['id']}"
    responses += [client.get(path), client.get("/api/v1/notifications/subscriptions"),
                  client.patch(path, json={"min_sample": 10}),
                  client.patch(path, json={"secret": WEBHOOK_SECRET + "-rotated"}),
                  client.post(f"{path}/test"), client.get("/api/v1/notifications/deliveries"),
                  client.get("/openapi.json")]
    assert [r.status_code for r in responses] == [201, 200, 200, 200, 200, 201, 200, 200]
    assert client.get("/api/v1/notifications/subscriptions").json()["total"] == 2
    assert responses[3].json()["min_sample"] == 10
    for response in responses:
        assert WEBHOOK_SECRET not in response.text

    ciphertext = bytes(stored_secret(app, hook["id"]))
    assert WEBHOOK_SECRET.encode() not in ciphertext
    assert app.state.keys.decrypt(ciphertext) == WEBHOOK_SECRET + "-rotated"

    assert client.delete(path).status_code == 204
    assert client.get(path).status_code == 404
    assert client.get("/api/v1/notifications/deliveries").json()["total"] == 0   # they went with it


def test_patch_keeps_the_secret_and_drops_what_no_longer_applies(client, app):
    hook = client.post("/api/v1/notifications/subscriptions", json=WEBHOOK).json()
    path = f"/api/v1/notifications/subscriptions/{hook['id']}"
    r = client.patch(path, json={"events": ["deployment.completed"]})
    assert r.status_code == 200, r.text
    assert r.json()["threshold_percent"] is None and r.json()["has_secret"] is True
    assert app.state.keys.decrypt(bytes(stored_secret(app, hook["id"]))) == WEBHOOK_SECRET

    r = client.patch(path, json={"channel": "email", "address": "ops@example.com"})
    assert r.status_code == 200, r.text
    assert r.json()["has_secret"] is False and stored_secret(app, hook["id"]) is None

    r = client.patch(path, json={"channel": "webhook", "address": "http://127.0.0.1:9/x"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "secret"]


INVALID = [   # (body, the field named, part of the message)
    ({**EMAIL, "address": "ops@example.com, not-an-address"}, ["body", "address"], "not-an-address"),
    ({**EMAIL, "address": "ops@example.com,"}, ["body", "address"], "not an email address"),
    ({**WEBHOOK, "address": "ftp://files.example.com/hook"}, ["body", "address"], "http"),
    ({**WEBHOOK, "address": "hooks.example.com/depot"}, ["body", "address"], "http"),
    ({**WEBHOOK, "address": "https://hooks.example.com:99999/x"}, ["body", "address"], "http"),
    ({**WEBHOOK, "events": ["deployment.exploded"]}, ["body", "events", 0], "Input should be"),
    ({**WEBHOOK, "events": []}, ["body", "events"], "at least 1"),
    ({**WEBHOOK, "threshold_percent": None}, ["body", "threshold_percent"], "required"),
    ({**WEBHOOK, "threshold_percent": 0}, ["body", "threshold_percent"], "greater than or equal to 1"),
    ({**WEBHOOK, "threshold_percent": 101}, ["body", "threshold_percent"], "less than or equal to 100"),
    ({**EMAIL, "threshold_percent": 50}, ["body", "threshold_percent"], "deployment.threshold"),
    ({**WEBHOOK, "min_sample": 0}, ["body", "min_sample"], "greater than or equal to 1"),
    ({**WEBHOOK, "deployment_id": 999, "policy_id": 999}, ["body", "policy_id"], "not both"),
    ({**WEBHOOK, "deployment_id": 999}, ["body", "deployment_id"], "deployment 999 does not exist"),
    ({**WEBHOOK, "policy_id": 999}, ["body", "policy_id"], "policy 999 does not exist"),
    ({k: v for k, v in WEBHOOK.items() if k != "secret"}, ["body", "secret"], "secret"),
    ({**WEBHOOK, "secret": ""}, ["body", "secret"], "at least 1"),
    ({**EMAIL, "secret": WEBHOOK_SECRET}, ["body", "secret"], "only a webhook"),
    ({**EMAIL, "channel": "pigeon"}, ["body", "channel"], "Input should be"),
    ({**EMAIL, "colour": "red"}, ["body", "colour"], "Extra inputs"),
]


def test_invalid_requests_name_the_field_and_store_nothing(client, table_counts):
    before = table_counts()
    for body, loc, message in INVALID:
        r = client.post("/api/v1/notifications/subscriptions", json=body)
        assert r.status_code == 422, (body, r.text)
        assert any(e["loc"] == loc and message in e["msg"] for e in r.json()["detail"]), (body, r.json())
        assert WEBHOOK_SECRET not in r.text
    assert table_counts() == before


def test_an_invalid_patch_changes_nothing(client):
    hook = client.post("/api/v1/notifications/subscriptions", json=WEBHOOK).json()
    path = f"/api/v1/notifications/subscriptions/{hook['id']}"
    for patch, loc in [({"address": "ftp://x/y"}, ["body", "address"]),
                       ({"threshold_percent": 500}, ["body", "threshold_percent"]),
                       ({"events": ["deployment.completed"], "threshold_percent": 5}, ["body", "threshold_percent"]),
                       ({"deployment_id": 999}, ["body", "deployment_id"])]:
        r = client.patch(path, json=patch)
        assert r.status_code == 422, patch
        assert r.json()["detail"][0]["loc"] == loc
    after = client.get(path).json()
    assert {k: after[k] for k in ("address", "events", "threshold_percent", "deployment_id")} == {
        "address": WEBHOOK["address"], "events": WEBHOOK["events"], "threshold_percent": 20, "deployment_id": None}


def test_duplicate_name_is_a_conflict(client):
    assert client.post("/api/v1/notifications/subscriptions", json=WEBHOOK).status_code == 201
    r = client.post("/api/v1/notifications/subscriptions", json=WEBHOOK)
    assert r.status_code == 409 and "name" in r.json()["detail"]


def test_scopes_and_the_delivery_list(client, make_deployment, make_policy):
    deployment, other = make_deployment(), make_deployment("Other")
    policy = make_policy("agent")
    scoped = client.post("/api/v1/notifications/subscriptions", json={**EMAIL, "deployment_id": deployment}).json()
    assert scoped["deployment_id"] == deployment
    by_policy = client.post("/api/v1/notifications/subscriptions",
                            json={**EMAIL, "name": "by-policy", "policy_id": policy}).json()
    assert by_policy["policy_id"] == policy
    listed = client.get("/api/v1/notifications/subscriptions", params={"deployment_id": deployment}).json()
    assert [s["id"] for s in listed["items"]] == [scoped["id"]]

    test = client.post(f"/api/v1/notifications/subscriptions/{scoped['id']}/test")
    assert test.status_code == 201
    assert (test.json()["event"], test.json()["status"], test.json()["attempts"]) == ("test", "pending", 0)
    assert test.json()["payload"]["delivery_id"] == test.json()["id"]
    assert client.post("/api/v1/notifications/subscriptions/999/test").status_code == 404

    deliveries = client.get("/api/v1/notifications/deliveries", params={"status": "pending"}).json()
    assert [d["id"] for d in deliveries["items"]] == [test.json()["id"]]
    assert client.get("/api/v1/notifications/deliveries", params={"status": "delivered"}).json()["total"] == 0
    assert client.get("/api/v1/notifications/deliveries", params={"deployment_id": other}).json()["total"] == 0
    assert client.get("/api/v1/notifications/deliveries", params={"status": "lost"}).status_code == 422
