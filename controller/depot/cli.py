"""The `depot` command: the controller's processes (serve, worker, migrate) and a client of its
API (deploy, status, the deployment actions, schedule previews, hosts and check-ins)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

import httpx

from depot.config import Settings, get_settings


def _scheduler_loop(sessions, interval: float, stop: threading.Event) -> None:
    """Run a scheduler tick every ``interval`` seconds, each in a transaction of its own, until ``stop``."""
    from depot.database.core import log_failure, transaction, utcnow
    from depot.scheduling.tick import tick

    log = logging.getLogger("depot.scheduling")
    while not stop.wait(interval):
        try:
            with transaction(sessions) as session:
                tick(session, utcnow())
        except Exception as e:  # noqa: BLE001 - one failed tick must not stop the scheduler
            log_failure(log, "scheduler tick", e)


def _delivery_loop(sessions, settings: Settings, keys, stop: threading.Event) -> None:
    """Send the due notifications every ``notification_interval`` seconds until ``stop``."""
    from depot.database.core import log_failure
    from depot.notifications.service import deliver_due

    log = logging.getLogger("depot.notifications")
    while not stop.wait(settings.notification_interval):
        try:
            deliver_due(sessions, settings, keys)
        except Exception as e:  # noqa: BLE001 - one failed pass must not stop the deliveries
            log_failure(log, "notification delivery pass", e)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from depot.api import create_app
    from depot.database.migrate import upgrade
    from depot.execution.worker import Worker

    settings = get_settings()
    upgrade(settings.database_url)
    app = create_app(settings)
    stop_scheduler = threading.Event()
    threading.Thread(target=_scheduler_loop, args=(app.state.sessionmaker, settings.scheduler_interval, stop_scheduler),
                     name="depot-scheduler", daemon=True).start()
    threading.Thread(target=_delivery_loop, args=(app.state.sessionmaker, settings, app.state.keys, stop_scheduler),
                     name="depot-notifications", daemon=True).start()
    worker = None
    if not args.no_worker:
        worker = Worker(app.state.sessionmaker, settings, app.state.keys)
        threading.Thread(target=worker.run_forever, name="depot-worker", daemon=True).start()
    # Idle connections stay open longer than clients keep them (httpx: 5 s, like uvicorn's default):
    # with equal timeouts a client may send on a connection the server is closing at that instant,
    # and the request fails with "server disconnected" (1 in 1,372 under the 50-client load test).
    # log_config=None: uvicorn's own lines go through the root logger's handler too (text or JSON,
    # DEPOT_LOG_FORMAT), instead of a handler of its own.
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False,
                            timeout_keep_alive=65, log_config=None)
    server = uvicorn.Server(config)
    try:
        server.run()
    finally:
        stop_scheduler.set()
        if worker is not None:
            worker.stop()
            worker.drain(timeout=args.drain_timeout)
    return 0


def _worker(args: argparse.Namespace) -> int:
    from depot.database.core import make_engine, make_sessionmaker
    from depot.database.migrate import check_current
    from depot.execution.worker import Worker
    from depot.security import load_keys

    settings = get_settings()
    check_current(settings.database_url)
    engine = make_engine(settings.database_url)
    sessions, keys = make_sessionmaker(engine), load_keys(settings.data_dir, settings.secret_key)
    worker = Worker(sessions, settings, keys)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.stop())
    stop_deliveries = threading.Event()
    threading.Thread(target=_delivery_loop, args=(sessions, settings, keys, stop_deliveries),
                     name="depot-notifications", daemon=True).start()
    logging.getLogger(__name__).info("worker %s started", settings.worker_name)
    try:
        worker.run_forever()
    finally:
        stop_deliveries.set()
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from depot.database.migrate import upgrade

    settings = get_settings()
    upgrade(settings.database_url, args.revision)
    print(f"database at {args.revision}: {_safe_url(settings.database_url)}")
    return 0


def _admin(args: argparse.Namespace) -> int:
    """The first admin and its token, printed once (on stdout, alone, for scripts to capture)."""
    import datetime as dt

    from depot.database import migrate
    from depot.database.core import make_engine, make_sessionmaker, transaction, utcnow
    from depot.errors import DepotError
    from depot.users.service import bootstrap_admin

    settings = get_settings()
    migrate.upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            token = bootstrap_admin(session, args.name, dt.timedelta(days=args.expires_in_days), utcnow())
    except DepotError as e:
        print(f"depot: {e}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(token)
    print(f"admin {args.name} created; the token above is shown once (it expires in {args.expires_in_days} days): "
          "give it to depot as DEPOT_TOKEN", file=sys.stderr)
    return 0


def _reencrypt_all(settings: Settings, keys) -> list[str]:
    """Encrypt every stored secret with the primary key, in one transaction that is also audited;
    returns what the primary key alone still cannot open (nothing, unless a row changed meanwhile)."""
    from depot.audit.service import record
    from depot.credentials import rotation
    from depot.database.core import make_engine, make_sessionmaker, transaction

    engine = make_engine(settings.database_url)
    try:
        sessions = make_sessionmaker(engine)
        with transaction(sessions) as session:
            counts = rotation.reencrypt(session, keys)
            record(session, "cli", "keys.reencrypt", keys=len(keys.ring), **counts)
        with sessions() as session:
            left = rotation.needing_old_keys(session, keys)
    finally:
        engine.dispose()
    print("re-encrypted with the newest key: " + ", ".join(f"{n} {t}" for t, n in counts.items()), file=sys.stderr)
    return left


def _rotate_key(args: argparse.Namespace) -> int:
    """A new key in front of the key file; every stored secret re-encrypted with it; with --retire,
    the old keys removed once nothing needs them. Processes on this data directory follow the file."""
    from depot.database.migrate import check_current
    from depot.security import KEY_FILE, generate_key, load_keys, write_key_file

    settings = get_settings()
    if settings.secret_key:
        print("depot: the keys come from DEPOT_SECRET_KEY, which this command cannot change. Rotate them there: "
              "put a new key (`depot admin new-key`) after the old one on every controller and worker, restart them, "
              "move it to the front, restart, run `depot admin reencrypt`, then drop the old key.", file=sys.stderr)
        return 2
    check_current(settings.database_url)
    path = settings.data_dir / KEY_FILE
    keys = load_keys(settings.data_dir)
    write_key_file(path, [generate_key(), *keys.ring])
    left = _reencrypt_all(settings, keys)
    if args.retire:
        if left:
            print("depot: not retiring the old keys: still needed by " + ", ".join(left), file=sys.stderr)
            return 1
        write_key_file(path, keys.ring[:1])
    print(f"{path}: {len(keys.ring)} key(s), the first one new", file=sys.stderr)
    return 0


def _new_key(args: argparse.Namespace) -> int:
    from depot.security import generate_key

    print(generate_key())
    return 0


def _reencrypt(args: argparse.Namespace) -> int:
    from depot.database.migrate import check_current
    from depot.security import load_keys

    settings = get_settings()
    check_current(settings.database_url)
    left = _reencrypt_all(settings, load_keys(settings.data_dir, settings.secret_key))
    if left:
        print("depot: still needing an older key: " + ", ".join(left), file=sys.stderr)
        return 1
    print("every stored secret opens with the first key alone: the others can be removed", file=sys.stderr)
    return 0


def _shown(settings: Settings, name: str):
    """A setting's value as `depot settings` shows it: secrets as "(set)", no password in the database URL."""
    from pydantic import SecretStr

    value = getattr(settings, name)
    if value is None:
        return None
    if name == "secret_key" or isinstance(value, SecretStr):
        return "(set)"
    if name == "database_url":
        return _safe_url(value)
    return value


def _hides_something(settings: Settings, name: str) -> bool:
    return _shown(settings, name) == "(set)" or (name == "database_url" and _shown(settings, name) != settings.database_url)


def _given(settings: Settings) -> set[str]:
    """The settings given in the environment or the configuration file (not defaults)."""
    given = set(settings.model_fields_set)
    if settings.database_url == f"sqlite:///{settings.data_dir / 'depot.db'}":   # filled in from data_dir
        given.discard("database_url")
    return given


def _env_value(value, quoted: bool = True) -> str:
    """A value as a line of a DEPOT_CONFIG_FILE (dotenv) or a systemd EnvironmentFile reads it back:
    bools as true/false, lists as JSON in single quotes (literal in both; unquoted, systemd would
    strip the double quotes inside)."""
    import json

    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        text = json.dumps([str(v) for v in value])
        return f"'{text}'" if quoted else text
    text = str(value)
    if any(c.isspace() or c in "#'\"\\" for c in text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


#: Defaults that depend on the machine, as the documentation states them.
DOC_DEFAULTS = {
    "data_dir": "`$XDG_DATA_HOME/depot` (`~/.local/share/depot`)",
    "database_url": "SQLite at `<data_dir>/depot.db`",
    "collections_path": "the checkout's `.collections`; installed from a wheel: the copy of the collection in the package",
    "worker_name": "`<hostname>:<pid>`",
}


def settings_markdown() -> str:
    """The table of every setting in docs/operations.md (a test keeps the two equal)."""
    lines = ["| setting | default | what it is |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        if name in DOC_DEFAULTS:
            default = DOC_DEFAULTS[name]
        else:
            value = field.default_factory() if field.default_factory else field.default
            default = "unset" if value is None else f"`{_env_value(value, quoted=False)}`"
        description = (field.description or "").replace("|", "\\|")
        lines.append(f"| `DEPOT_{name.upper()}` | {default} | {description} |")
    return "\n".join(lines)


def _settings(args: argparse.Namespace) -> int:
    import json

    if args.format == "markdown":
        print(settings_markdown())
        return 0
    settings = get_settings()
    if args.format == "json":
        values = settings.model_dump(mode="json")
        print(json.dumps({f"DEPOT_{name.upper()}": {"value": _shown(settings, name) if _hides_something(settings, name)
                                                    else values[name], "description": field.description}
                          for name, field in Settings.model_fields.items()}, indent=2))
        return 0
    for name, field in Settings.model_fields.items():
        value = _shown(settings, name)
        if args.format == "text":
            print(f"DEPOT_{name.upper()} = {value}\n    {field.description}")
            continue
        # env: a configuration file (DEPOT_CONFIG_FILE) of the settings given explicitly (environment or
        # file); the others, and anything secret, commented out.
        print(f"# {field.description}")
        if _hides_something(settings, name):
            print(f"# DEPOT_{name.upper()}=... (set; not shown)\n")
        elif value is None:
            print(f"# DEPOT_{name.upper()}=\n")
        else:
            comment = "" if name in _given(settings) else "# "
            print(f"{comment}DEPOT_{name.upper()}={_env_value(value)}\n")
    return 0


def _completion(args: argparse.Namespace) -> int:
    """A completion script for the shell, generated from the parser (shtab)."""
    import shtab

    print(shtab.complete(build_parser(), shell=args.shell))
    return 0


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url
    return make_url(url).render_as_string(hide_password=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="depot", description=__doc__)
    parser.add_argument("--log-level", default=os.environ.get("DEPOT_LOG_LEVEL", "info"),
                        choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="API + scheduler + one worker in one process (the embedded default)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--no-worker", action="store_true", help="serve the API only; workers run as `depot worker`")
    serve.add_argument("--drain-timeout", type=float, default=600, help=(
        "on stop, running playbooks are cancelled at once (their Active hosts become Inconclusive and are "
        "re-verified later); seconds to wait for them to wind down"))
    serve.set_defaults(func=_serve)

    worker = sub.add_parser("worker", help="a worker that claims and runs work (any number, on PostgreSQL)")
    worker.set_defaults(func=_worker)

    migrate = sub.add_parser("migrate", help="create or upgrade the database schema")
    migrate.add_argument("revision", nargs="?", default="head")
    migrate.set_defaults(func=_migrate)

    admin = sub.add_parser("admin", help="set-up and keys: the first admin, key rotation")
    actions = admin.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create the first admin user and print its API token once")
    create.add_argument("name")
    create.add_argument("--expires-in-days", type=int, default=90, choices=range(1, 366), metavar="DAYS")
    create.set_defaults(func=_admin)
    rotate = actions.add_parser("rotate-key", help=(
        "put a new key in front of <data_dir>/secret.key and encrypt every stored secret with it"))
    rotate.add_argument("--retire", action="store_true", help=(
        "then remove the old keys (content URLs and host check-in tokens they signed stop working)"))
    rotate.set_defaults(func=_rotate_key)
    reencrypt = actions.add_parser("reencrypt", help=(
        "encrypt every stored secret with the first key of DEPOT_SECRET_KEY (rotation with keys in the environment)"))
    reencrypt.set_defaults(func=_reencrypt)
    new_key = actions.add_parser("new-key", help="print a new key (for DEPOT_SECRET_KEY)")
    new_key.set_defaults(func=_new_key)

    settings = sub.add_parser("settings", help="print every setting, its value and what it means")
    formats = settings.add_mutually_exclusive_group()
    formats.add_argument("--format", choices=["text", "json", "env", "markdown"], default="text", help=(
        "json: {DEPOT_NAME: {value, description}}; env: a configuration file (DEPOT_CONFIG_FILE) of the settings "
        "given, the others commented out; markdown: the table of docs/operations.md"))
    formats.add_argument("--json", action="store_const", const="json", dest="format", help="same as --format json")
    settings.set_defaults(func=_settings)

    completion = sub.add_parser("completion", help=(
        "print a shell completion script: `source <(depot completion bash)`, or save it where your shell loads "
        "completions from"))
    completion.add_argument("shell", choices=["bash", "zsh"])
    completion.set_defaults(func=_completion)

    from depot import client
    client.add_commands(sub)
    return parser


def _log_format() -> str:
    """DEPOT_LOG_FORMAT; text while the settings cannot be read (the command that needs them says why)."""
    try:
        return get_settings().log_format
    except Exception:  # noqa: BLE001 - e.g. a validation error: reported by the command itself
        return "text"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from depot.observability.logs import configure_logging
    configure_logging(args.log_level, _log_format())
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API call is noise in a terminal
    from depot.client import ApiError

    try:
        return args.func(args) or 0
    except ApiError as e:
        print(f"depot: {e}", file=sys.stderr)
        return 2
    except httpx.TransportError as e:
        print(f"depot: cannot reach the controller at {getattr(args, 'url', '?')}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
