"""Request bodies over DEPOT_MAX_REQUEST_BYTES are refused with 413 before they are read, whether
they announce their length or not, and change nothing; package uploads have their own limit."""

import pytest
from fastapi.testclient import TestClient

from depot.api import create_app
from depot.config import Settings
from tests.controller.auth import bearer

LIMIT = 4096


@pytest.fixture
def small(settings):
    app = create_app(Settings(data_dir=settings.data_dir, database_url=settings.database_url,
                              max_request_bytes=LIMIT, max_upload_bytes=64 * 1024))
    with TestClient(app, headers=bearer(app)) as client:
        yield client


def package(script_size):
    return {"name": "big", "version": "1", "platform": "linux", "installer_type": "script",
            "options": {"install_command": ["/bin/sh", "-c", "x" * script_size]}}


def test_a_body_over_the_limit_is_refused_and_changes_nothing(small, table_counts):
    before = table_counts()
    r = small.post("/api/v1/packages", json=package(LIMIT))
    assert r.status_code == 413, r.text
    assert "DEPOT_MAX_REQUEST_BYTES" in r.json()["detail"]
    # sent in chunks, with no Content-Length to go by
    body = (b'{"name": "big", "version": "1", "platform": "linux", "installer_type": "script", "options": '
            b'{"install_command": ["/bin/sh", "-c", "' + b"x" * LIMIT + b'"]}}')
    chunks = (body[i:i + 512] for i in range(0, len(body), 512))
    r = small.post("/api/v1/packages", content=chunks, headers={"content-type": "application/json"})
    assert r.status_code == 413, r.text
    assert table_counts() == before
    assert small.post("/api/v1/packages", json=package(LIMIT // 2)).status_code == 201


def test_uploads_have_their_own_limit(small):
    created = small.post("/api/v1/packages", json={"name": "p", "version": "1", "platform": "linux",
                                                   "installer_type": "deb", "product_id": "p"}).json()
    r = small.post(f"/api/v1/packages/{created['id']}/content", files={"file": ("p.deb", b"\0" * (LIMIT * 4))})
    assert r.status_code == 200, r.text
    r = small.post(f"/api/v1/packages/{created['id']}/content", files={"file": ("p.deb", b"\0" * (128 * 1024))})
    assert r.status_code == 413
