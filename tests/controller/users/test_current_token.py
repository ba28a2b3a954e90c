"""GET /tokens/current: whose token a request carries (the dashboard's "signed in as")."""

from fastapi.testclient import TestClient

from tests.controller.auth import bearer


def test_the_token_of_the_request_and_its_user(app):
    with TestClient(app, headers=bearer(app, "viewer", "vera")) as vera:
        current = vera.get("/api/v1/tokens/current")
        assert current.status_code == 200, current.text
        body = current.json()
        assert (body["user"]["name"], body["user"]["role"], body["user"]["active"]) == ("vera", "viewer", True)
        assert body["token"]["user_id"] == body["user"]["id"] and body["token"]["name"] == "test"
        assert body["token"]["prefix"] == vera.headers["Authorization"].removeprefix("Bearer ")[:10]
        assert "token" not in body["token"]     # the secret itself is never shown again
    with TestClient(app) as anonymous:
        assert anonymous.get("/api/v1/tokens/current").status_code == 401
    with TestClient(app, headers={"Authorization": "Bearer dpt_unknown"}) as unknown:
        r = unknown.get("/api/v1/tokens/current")
        assert r.status_code == 401 and r.json()["detail"] == "unknown token"
