"""Settings and their documentation: docs/operations.md lists every setting (the table is the one
`depot settings --format markdown` prints) and its sample configuration file is valid."""

import re
from ipaddress import ip_network
from pathlib import Path

from depot.cli import settings_markdown
from depot.config import Settings

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def test_every_setting_is_documented_in_operations_md():
    doc = OPERATIONS.read_text()
    missing = [f"DEPOT_{name.upper()}" for name in Settings.model_fields if f"`DEPOT_{name.upper()}`" not in doc]
    assert not missing, f"docs/operations.md does not document {missing}: run `depot settings --format markdown`"
    table = doc.split("<!-- settings table: start -->\n", 1)[1].split("<!-- settings table: end -->", 1)[0]
    assert table.strip() == settings_markdown(), (
        "the settings table of docs/operations.md is out of date: replace it with `depot settings --format markdown`")


def test_the_sample_configuration_file_is_read_as_documented(tmp_path, monkeypatch):
    for name in Settings.model_fields:
        monkeypatch.delenv(f"DEPOT_{name.upper()}", raising=False)
    doc = OPERATIONS.read_text()
    sample = re.search(r"<!-- sample configuration[^>]*-->\n```sh\n(.*?)```", doc, re.S).group(1)
    path = tmp_path / "depot.env"
    path.write_text(sample)
    settings = Settings(_env_file=path)
    assert settings.data_dir == Path("/var/lib/depot")
    assert settings.database_url == "postgresql+psycopg://depot:CHANGE-ME@127.0.0.1:5432/depot"
    assert settings.lan_networks == [ip_network("10.0.0.0/8"), ip_network("192.168.0.0/16")]
    assert (settings.smtp_port, settings.smtp_starttls, settings.log_format) == (587, True, "json")
    assert settings.metrics_token.get_secret_value() == "CHANGE-ME-TOO"
    assert settings.secret_key is None
