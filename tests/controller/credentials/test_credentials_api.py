"""Credentials through the API: the secret is write-only — encrypted at rest, in no response."""

import json

import pytest
from sqlalchemy import text

CANARY = "canary-Pa55w0rd-7d1e0c"
WINRM = {"name": "fleet-winrm", "kind": "winrm", "username": "DEPOT\\deployer", "secret": CANARY,
         "options": {"transport": "kerberos", "cert_validation": "ignore", "port": 5986}}


def stored_secret(app, credential_id):
    with app.state.engine.connect() as c:
        return c.execute(text("SELECT secret FROM credentials WHERE id = :id"), {"id": credential_id}).scalar_one()


def test_crud_never_returns_the_secret(client, app):
    responses = []
    r = client.post("/api/v1/credentials", json=WINRM)
    assert r.status_code == 201, r.text
    responses.append(r)
    credential = r.json()
    assert credential["has_secret"] is True and "secret" not in credential
    assert credential["options"] == {"transport": "kerberos", "cert_validation": "ignore", "port": 5986}

    responses.append(client.get(f"/api/v1/credentials/{credential['id']}"))
    responses.append(client.get("/api/v1/credentials"))
    responses.append(client.patch(f"/api/v1/credentials/{credential['id']}", json={"username": "svc"}))
    assert responses[-1].json()["username"] == "svc"
    new_secret = CANARY + "-rotated"
    responses.append(client.patch(f"/api/v1/credentials/{credential['id']}", json={"secret": new_secret}))
    responses.append(client.get("/openapi.json"))
    for response in responses:
        assert CANARY not in response.text

    ciphertext = bytes(stored_secret(app, credential["id"]))
    assert CANARY.encode() not in ciphertext
    assert app.state.keys.decrypt(ciphertext) == new_secret

    assert client.delete(f"/api/v1/credentials/{credential['id']}").status_code == 204
    assert client.get(f"/api/v1/credentials/{credential['id']}").status_code == 404


def test_an_update_without_secret_keeps_it(client, app):
    credential = client.post("/api/v1/credentials", json={**WINRM, "kind": "ssh_password", "options": {}}).json()
    client.patch(f"/api/v1/credentials/{credential['id']}", json={"name": "renamed"})
    assert app.state.keys.decrypt(bytes(stored_secret(app, credential["id"]))) == CANARY


@pytest.mark.parametrize("body, loc, message", [
    ({**WINRM, "options": {"transport": "carrier-pigeon"}}, ["body", "options"], "transport"),
    ({**WINRM, "options": {"colour": "red"}}, ["body", "options"], "colour"),
    ({**WINRM, "kind": "telnet"}, ["body", "kind"], "Input should be"),
    ({k: v for k, v in WINRM.items() if k != "secret"}, ["body", "secret"], "Field required"),
    ({**WINRM, "secret": ""}, ["body", "secret"], "at least 1"),
    ({**WINRM, "secret": 12345}, ["body", "secret"], "string"),
])
def test_invalid_requests_name_the_field_and_never_echo_the_secret(client, table_counts, body, loc, message):
    before = table_counts()
    r = client.post("/api/v1/credentials", json=body)
    assert r.status_code == 422
    error = r.json()["detail"][0]
    assert error["loc"] == loc and message in error["msg"]
    assert CANARY not in r.text and "12345" not in r.text
    assert table_counts() == before


def test_kinds_and_their_options(client):
    for kind, options, expected in [
        ("ssh_key", {"port": 2222}, {"port": 2222}),
        ("ssh_password", {"become": True}, {"become": True}),
        ("psrp", {}, {"transport": "ntlm", "cert_validation": "validate"}),
        ("run_as", {"domain": "CORP"}, {"domain": "CORP", "logon_type": "interactive"}),
        ("share", {"domain": "CORP"}, {"domain": "CORP"}),
    ]:
        r = client.post("/api/v1/credentials", json={"name": kind, "kind": kind, "username": "u", "secret": CANARY,
                                                      "options": options})
        assert r.status_code == 201, r.text
        assert r.json()["options"] == expected
    assert client.get("/api/v1/credentials", params={"kind": "share"}).json()["total"] == 1
    # changing the kind drops the old kind's options
    ssh = client.get("/api/v1/credentials", params={"kind": "ssh_key"}).json()["items"][0]
    r = client.patch(f"/api/v1/credentials/{ssh['id']}", json={"kind": "winrm"})
    assert r.json()["options"] == {"transport": "ntlm", "cert_validation": "validate"}


def test_duplicate_name_is_a_conflict(client):
    client.post("/api/v1/credentials", json=WINRM)
    r = client.post("/api/v1/credentials", json=WINRM)
    assert r.status_code == 409 and "name" in r.json()["detail"]


def test_credential_used_by_a_policy_cannot_be_deleted(client):
    credential = client.post("/api/v1/credentials", json={**WINRM, "kind": "run_as", "options": {}}).json()
    r = client.post("/api/v1/policies", json={"name": "p", "category": "script", "script": "echo hi",
                                              "run_as": "user", "run_as_credential_id": credential["id"]})
    assert r.status_code == 201, r.text
    assert client.delete(f"/api/v1/credentials/{credential['id']}").status_code == 409


def test_the_secret_is_not_logged(client, caplog):
    caplog.set_level("DEBUG")
    client.post("/api/v1/credentials", json=WINRM)
    client.post("/api/v1/credentials", json={**WINRM, "options": {"transport": "bad"}})
    assert CANARY not in caplog.text
    assert CANARY not in json.dumps([r.__dict__ for r in caplog.records], default=str)
