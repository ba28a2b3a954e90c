"""The application: health, OpenAPI, error shapes and paging shared by every resource."""


def test_health(client):
    r = client.get("/api/v1/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


def test_openapi_and_docs(client):
    spec = client.get("/openapi.json").json()
    assert "/api/v1/deployments/{deployment_id}/start" in spec["paths"]
    assert "multipart/form-data" in spec["paths"]["/api/v1/packages/{package_id}/content"]["post"]["requestBody"]["content"]
    assert client.get("/docs").status_code == 200


def test_unknown_ids_are_404_naming_the_id(client):
    for path in ("packages", "credentials", "targets", "policies", "deployments", "runs"):
        r = client.get(f"/api/v1/{path}/999")
        assert r.status_code == 404, path
        assert "999" in r.json()["detail"]


def test_page_size_is_bounded(client):
    assert client.get("/api/v1/packages?page_size=500").status_code == 200
    r = client.get("/api/v1/packages?page_size=501")
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", "page_size"]
    assert client.get("/api/v1/packages?page=0").status_code == 422


def test_unknown_body_fields_are_rejected_by_name(client):
    r = client.post("/api/v1/deployments", json={"name": "d", "colour": "blue"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "colour"]
