"""The software repository through the API: CRUD, options checked against the collection's spec,
uploads streamed into the content store, and signed download URLs."""

import hashlib
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from depot.packages import content

MSI = {"name": "7-Zip", "version": "23.01", "platform": "windows", "installer_type": "msi",
       "product_id": "{23170F69-40C1-2702-2301-000001000000}",
       "options": {"arguments": ["/qn"], "exit_codes": {"success": [0, 3010]}, "reboot": "never"}}


def create(client, **changes):
    r = client.post("/api/v1/packages", json={**MSI, **changes})
    assert r.status_code == 201, r.text
    return r.json()


def upload(client, package_id, data: bytes, filename="setup.msi"):
    return client.post(f"/api/v1/packages/{package_id}/content", files={"file": (filename, data)})


def test_crud(client):
    package = create(client)
    assert package["options"]["reboot"] == "never" and package["content_sha256"] is None
    assert client.get(f"/api/v1/packages/{package['id']}").json() == package

    create(client, version="24.01")
    page = client.get("/api/v1/packages", params={"name": "7-Zip", "page_size": 1}).json()
    assert (page["total"], len(page["items"]), page["items"][0]["version"]) == (2, 1, "23.01")
    page2 = client.get("/api/v1/packages", params={"page": 2, "page_size": 1}).json()
    assert page2["items"][0]["version"] == "24.01"

    r = client.patch(f"/api/v1/packages/{package['id']}", json={"version": "23.02", "options": {}})
    assert r.status_code == 200, r.text
    assert (r.json()["version"], r.json()["options"], r.json()["name"]) == ("23.02", {}, "7-Zip")

    assert client.delete(f"/api/v1/packages/{package['id']}").status_code == 204
    assert client.get(f"/api/v1/packages/{package['id']}").status_code == 404
    assert client.get("/api/v1/packages").json()["total"] == 1


def test_installer_type_must_fit_the_platform(client, table_counts):
    before = table_counts()
    r = client.post("/api/v1/packages", json={**MSI, "installer_type": "deb"})
    assert r.status_code == 422
    error = r.json()["detail"][0]
    assert error["loc"] == ["body", "installer_type"]
    assert "'deb' is not valid for platform windows" in error["msg"]
    linux = create(client, platform="linux", installer_type="deb", product_id="acme-agent", options={})
    r = client.patch(f"/api/v1/packages/{linux['id']}", json={"installer_type": "msi"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "installer_type"]
    assert client.get(f"/api/v1/packages/{linux['id']}").json()["installer_type"] == "deb"
    assert table_counts()["packages"] == before["packages"] + 1


def test_unknown_options_are_named(client):
    r = client.post("/api/v1/packages", json={**MSI, "options": {"arguments": [], "colour": 1, "shape": 2}})
    assert r.status_code == 422
    error = r.json()["detail"][0]
    assert error["loc"] == ["body", "options"]
    assert "unknown option(s): colour, shape" in error["msg"]


@pytest.mark.parametrize("options, message", [
    ({"retries": "three"}, "retries must be of type int"),
    ({"reboot": "sometimes"}, "reboot must be one of never, if_required, force"),
    ({"detection": {"rules": [{"type": "dpkg", "name": "x"}]}}, "cannot be evaluated on a Windows host"),
    ({"src": "http://elsewhere/x.msi"}, "unknown option(s): src"),   # content is the package's own
])
def test_option_values_are_checked(client, options, message):
    r = client.post("/api/v1/packages", json={**MSI, "options": options})
    assert r.status_code == 422
    assert message in r.json()["detail"][0]["msg"]


def test_duplicate_name_version_platform_is_a_conflict(client):
    create(client)
    r = client.post("/api/v1/packages", json=MSI)
    assert r.status_code == 409
    assert "7-Zip" in r.json()["detail"]


def test_upload_then_signed_download(client, settings, app):
    package = create(client)
    data = b"MZ" + bytes(range(256)) * 100
    r = upload(client, package["id"], data, "7z2301-x64.msi")
    assert r.status_code == 200, r.text
    stored = r.json()
    sha = hashlib.sha256(data).hexdigest()
    assert (stored["content_sha256"], stored["content_size"], stored["content_filename"]) == (sha, len(data), "7z2301-x64.msi")
    assert content.content_path(settings.data_dir, sha).read_bytes() == data

    source = client.get(f"/api/v1/packages/{package['id']}/content-source").json()
    assert source["checksum"] == sha
    url = urlsplit(source["src"])
    assert source["src"].startswith(settings.public_url + "/api/v1/content/" + sha + "/7z2301-x64.msi?")
    r = client.get(url.path + "?" + url.query)
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["content-length"] == str(len(data))

    query = parse_qs(url.query)
    forged = client.get(url.path, params={"expires": query["expires"][0], "signature": "0" * 64})
    assert forged.status_code == 403
    longer = client.get(url.path, params={"expires": int(query["expires"][0]) + 3600, "signature": query["signature"][0]})
    assert longer.status_code == 403
    assert client.get(url.path).status_code == 403
    other_name = client.get(url.path.replace("7z2301-x64.msi", "other.msi") + "?" + url.query)
    assert other_name.status_code == 403


def test_expired_signature_is_refused(client, app):
    package = create(client)
    data = b"content"
    sha = upload(client, package["id"], data).json()["content_sha256"]
    expired = content.signed_url(app.state.keys, "http://x", sha, "setup.msi", ttl=60, now=time.time() - 120)
    url = urlsplit(expired)
    r = client.get(url.path + "?" + url.query)
    assert r.status_code == 403
    fresh = urlsplit(content.signed_url(app.state.keys, "http://x", sha, "setup.msi"))
    assert client.get(fresh.path + "?" + fresh.query).content == data


def test_signed_url_for_content_not_in_the_store_is_404(client, app):
    sha = "ab" * 32
    url = urlsplit(content.signed_url(app.state.keys, "http://x", sha, "f"))
    assert client.get(url.path + "?" + url.query).status_code == 404


def test_oversize_upload_is_rejected_and_nothing_is_stored(client, settings, table_counts):
    package = create(client)
    before = table_counts()
    r = upload(client, package["id"], b"x" * (settings.max_upload_bytes + 1))
    assert r.status_code == 413
    assert "larger than the limit" in r.json()["detail"]
    directory = content.content_dir(settings.data_dir)
    assert list(directory.iterdir()) == []           # not even a partial file
    assert client.get(f"/api/v1/packages/{package['id']}").json()["content_sha256"] is None
    assert table_counts() == before
    # exactly at the limit is fine
    assert upload(client, package["id"], b"x" * settings.max_upload_bytes).status_code == 200


def test_oversize_upload_by_declared_length_is_refused_before_reading(client, settings):
    package = create(client)
    body = b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nabc\r\n--b--\r\n"
    r = client.post(f"/api/v1/packages/{package['id']}/content", content=body, headers={
        "content-type": "multipart/form-data; boundary=b", "content-length": str(settings.max_upload_bytes * 4)})
    assert r.status_code == 413


def test_upload_needs_a_file_part(client):
    package = create(client)
    r = client.post(f"/api/v1/packages/{package['id']}/content", data={"note": "no file"}, files={"other": ("a", b"x")})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "file"]
    r = client.post(f"/api/v1/packages/{package['id']}/content", json={"file": "x"})
    assert r.status_code == 422


def test_upload_to_unknown_package_is_404_and_stores_nothing(client, settings):
    assert upload(client, 999, b"data").status_code == 404
    directory = content.content_dir(settings.data_dir)
    assert not directory.exists() or list(directory.iterdir()) == []


def test_external_content_url(client):
    sha = "c" * 64
    package = create(client, content_url="https://repo.example.com/7z.msi", content_sha256=sha)
    assert client.get(f"/api/v1/packages/{package['id']}/content-source").json() == {
        "src": "https://repo.example.com/7z.msi", "checksum": sha}
    r = client.post("/api/v1/packages", json={**MSI, "version": "2", "content_url": "https://repo.example.com/x.msi"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "content_sha256"]
    # an upload replaces the external URL; other edits keep the uploaded content
    uploaded = upload(client, package["id"], b"local").json()
    assert uploaded["content_url"] is None and uploaded["content_filename"] == "setup.msi"
    edited = client.patch(f"/api/v1/packages/{package['id']}", json={"product_id": None}).json()
    assert edited["content_sha256"] == uploaded["content_sha256"]


def test_package_without_content_has_no_source(client):
    package = create(client)
    r = client.get(f"/api/v1/packages/{package['id']}/content-source")
    assert r.status_code == 422 and "no content" in r.json()["detail"][0]["msg"]


def test_package_in_use_cannot_be_deleted(client):
    package = create(client)
    policy = client.post("/api/v1/policies", json={"name": "p", "category": "software", "package_id": package["id"]})
    assert policy.status_code == 201, policy.text
    r = client.delete(f"/api/v1/packages/{package['id']}")
    assert r.status_code == 409
    assert "policy" in r.json()["detail"]
