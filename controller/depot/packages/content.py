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


class ContentWriter:
    """Writes content into the store piece by piece, hashing as it goes, so an upload never has to
    be held in memory or spooled elsewhere first. Going over ``max_bytes`` raises ValueError and
    leaves nothing behind; ``commit()`` moves the content to its sha256 name."""

    def __init__(self, data_dir: Path, max_bytes: int):
        self.directory = content_dir(data_dir)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.size = 0
        self._digest = hashlib.sha256()
        fd, self._partial = tempfile.mkstemp(dir=self.directory, prefix=".upload-")
        self._out = os.fdopen(fd, "wb")

    def write(self, block: bytes) -> None:
        self.size += len(block)
        if self.size > self.max_bytes:
            self.discard()
            raise ValueError(f"content is larger than the limit of {self.max_bytes} bytes")
        self._digest.update(block)
        self._out.write(block)

    def commit(self) -> tuple[str, int]:
        self._out.close()
        sha = self._digest.hexdigest()
        os.replace(self._partial, self.directory / sha)
        self._partial = None
        return sha, self.size

    def discard(self) -> None:
        self._out.close()
        if self._partial and os.path.exists(self._partial):
            os.unlink(self._partial)
        self._partial = None


def store(data_dir: Path, stream: BinaryIO, max_bytes: int) -> tuple[str, int]:
    """Write ``stream`` into the content store; returns (sha256, size). Content over ``max_bytes``
    raises ValueError and leaves nothing behind."""
    writer = ContentWriter(data_dir, max_bytes)
    try:
        for block in iter(lambda: stream.read(CHUNK), b""):
            writer.write(block)
        return writer.commit()
    finally:
        writer.discard()


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
