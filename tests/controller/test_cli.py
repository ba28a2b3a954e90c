"""The controller side of `depot`: `settings` in its formats (never showing a secret) and the shell
completion scripts generated from the parser."""

import json
import re
import subprocess
from ipaddress import ip_network

import pytest

from depot import cli
from depot.config import Settings

CANARIES = {"DEPOT_SMTP_PASSWORD": "cAnArY-smtp", "DEPOT_METRICS_TOKEN": "cAnArY-metrics",
            "DEPOT_SECRET_KEY": "cAnArY-key"}


@pytest.fixture
def depot(monkeypatch, capsys, tmp_path):
    """Run `depot ARGS...` with only the DEPOT_* variables a test sets; returns (status, stdout, stderr)."""
    for name in Settings.model_fields:
        monkeypatch.delenv(f"DEPOT_{name.upper()}", raising=False)
    monkeypatch.setenv("DEPOT_DATA_DIR", str(tmp_path / "data"))

    def run(*argv):
        cli.get_settings.cache_clear()
        try:
            status = cli.main(list(argv))
        finally:
            cli.get_settings.cache_clear()
        out, err = capsys.readouterr()
        return status, out, err

    return run


def subcommands(parser) -> set[str]:
    import argparse

    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(action.choices)


def test_bash_completion_is_valid_bash_and_completes_the_subcommands(depot, tmp_path):
    status, script, _ = depot("completion", "bash")
    assert status == 0
    path = tmp_path / "depot.bash"
    path.write_text(script)
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True).returncode == 0
    names = subcommands(cli.build_parser())
    assert {"serve", "worker", "migrate", "settings", "completion", "deploy", "status", "checkin"} <= names
    for name in names:
        assert re.search(rf"\b{re.escape(name)}\b", script), name

    def complete(*words):   # what bash offers after `depot WORDS...`, by the script's own function
        line = " ".join(("depot",) + words)
        program = (f"source {path}; COMP_WORDS=(depot {' '.join(repr(w) for w in words)}); "
                   f"COMP_CWORD={len(words)}; COMP_LINE={line!r}; COMP_POINT=${{#COMP_LINE}}; "
                   "_shtab_depot; printf '%s\\n' \"${COMPREPLY[@]}\"")
        return set(subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True).stdout.split())

    assert complete("sta") == {"status", "start"}
    assert complete("settings", "--format", "") == {"text", "json", "env", "markdown"}
    assert complete("admin", "") == {"create", "rotate-key", "reencrypt", "new-key"}


def test_zsh_completion_names_the_subcommands(depot):
    status, script, _ = depot("completion", "zsh")
    assert status == 0 and script.startswith("#compdef depot")
    for name in subcommands(cli.build_parser()):
        assert name in script


def test_completion_needs_a_known_shell(depot):
    with pytest.raises(SystemExit):
        depot("completion", "fish")


@pytest.fixture
def configured(monkeypatch, tmp_path):
    """Settings given in the environment: some plain, a list, a path with a space, secrets."""
    given = {"DEPOT_WORKER_FORKS": "7", "DEPOT_LAN_NETWORKS": '["10.1.0.0/16"]', "DEPOT_LOG_FORMAT": "json",
             "DEPOT_PUBLIC_URL": "https://depot.example:8443", "DEPOT_SMTP_STARTTLS": "true",
             "DEPOT_DATA_DIR": str(tmp_path / "data dir"), **CANARIES,
             "DEPOT_DATABASE_URL": "postgresql+psycopg://depot:cAnArY-db@db.example/depot"}
    for name, value in given.items():
        monkeypatch.setenv(name, value)
    return given


def test_settings_json_shows_every_setting_and_no_secret(depot, configured):
    status, out, _ = depot("settings", "--json")
    values = json.loads(out)
    assert status == 0 and set(values) == {f"DEPOT_{name.upper()}" for name in Settings.model_fields}
    assert values["DEPOT_WORKER_FORKS"] == {"value": 7, "description": Settings.model_fields["worker_forks"].description}
    assert values["DEPOT_LAN_NETWORKS"]["value"] == ["10.1.0.0/16"]
    assert [values[name]["value"] for name in CANARIES] == ["(set)"] * 3
    assert values["DEPOT_DATABASE_URL"]["value"] == "postgresql+psycopg://depot:***@db.example/depot"
    assert "cAnArY" not in out
    assert depot("settings", "--format", "json")[1] == out


def test_settings_text_shows_no_secret(depot, configured):
    status, out, _ = depot("settings")
    assert status == 0 and "DEPOT_WORKER_FORKS = 7" in out and "DEPOT_METRICS_TOKEN = (set)" in out
    assert "cAnArY" not in out


def test_settings_env_is_a_configuration_file_that_reads_back(depot, configured, monkeypatch, tmp_path):
    status, out, _ = depot("settings", "--format", "env")
    assert status == 0 and "cAnArY" not in out
    lines = [line for line in out.splitlines() if line and not line.startswith("#")]
    assert sorted(line.split("=", 1)[0] for line in lines) == sorted(
        ["DEPOT_WORKER_FORKS", "DEPOT_LAN_NETWORKS", "DEPOT_LOG_FORMAT", "DEPOT_PUBLIC_URL", "DEPOT_SMTP_STARTTLS",
         "DEPOT_DATA_DIR"])   # the secrets and the URL with a password stay commented out
    assert "# DEPOT_SMTP_PASSWORD=... (set; not shown)" in out
    for name in configured:
        monkeypatch.delenv(name)
    path = tmp_path / "depot.env"
    path.write_text(out)
    settings = Settings(_env_file=path)
    assert (settings.worker_forks, settings.lan_networks, settings.log_format) == (7, [ip_network("10.1.0.0/16")], "json")
    assert (settings.public_url, settings.smtp_starttls) == ("https://depot.example:8443", True)
    assert settings.data_dir == tmp_path / "data dir"
    assert (settings.smtp_password, settings.metrics_token, settings.secret_key) == (None, None, None)


def test_settings_env_of_defaults_is_all_comments(depot):
    status, out, _ = depot("settings", "--format", "env")
    assert status == 0
    assert [line for line in out.splitlines() if line and not line.startswith("#")] == ["DEPOT_DATA_DIR=" + str(
        Settings().data_dir)]   # the one the fixture sets

