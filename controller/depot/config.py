"""Settings, from DEPOT_* environment variables or a file (pydantic-settings).

Every setting is documented by its description; `depot settings` prints them all.
"""

from __future__ import annotations

import os
from functools import lru_cache
from ipaddress import IPv4Network
from pathlib import Path
from typing import Literal

from pydantic import Field, IPvAnyNetwork, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Run from a checkout (the repository root is the collection's root), or installed from a wheel,
#: which carries a copy of the depot.software collection in depot/collections (setup.py).
IN_CHECKOUT = (REPO_ROOT / "galaxy.yml").is_file() and (REPO_ROOT / "plugins").is_dir()
BUNDLED_COLLECTIONS = Path(__file__).resolve().parent / "collections"
#: The root of the depot.software collection the controller validates options against.
COLLECTION_ROOT = REPO_ROOT if IN_CHECKOUT else BUNDLED_COLLECTIONS / "ansible_collections" / "depot" / "software"


def _default_collections_path() -> Path:
    return REPO_ROOT / ".collections" if IN_CHECKOUT else BUNDLED_COLLECTIONS


def _default_data_dir() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "depot"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DEPOT_",
        env_file=os.environ.get("DEPOT_CONFIG_FILE"),
        env_file_encoding="utf-8",
        extra="forbid",
    )

    data_dir: Path = Field(default_factory=_default_data_dir, description=(
        "Directory for the embedded database, package content, run directories and artifacts."))
    database_url: str | None = Field(default=None, description=(
        "SQLAlchemy URL of the database. Default: SQLite at <data_dir>/depot.db. Production: "
        "postgresql+psycopg://user@host/dbname."))
    collections_path: Path = Field(default_factory=_default_collections_path, description=(
        "Ansible collections path holding depot.software (ansible_collections/depot/software)."))
    public_url: str = Field(default="http://127.0.0.1:8080", description=(
        "Base URL at which managed hosts reach this controller, for pulling package content."))
    secret_key: str | None = Field(default=None, description=(
        "Fernet keys (urlsafe base64, 32 bytes), comma-separated, newest first: the first encrypts credentials "
        "and signs content URLs and check-in tokens, all of them decrypt and verify (key rotation). "
        "Default: <data_dir>/secret.key (one key per line), created on first use."))
    max_upload_bytes: int = Field(default=4 * 1024 ** 3, ge=1, description="Largest package content accepted by upload.")
    max_request_bytes: int = Field(default=8 * 1024 ** 2, ge=1024, description=(
        "Largest request body the API reads (JSON: scripts, options); larger ones get 413 before they are read. "
        "Package uploads have their own limit."))
    content_url_ttl: int = Field(default=3600, ge=60, description="Seconds a signed content URL stays valid.")
    content_url_allowed_networks: list[IPvAnyNetwork] = Field(default_factory=list, description=(
        "Networks (CIDR, JSON list in the environment) that a package's content_url may point at when a "
        "non-admin sets it, besides public addresses (e.g. an internal mirror's subnet). Otherwise non-admins may "
        "not point it at loopback, link-local, private or other internal addresses, at host names resolving to "
        "them (resolved when the package is saved), or at this controller (never: upload instead); admins may "
        "set any http(s) URL."))
    worker_name: str = Field(default_factory=lambda: f"{os.uname().nodename}:{os.getpid()}", description=(
        "Name this worker records on the work it claims."))
    worker_forks: int = Field(default=25, ge=1, description="Hosts one worker runs at once (ansible forks).")
    worker_hosts_per_fork: int | None = Field(default=None, ge=1, le=100, description=(
        "Hosts a run may take per fork it is given. The hosts beyond its forks wait inside the run (Active, not yet "
        "contacted) and start as soon as a fork frees, without another ansible-playbook start-up. Only hosts whose "
        "maintenance windows do not close wait so; 1: a run takes at most as many hosts as it has forks. Default: 4 "
        "on SQLite (one worker); 1 on PostgreSQL, where hosts queued in one worker's run would wait while another "
        "worker has free forks."))
    worker_poll_interval: float = Field(default=1.0, gt=0, description=(
        "Seconds between a worker's claims for work. A worker of `depot serve` also claims at once when this "
        "process starts a deployment, makes a host Ready or finishes one."))
    lease_seconds: int = Field(default=60, ge=5, description=(
        "How long claimed work stays a worker's without a heartbeat; a lost worker's hosts become Inconclusive after it."))
    event_batch_size: int = Field(default=200, ge=1, description="Events written to the database in one transaction.")
    scheduler_interval: float = Field(default=1.0, gt=0, description=(
        "Seconds between scheduler ticks of `depot serve`: each tick starts the ready deployments whose schedule "
        "is due (misfire rules and maintenance windows applied); it looks only at those due, so a tick with nothing "
        "due costs milliseconds. Occurrences are on time up to a minute late."))
    lan_networks: list[IPvAnyNetwork] = Field(default_factory=lambda: [
        IPv4Network("10.0.0.0/8"), IPv4Network("172.16.0.0/12"), IPv4Network("192.168.0.0/16")], description=(
        "Networks (CIDR, JSON list in the environment) that count as the LAN for steps with network condition "
        "lan_only: a host runs such a step only while its address - the one it last checked in from, else its "
        "inventory address - is in one of them."))
    checkin_token_ttl_days: int = Field(default=365, ge=1, description=(
        "Days a host check-in token (GET /api/v1/hosts/{name}/checkin-token) stays valid."))
    event_batch_seconds: float = Field(default=0.5, gt=0, description="Longest wait before buffered events are written.")
    smtp_host: str = Field(default="127.0.0.1", description="SMTP server that notification emails are sent through.")
    smtp_port: int = Field(default=25, ge=1, le=65535, description="Port of the SMTP server.")
    smtp_from: str = Field(default="depot@localhost", description="Sender address of notification emails.")
    smtp_starttls: bool = Field(default=False, description="Upgrade the SMTP connection with STARTTLS (certificate verified).")
    smtp_username: str | None = Field(default=None, description="SMTP login user name; no login when unset.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP login password (never logged or printed).")
    smtp_timeout: float = Field(default=10.0, gt=0, description="Seconds an SMTP connection or command may take.")
    notification_max_attempts: int = Field(default=8, ge=1, description=(
        "Attempts to send a notification (email or webhook) before its delivery is marked failed."))
    notification_backoff_seconds: float = Field(default=30.0, gt=0, description=(
        "Wait before the second attempt of a notification; it doubles with every further attempt, up to an hour."))
    notification_interval: float = Field(default=2.0, gt=0, description=(
        "Seconds between notification delivery passes of `depot serve` and `depot worker`."))
    log_format: Literal["text", "json"] = Field(default="text", description=(
        "Format of the log lines on stderr: text (for a terminal) or json (one object per line: time, level, "
        "logger, message, and the request_id or run_id it belongs to; for a log collector)."))
    metrics_token: SecretStr | None = Field(default=None, description=(
        "Bearer token that GET /metrics requires (Prometheus: authorization.credentials_file). Unset: /metrics "
        "is open to anyone who reaches the API; it shows only counts, durations and lags (no names, addresses "
        "or secrets)."))

    @model_validator(mode="after")
    def _fill_database_url(self) -> "Settings":
        if self.database_url is None:
            self.database_url = f"sqlite:///{self.data_dir / 'depot.db'}"
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
