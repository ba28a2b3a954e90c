# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Installer content on the host: pull by URL into a hash-addressed cache, verified by sha256
before anything runs, so a re-run transfers nothing (DESIGN §2.6)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
import tempfile

from ansible.module_utils.six.moves.urllib.parse import urlparse, unquote

SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
DEFAULT_CACHE_DIR = "/var/cache/depot"


class ContentError(Exception):
    """Content could not be fetched or did not match its checksum; nothing was run."""


def is_url(src):
    return urlparse(src).scheme in ("http", "https")


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def _filename(src):
    name = os.path.basename(unquote(urlparse(src).path)) if is_url(src) else os.path.basename(src)
    # Only the last path component, and nothing that could climb out of the cache entry.
    name = re.sub(r"[^A-Za-z0-9._+-]", "_", name).lstrip(".")
    return name or "installer"


def fetch(src, checksum=None, cache_dir=None, timeout=60):
    """Return ``{path, sha256, cached, bytes_downloaded}`` for ``src``.

    A URL needs ``checksum``; the file lands in ``<cache>/sha256/<hash>/<name>`` and is reused
    (re-verified) on later calls. A local path is used where it is, verified when a checksum is
    given.
    """
    if checksum is not None and not SHA256_RE.match(checksum):
        raise ContentError("checksum must be a sha256 hex digest (64 hex characters)")
    checksum = checksum.lower() if checksum else None
    if not is_url(src):
        if not os.path.isabs(src):
            raise ContentError("src must be an http(s) URL or an absolute path on the host, got %r" % src)
        if not os.path.isfile(src):
            raise ContentError("src %s does not exist on the host" % src)
        if checksum:
            actual = sha256_file(src)
            if actual != checksum:
                raise ContentError("checksum mismatch for %s: expected %s, got %s" % (src, checksum, actual))
        return dict(path=src, sha256=checksum, cached=False, bytes_downloaded=0)

    if not checksum:
        raise ContentError("checksum (sha256) is required when src is a URL")
    entry = os.path.join(cache_dir or DEFAULT_CACHE_DIR, "sha256", checksum)
    path = os.path.join(entry, _filename(src))
    if os.path.isfile(path) and sha256_file(path) == checksum:
        return dict(path=path, sha256=checksum, cached=True, bytes_downloaded=0)

    os.makedirs(entry, mode=0o755, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=entry, prefix=".partial-")
    digest, size = hashlib.sha256(), 0
    try:
        try:
            # Imported here: ansible.module_utils.urls brings ssl, http.client and cryptography,
            # about a third of the module's start-up, which a satisfied package never needs.
            from ansible.module_utils.urls import open_url
            response = open_url(src, timeout=timeout, follow_redirects="safe")
        except Exception as e:  # open_url raises several exception types for HTTP and socket errors
            raise ContentError("download of %s failed: %s" % (src, e))
        with os.fdopen(fd, "wb") as out:
            for block in iter(lambda: response.read(1024 * 1024), b""):
                digest.update(block)
                size += len(block)
                out.write(block)
        actual = digest.hexdigest()
        if actual != checksum:
            raise ContentError("checksum mismatch for %s: expected %s, got %s" % (src, checksum, actual))
        os.chmod(partial, 0o755)
        os.replace(partial, path)
        partial = None
    finally:
        if partial and os.path.exists(partial):
            os.unlink(partial)
    return dict(path=path, sha256=checksum, cached=False, bytes_downloaded=size)


def unpack(archive, cache_dir=None):
    """Extract an archive (tar.* or zip) once into ``<cache>/unpacked/<sha256>`` and return the dir."""
    digest = sha256_file(archive)
    target = os.path.join(cache_dir or DEFAULT_CACHE_DIR, "unpacked", digest)
    if os.path.isdir(target):
        return target
    os.makedirs(os.path.dirname(target), exist_ok=True)
    staging = tempfile.mkdtemp(dir=os.path.dirname(target), prefix=".partial-")
    # Python's "data" filter refuses members that would land outside the target (absolute
    # paths, "..", links out). Pythons older than 3.11.4 lack it; there we rely on the
    # archive being sha256-pinned content.
    kwargs = {"filter": "data"} if _has_filter() else {}
    try:
        try:
            shutil.unpack_archive(archive, staging, **kwargs)
        except (shutil.ReadError, ValueError, tarfile.TarError) as e:
            raise ContentError("cannot unpack %s: %s" % (archive, e))
        os.replace(staging, target)
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _has_filter():
    return hasattr(tarfile, "data_filter")
