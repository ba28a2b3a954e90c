"""How a run connects with a target's credential: the connection variables of each kind carry no
secret (only references to the run's secrets), a private key goes to ssh-agent; and the secrets
reach ansible-playbook through an in-memory file, not the disk or the environment."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet

from depot.credentials.models import Credential
from depot.database.core import make_engine, make_sessionmaker, transaction
from depot.deployments.models import Deployment, Step
from depot.execution import varsfile
from depot.execution.plan import PlanError, connection_vars, plan_step
from depot.execution.runner import SecretsFile
from depot.security import Keys
from depot.targets.models import Target

CANARY = "canary-Pa55w0rd-51c2e9"
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA-canary\n-----END OPENSSH PRIVATE KEY-----"


@pytest.fixture
def keys():
    return Keys(Fernet.generate_key())


def credential(keys, kind, secret=CANARY, username="deployer", **options):
    return Credential(id=7, name=f"c-{kind}", kind=kind, username=username, options=options,
                      secret=keys.encrypt(secret) if secret is not None else None)


def lookup(name):
    return "{{ depot_secrets['%s'] }}" % name


ENV = "DEPOT_SECRET_CONNECTION_7"


@pytest.mark.parametrize("kind, options, expected", [
    ("ssh_password", {}, dict(ansible_user="deployer", ansible_password=lookup(ENV))),
    ("ssh_password", {"port": 2222, "become": True},
     dict(ansible_user="deployer", ansible_port=2222, ansible_password=lookup(ENV), ansible_become_password=lookup(ENV))),
    ("ssh_password", {"become": False}, dict(ansible_user="deployer", ansible_password=lookup(ENV))),
    ("winrm", {"transport": "kerberos", "cert_validation": "ignore", "port": 5986},
     dict(ansible_user="deployer", ansible_connection="winrm", ansible_winrm_transport="kerberos",
          ansible_winrm_server_cert_validation="ignore", ansible_port=5986, ansible_password=lookup(ENV))),
    ("winrm", {}, dict(ansible_user="deployer", ansible_connection="winrm", ansible_winrm_transport="ntlm",
                       ansible_winrm_server_cert_validation="validate", ansible_password=lookup(ENV))),
    ("psrp", {"transport": "credssp", "cert_validation": "validate", "port": 5986},
     dict(ansible_user="deployer", ansible_connection="psrp", ansible_psrp_auth="credssp",
          ansible_psrp_cert_validation="validate", ansible_port=5986, ansible_password=lookup(ENV))),
])
def test_password_kinds_read_the_secret_from_the_environment(keys, kind, options, expected):
    variables, secrets, ssh_key = connection_vars(credential(keys, kind, **options), keys)
    assert variables == expected
    assert secrets == {ENV: CANARY} and ssh_key is None
    dumped = varsfile.dump(variables)
    assert CANARY not in dumped
    # the controller's expression is left for Ansible to evaluate; the user's strings are !unsafe
    loaded = yaml.load(dumped.replace("!unsafe", ""), Loader=yaml.SafeLoader)
    assert loaded["ansible_password"] == lookup(ENV)
    assert "ansible_user: !unsafe 'deployer'" in dumped and "!unsafe '{{" not in dumped


def test_ssh_key_goes_to_ssh_agent(keys):
    variables, secrets, ssh_key = connection_vars(credential(keys, "ssh_key", secret=KEY, username="root", port=2222), keys)
    assert variables == dict(ansible_user="root", ansible_port=2222)
    assert secrets == {}
    assert ssh_key == KEY + "\n"          # ssh-add wants the final newline
    assert "canary" not in varsfile.dump(variables)


def test_a_password_kind_without_a_secret_sets_no_password(keys):
    variables, secrets, _ = connection_vars(credential(keys, "winrm", secret=None), keys)
    assert "ansible_password" not in variables and secrets == {}


@pytest.mark.parametrize("kind", ["run_as", "share"])
def test_other_kinds_are_no_connection(keys, kind):
    with pytest.raises(PlanError, match="not a connection kind"):
        connection_vars(credential(keys, kind), keys)


def test_a_user_string_stays_unsafe(keys):
    variables, _, _ = connection_vars(credential(keys, "ssh_password", username="{{ lookup('pipe', 'id') }}"), keys)
    assert "!unsafe '{{ lookup(''pipe'', ''id'') }}'" in varsfile.dump(variables)


def test_plan_step_connects_with_the_targets_credential(database_url, keys, inventory):
    from depot.database.migrate import upgrade

    upgrade(database_url)
    engine = make_engine(database_url)
    factory = make_sessionmaker(engine)
    try:
        with transaction(factory) as s:
            cred = Credential(name="ssh", kind="ssh_password", username="deployer", options={"become": True},
                              secret=keys.encrypt(CANARY))
            other = Credential(name="key", kind="ssh_key", username="root", options={}, secret=keys.encrypt(KEY))
            s.add_all([cred, other])
            s.flush()
            web = Target(name="web", kind="group", group="web", inventory=str(inventory), credential_id=cred.id)
            db = Target(name="db", kind="group", group="db", inventory=str(inventory), credential_id=cred.id)
            plain = Target(name="plain", kind="group", group="db", inventory=str(inventory))
            s.add_all([web, db, plain])
            s.flush()
            d = Deployment(name="d")
            d.steps = [Step(position=1, name="one", action="script", script="true", target_ids=[web.id, db.id]),
                       Step(position=2, name="two", action="script", script="true", target_ids=[plain.id]),
                       Step(position=3, name="three", action="script", script="true", target_ids=[web.id, plain.id])]
            s.add(d)
            s.flush()
            one, two, three = d.steps
            plan = plan_step(s, one, keys, "http://controller")
            name = f"DEPOT_SECRET_CONNECTION_{cred.id}"
            assert plan.connection == dict(ansible_user="deployer", ansible_password=lookup(name),
                                           ansible_become_password=lookup(name))
            assert plan.secrets == {name: CANARY} and plan.ssh_key is None
            assert CANARY not in json.dumps([plan.entry, plan.connection])
            plan = plan_step(s, two, keys, "http://controller")
            assert (plan.connection, plan.secrets, plan.ssh_key) == ({}, {}, None)
            with pytest.raises(PlanError, match="different credentials"):
                plan_step(s, three, keys, "http://controller")
    finally:
        engine.dispose()


def test_ansible_playbook_reads_the_secrets_from_memory_and_never_templates_them(tmp_path):
    hostile = "{{ lookup('ansible.builtin.pipe', 'touch %s') }}" % (tmp_path / "pwned")
    playbook = tmp_path / "check.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"ansible.builtin.assert": {"that": ["depot_secrets['A'] | hash('sha256') == expected",
                                             "plain == depot_secrets['A']"]},
         "vars": {"plain": str(varsfile.secret_ref("A")), "expected": hashlib.sha256(CANARY.encode()).hexdigest()}},
        {"ansible.builtin.assert": {"that": ["depot_secrets['B'] is string", "'pipe' in depot_secrets['B']"]}},
    ]}]))
    secrets = SecretsFile({"A": CANARY, "B": hostile})
    try:
        assert secrets.path.startswith("/dev/shm/") and Path(secrets.path).stat().st_mode & 0o077 == 0
        run = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c", "local",
                              str(playbook), "-e", f"@{secrets.path}"], capture_output=True, text=True, cwd=tmp_path)
    finally:
        secrets.forget()
    assert not Path(secrets.dir).exists()
    assert run.returncode == 0, run.stdout + run.stderr
    assert not (tmp_path / "pwned").exists()
    assert CANARY not in run.stdout + run.stderr
    assert not any(CANARY in f.read_text(errors="replace") for f in tmp_path.rglob("*") if f.is_file())


def test_the_secrets_file_stays_until_the_playbook_has_read_its_vars():
    """Output before the playbook starts (ssh-add's "Identity added" when a key credential is
    loaded, early warnings) comes as ``verbose`` events before ansible-playbook reads extra vars:
    the file must outlive them, and go at the first callback event."""
    from depot.execution.runner import _forgetting

    seen = []
    secrets = SecretsFile({"A": CANARY})
    try:
        handle = _forgetting(secrets, lambda event: seen.append(event["event"]) or True)
        handle({"event": "verbose", "stdout": "Identity added: ssh_key_data (depot-lab)"})
        handle({"event": "verbose", "stdout": "[WARNING]: ..."})
        assert Path(secrets.path).exists()
        handle({"event": "playbook_on_start"})
        assert not Path(secrets.dir).exists()
        assert Path(secrets.dir).name.startswith(f"depot-secrets-{os.getpid()}-")
    finally:
        secrets.forget()
    assert seen == ["verbose", "verbose", "playbook_on_start"]


def test_every_user_string_reaches_ansible_as_the_same_string_and_untemplated(tmp_path):
    """ansible-core reads ``!unsafe '3'`` as the integer 3 (it resolves the text as if unquoted):
    an argument "3" made the package step refuse its own command line. Strings that read as
    another type go plainly quoted; the rest stay !unsafe; all arrive as str, none templated."""
    values = ["/bin/echo", "3", "007", "true", "no", "1.5", "1e3", "2026-01-01", "null", "~", "", "0x1f",
              "{{ lookup('ansible.builtin.pipe', 'touch %s') }}" % (tmp_path / "pwned"), "{% raw %}x"]
    vars_file = tmp_path / "vars.yml"
    vars_file.write_text(varsfile.dump({"values": values}))
    expected = tmp_path / "expected.json"
    expected.write_text(json.dumps(values))
    playbook = tmp_path / "check.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"ansible.builtin.assert": {"that": [
            "values | map('type_debug') | unique | list == ['str']",
            "values == (lookup('ansible.builtin.file', '%s') | from_json)" % expected]}},
    ]}]))
    run = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c", "local",
                          str(playbook), "-e", f"@{vars_file}"], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert not (tmp_path / "pwned").exists()
