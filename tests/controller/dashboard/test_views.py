"""The dashboard's static files (no browser): served at /ui/ by the controller itself, without a
token (the data comes from the API, which checks it), with a strict Content-Security-Policy,
nothing outside the static directory, and none of it in the OpenAPI document."""

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from depot.dashboard import views

STATIC = Path(views.__file__).with_name("static")


@pytest.fixture
def anonymous(app):
    with TestClient(app) as c:
        yield c


def test_root_redirects_to_the_dashboard(anonymous):
    for path in ("/", "/ui"):
        r = anonymous.get(path, follow_redirects=False)
        assert (r.status_code, r.headers["location"]) == (307, "/ui/")


def test_index_and_assets_are_served_with_their_types_and_a_strict_policy(anonymous):
    index = anonymous.get("/ui/")
    assert index.status_code == 200 and index.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script type="module" src="/ui/js/main.js">' in index.text
    policy = index.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe" not in policy
    assert index.headers["x-content-type-options"] == "nosniff"
    assert index.headers["cache-control"] == "no-cache" and index.headers["etag"]
    again = anonymous.get("/ui/", headers={"If-None-Match": index.headers["etag"]})
    assert again.status_code == 304
    # Every module the page imports is served, as JavaScript.
    for path in sorted(STATIC.rglob("*.js")):
        r = anonymous.get("/ui/" + path.relative_to(STATIC).as_posix())
        assert r.status_code == 200 and r.headers["content-type"] == "text/javascript; charset=utf-8", path
    assert anonymous.get("/ui/app.css").headers["content-type"] == "text/css; charset=utf-8"


@pytest.mark.parametrize("path", ["/ui/../api.py", "/ui/%2e%2e/views.py", "/ui/js/../../views.py",
                                  "/ui/nope.js", "/ui/js/", "/ui//etc/passwd"])
def test_nothing_else_is_served(anonymous, path):
    assert anonymous.get(path).status_code == 404


def test_the_dashboard_is_not_in_the_openapi_document(app):
    paths = app.openapi()["paths"]
    assert not [p for p in paths if not p.startswith("/api/v1/")]
    assert "/api/v1/deployments/{deployment_id}/stream" not in paths       # an endless event stream
    assert "/api/v1/deployments/{deployment_id}/grid" in paths and "/api/v1/tokens/current" in paths


def test_no_inline_script_or_style_anywhere():
    """The policy forbids them: the page would break, so none may creep in."""
    html = (STATIC / "index.html").read_text()
    assert "<script>" not in html and "style=" not in html and "<style" not in html and "onclick=" not in html
    for path in STATIC.rglob("*.js"):
        text = path.read_text()
        assert "innerHTML" not in text and "eval(" not in text, path
