"""Keys of the controller: one Fernet key encrypts credentials at rest, and signs short-lived
content URLs (HMAC-SHA256 with a key derived from it). The key lives in <data_dir>/secret.key
(0600), or comes from DEPOT_SECRET_KEY."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

__all__ = ["InvalidToken", "Keys", "load_keys"]


class Keys:
    def __init__(self, fernet_key: bytes):
        self._fernet = Fernet(fernet_key)
        self._signing = hashlib.sha256(b"depot content url signing\0" + base64.urlsafe_b64decode(fernet_key)).digest()

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode("utf-8"))

    def decrypt(self, token: bytes) -> str:
        return self._fernet.decrypt(token).decode("utf-8")

    def sign(self, message: str) -> str:
        return hmac.new(self._signing, message.encode("utf-8"), hashlib.sha256).hexdigest()

    def verify(self, message: str, signature: str) -> bool:
        return hmac.compare_digest(self.sign(message), signature or "")


def load_keys(data_dir: Path, env_key: str | None = None) -> Keys:
    """The controller's keys; creates <data_dir>/secret.key (0600) on first use."""
    if env_key:
        return Keys(env_key.encode("ascii"))
    path = Path(data_dir) / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(Fernet.generate_key())
    return Keys(path.read_bytes().strip())
