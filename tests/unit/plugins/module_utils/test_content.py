import hashlib
import io
import tarfile

import pytest

from ansible_collections.depot.software.plugins.module_utils._content import ContentError, fetch, unpack


def sha(data):
    return hashlib.sha256(data).hexdigest()


def test_local_path_verified(tmp_path):
    f = tmp_path / "setup.sh"
    f.write_bytes(b"#!/bin/sh\n")
    assert fetch(str(f), sha(b"#!/bin/sh\n"))["path"] == str(f)
    with pytest.raises(ContentError, match="checksum mismatch"):
        fetch(str(f), "0" * 64)


def test_bad_sources_and_checksums(tmp_path):
    with pytest.raises(ContentError, match="absolute path"):
        fetch("relative/setup.sh")
    with pytest.raises(ContentError, match="does not exist"):
        fetch(str(tmp_path / "missing"))
    with pytest.raises(ContentError, match="sha256 hex digest"):
        fetch(str(tmp_path), "abc")
    with pytest.raises(ContentError, match="required when src is a URL"):
        fetch("http://127.0.0.1:9/x")


def test_url_download_cache_and_mismatch(tmp_path):
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
    import functools

    www = tmp_path / "www"
    www.mkdir()
    payload = b"installer bytes" * 1000
    (www / "pkg.deb").write_bytes(payload)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:%d/pkg.deb" % server.server_port
    cache = str(tmp_path / "cache")
    try:
        first = fetch(url, sha(payload), cache)
        assert (first["cached"], first["bytes_downloaded"]) == (False, len(payload))
        assert first["path"] == "%s/sha256/%s/pkg.deb" % (cache, sha(payload))
        again = fetch(url, sha(payload).upper(), cache)
        assert (again["cached"], again["bytes_downloaded"]) == (True, 0)
        with pytest.raises(ContentError, match="checksum mismatch"):
            fetch(url, "1" * 64, cache)
        assert not (tmp_path / "cache" / "sha256" / ("1" * 64) / "pkg.deb").exists()
    finally:
        server.shutdown()


def test_unpack_refuses_members_outside_the_target(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = b"pwned"
        info = tarfile.TarInfo("../../escaped")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ContentError):
        unpack(str(archive), str(tmp_path / "cache"))
    assert not (tmp_path / "escaped").exists()
