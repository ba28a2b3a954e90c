"""Keys of the controller. Fernet keys encrypt credentials and webhook secrets at rest and sign
short-lived content URLs and host check-in tokens (HMAC-SHA256 with a key derived from each).

There may be several keys, newest first (cryptography's MultiFernet): the first encrypts and
signs, every one decrypts and verifies, so a new key can be put in front while what the old one
encrypted or signed is still read. The keys live in <data_dir>/secret.key (0600, one per line),
or come from DEPOT_SECRET_KEY (comma-separated). Keys read from the file follow the file: when
`depot admin rotate-key` rewrites it, running processes on that data directory use the new keys
at their next use of a key. Rotation is described in the README's "Security model".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = ["InvalidToken", "KeyConfigError", "Keys", "generate_key", "load_keys", "parse_keys", "write_key_file"]

KEY_FILE = "secret.key"


class KeyConfigError(ValueError):
    """A key that is not a Fernet key, or a key file that cannot be used."""


def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")


def parse_keys(text: str, separator: str | None = None) -> list[str]:
    """Keys from DEPOT_SECRET_KEY (comma-separated) or a key file (one per line; # comments)."""
    parts = text.split(separator) if separator else text.splitlines()
    keys = [p.strip() for p in parts if p.strip() and not p.strip().startswith("#")]
    if not keys:
        raise KeyConfigError("no key given")
    for number, key in enumerate(keys, 1):
        try:
            Fernet(key.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise KeyConfigError(f"key {number} is not a Fernet key (32 bytes, urlsafe base64)") from None
    if len(set(keys)) != len(keys):
        raise KeyConfigError("the same key is given twice")
    return keys


def _signing_key(key: str) -> bytes:
    return hashlib.sha256(b"depot content url signing\0" + base64.urlsafe_b64decode(key)).digest()


class _Ring:
    """One set of keys, primary first."""

    def __init__(self, keys: list[str]):
        self.keys = keys
        self.fernet = MultiFernet([Fernet(k.encode("ascii")) for k in keys])
        self.signing = [_signing_key(k) for k in keys]


class Keys:
    """The keys in use. From a file, they are read again whenever the file changes."""

    def __init__(self, keys: list[str] | str | bytes, path: Path | None = None):
        if isinstance(keys, bytes):
            keys = keys.decode("ascii")
        self._ring = _Ring(parse_keys(keys, ",") if isinstance(keys, str) else keys)
        self._path = path
        self._stamp = self._stat() if path else None
        self._lock = threading.Lock()

    def _stat(self):
        st = os.stat(self._path)
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _current(self) -> _Ring:
        if self._path is not None:
            stamp = self._stat()
            if stamp != self._stamp:
                with self._lock:
                    if stamp != self._stamp:
                        self._ring = _Ring(parse_keys(self._path.read_text("ascii")))
                        self._stamp = stamp
        return self._ring

    @property
    def ring(self) -> list[str]:
        """The keys, primary first."""
        return list(self._current().keys)

    def encrypt(self, plaintext: str) -> bytes:
        return self._current().fernet.encrypt(plaintext.encode("utf-8"))

    def decrypt(self, token: bytes) -> str:
        return self._current().fernet.decrypt(token).decode("utf-8")

    def rotate(self, token: bytes) -> bytes:
        """The same secret, encrypted with the primary key (InvalidToken if no key opens it)."""
        return self._current().fernet.rotate(token)

    def primary_only(self) -> "Keys":
        return Keys(self._current().keys[:1])

    def sign(self, message: str) -> str:
        return hmac.new(self._current().signing[0], message.encode("utf-8"), hashlib.sha256).hexdigest()

    def verify(self, message: str, signature: str) -> bool:
        data, signature = message.encode("utf-8"), signature or ""
        return any(hmac.compare_digest(hmac.new(key, data, hashlib.sha256).hexdigest(), signature)
                   for key in self._current().signing)


def write_key_file(path: Path, keys: list[str]) -> None:
    """Replace the key file at once (0600), so a reader sees the old keys or the new, never half."""
    parse_keys("\n".join(keys))
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write("# Depot's keys, newest first: the first encrypts and signs, all decrypt and verify.\n")
        f.write("".join(k + "\n" for k in keys))
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)


def load_keys(data_dir: Path, env_keys: str | None = None) -> Keys:
    """The controller's keys: DEPOT_SECRET_KEY, else <data_dir>/secret.key (created on first use)."""
    if env_keys:
        return Keys(env_keys)
    path = Path(data_dir) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        write_key_file(partial, [generate_key()])
        try:
            os.link(partial, path)   # whole or not at all, and never over a key another process made
        except FileExistsError:
            pass
        finally:
            os.unlink(partial)
    return Keys(parse_keys(path.read_text("ascii")), path)
