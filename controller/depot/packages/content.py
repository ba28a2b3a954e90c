"""Package content on disk, addressed by sha256, and the short-lived signed URLs hosts pull it by."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlencode

from depot.security import Keys

CHUNK = 1024 * 1024


def content_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "content" / "sha256"


def content_path(data_dir: Path, sha256: str) -> Path:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError("not a sha256 hex digest")
    return content_dir(data_dir) / sha256


def store(data_dir: Path, stream: BinaryIO, max_bytes: int) -> tuple[str, int]:
    """Write ``stream`` into the content store; returns (sha256, size). Content over ``max_bytes``
    raises ValueError and leaves nothing behind."""
    directory = content_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    fd, partial = tempfile.mkstemp(dir=directory, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            for block in iter(lambda: stream.read(CHUNK), b""):
                size += len(block)
                if size > max_bytes:
                    raise ValueError(f"content is larger than the limit of {max_bytes} bytes")
                digest.update(block)
                out.write(block)
        sha = digest.hexdigest()
        os.replace(partial, directory / sha)
        partial = None
        return sha, size
    finally:
        if partial and os.path.exists(partial):
            os.unlink(partial)


def _message(sha256: str, filename: str, expires: int) -> str:
    return f"{sha256}/{filename}/{expires}"


def signed_url(keys: Keys, base_url: str, sha256: str, filename: str, ttl: int = 3600, now: float | None = None) -> str:
    """``<base>/api/v1/content/<sha256>/<filename>?expires=..&signature=..``, valid for ``ttl`` seconds."""
    expires = int((now if now is not None else time.time()) + ttl)
    query = urlencode(dict(expires=expires, signature=keys.sign(_message(sha256, filename, expires))))
    return f"{base_url.rstrip('/')}/api/v1/content/{sha256}/{quote(filename)}?{query}"


def verify_url(keys: Keys, sha256: str, filename: str, expires: int, signature: str, now: float | None = None) -> bool:
    if expires < (now if now is not None else time.time()):
        return False
    return keys.verify(_message(sha256, filename, expires), signature)
