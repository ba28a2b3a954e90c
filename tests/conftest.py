"""Fixtures shared by all tests: the lab of real Linux hosts (tests/lab, see tests/lab/README.md)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.lab import Lab


@pytest.fixture(scope="session")
def lab() -> Lab:
    """Eight lab hosts (h1..h8), up and answering ssh; removed at the end of the session.

    Skipped when this machine cannot run a lab (not root, sshd or ip missing) - except under CI
    (the CI environment variable is set), where that is a failure.
    """
    missing = Lab.missing_requirements()
    if missing:
        reason = f"the lab needs {', '.join(missing)} (run as root after scripts/setup.sh)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    # DEPOT_LAB_PREFIX/_WORKDIR/_SUBNET let two labs run side by side (say, pytest and molecule).
    lab = Lab.from_environment(hosts=8)
    try:
        lab.up()
        lab.wait_ssh(timeout=60)  # bounded: raises if a host does not answer ssh
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="session")
def lab_inventory(lab: Lab) -> Path:
    """Path of the lab's YAML Ansible inventory (group ``lab``)."""
    return lab.inventory
