import subprocess

import pytest

from ansible_collections.depot.software.plugins.module_utils._detection import (
    DetectionError, Detector, default_rules, version_ge,
)


class FakeModule(object):
    """run_command as AnsibleModule has it: argv list, no shell."""

    def run_command(self, argv):
        done = subprocess.run(argv, capture_output=True, text=True)
        return done.returncode, done.stdout, done.stderr


@pytest.fixture
def detector():
    return Detector(FakeModule())


@pytest.mark.parametrize("actual, wanted, expected", [
    ("1.10", "1.9", True), ("1.9", "1.10", False), ("2.0", "2.0", True), ("2.0.1", "2.0", True),
    ("2.0", "2.0.1", False), ("1.2.3a", "1.2.3", True), ("10", "9.99", True), ("1.0", "1.0a", False),
])
def test_version_ge(actual, wanted, expected):
    assert version_ge(actual, wanted) is expected


def test_file_rule_and_version(detector, tmp_path):
    f = tmp_path / "agent.version"
    assert detector.rule(dict(type="file", path=str(f))) is False
    f.write_text("2.10.1\nbuild 7\n")
    assert detector.rule(dict(type="file", path=str(f))) is True
    assert detector.rule(dict(type="file", path=str(f), version="2.9")) is True
    assert detector.rule(dict(type="file", path=str(f), version="2.11")) is False


def test_relative_path_cannot_be_evaluated(detector):
    with pytest.raises(DetectionError, match="absolute"):
        detector.rule(dict(type="file", path="etc/passwd"))


def test_script_truth_table(detector):
    assert detector.rule(dict(type="script", script="echo installed")) is True
    assert detector.rule(dict(type="script", script="true")) is False
    with pytest.raises(DetectionError, match="exited 3"):
        detector.rule(dict(type="script", script="exit 3"))


def test_match_all_and_any(detector, tmp_path):
    present = dict(type="file", path=str(tmp_path))
    absent = dict(type="file", path=str(tmp_path / "nope"))
    (tmp_path / "x").write_text("1")
    present = dict(type="file", path=str(tmp_path / "x"))
    assert detector.evaluate(dict(match="all", rules=[present, absent]))[0] is False
    assert detector.evaluate(dict(match="any", rules=[present, absent]))[0] is True
    assert detector.evaluate(dict(rules=[present]))[0] is True


def test_errors_name_the_rule(detector):
    with pytest.raises(DetectionError, match=r"detection.rules\[1\] \(registry\): rule type registry is only available on Windows"):
        detector.evaluate(dict(rules=[dict(type="file", path="/"), dict(type="registry", key="HKLM:\\X")]))
    with pytest.raises(DetectionError, match=r"detection.rules\[0\] \(bogus\): unknown rule type"):
        detector.evaluate(dict(rules=[dict(type="bogus")]))


def test_dpkg_rule_against_this_machine(detector):
    version = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "dpkg"], capture_output=True, text=True).stdout
    assert detector.rule(dict(type="dpkg", name="dpkg")) is True
    assert detector.rule(dict(type="dpkg", name="dpkg", version=version)) is True
    assert detector.rule(dict(type="dpkg", name="dpkg", version="999:1")) is False
    assert detector.rule(dict(type="dpkg", name="depot-no-such-package")) is False


def test_default_rules():
    assert default_rules("deb", "acme", "1.0") == dict(match="all", rules=[dict(type="dpkg", name="acme", version="1.0")])
    assert default_rules("rpm", "acme") == dict(match="all", rules=[dict(type="rpm", name="acme")])
    assert default_rules("script", "acme") is None
