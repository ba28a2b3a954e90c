"""What users install: the controller's wheel (`pip install .`) and the collection's tarball
(`ansible-galaxy collection build`), each built from a copy of this checkout.

- The wheel must hold what the controller reads at run time besides its code: the Alembic
  migrations and the depot.software collection (the playbook workers run, the module specs the API
  checks options against), plus the `depot` console script; installed without the checkout, `depot`
  must work (--help, settings, migrate) and find the collection in the package.
- The tarball must hold the collection (plugins, roles, playbooks, meta) and none of the
  controller, tests, benchmarks or Python packaging files (galaxy.yml build_ignore).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
IGNORED = shutil.ignore_patterns(".git", ".venv", ".collections", "__pycache__", "*.pyc", ".pytest_cache",
                                 "*.egg-info", "build", "dist", "*.tar.gz")

pytestmark = pytest.mark.slow


def copy_of_checkout(tmp_path: Path) -> Path:
    copy = tmp_path / "depot"
    shutil.copytree(REPO, copy, ignore=IGNORED, symlinks=True)
    return copy


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    source = copy_of_checkout(tmp)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(tmp / "dist"),
                    str(source)], check=True, capture_output=True, text=True)
    [built] = (tmp / "dist").glob("depot_controller-*.whl")
    return built


def test_the_wheel_holds_the_migrations_the_collection_and_the_console_script(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    migrations = {p.relative_to(REPO / "controller").as_posix()
                  for p in (REPO / "controller/depot/database/migrations").rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts}
    assert {"depot/database/migrations/env.py", "depot/database/migrations/script.py.mako",
            "depot/database/migrations/versions/0001_initial_schema.py"} <= migrations
    assert migrations <= names, migrations - names
    collection = "depot/collections/ansible_collections/depot/software/"
    for path in ("galaxy.yml", "meta/runtime.yml", "playbooks/deploy.yml", "plugins/module_utils/_spec.py",
                 "plugins/action/package.py", "plugins/modules/package.py", "plugins/modules/package.ps1",
                 "roles/deploy/tasks/main.yml"):
        assert collection + path in names, path
    assert not [n for n in names if n.startswith(("controller/", "tests/", "bench/")) or "__pycache__" in n]
    [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "depot = depot.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode().splitlines()


def test_the_installed_wheel_works_without_the_checkout(wheel, tmp_path):
    """Installed in a new virtualenv (its dependencies taken from this one's site-packages, added by
    a .pth file: downloading them again would test PyPI, not the wheel), run from elsewhere."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "dependencies-of-the-test-venv.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    str(wheel)], check=True, capture_output=True, text=True)
    home = tmp_path / "home"
    env = {"PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '')}", "HOME": str(home),
           "XDG_DATA_HOME": str(home / "data"), "LANG": "C.UTF-8"}

    def depot(*argv):
        result = subprocess.run([str(venv / "bin" / "depot"), *argv], cwd=tmp_path, env=env, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "serve" in depot("--help") and "completion" in depot("--help")
    collections = site / "depot" / "collections"
    settings = depot("settings", "--json")
    assert f'"value": "{collections}"' in settings   # DEPOT_COLLECTIONS_PATH: the package's copy
    depot("migrate")
    assert (home / "data" / "depot" / "depot.db").is_file()
    where = subprocess.run([str(python), "-c", "import depot, depot.modulespec as m; "
                            "print(depot.__file__); print(m.SPEC_FILE); print(sorted(m.spec().POSIX_INSTALLER_TYPES))"],
                           cwd=tmp_path, env=env, check=True, capture_output=True, text=True).stdout.splitlines()
    assert where[0].startswith(str(site)) and where[1].startswith(str(collections))
    assert "deb" in where[2]


def test_the_collection_tarball_holds_the_collection_and_nothing_of_the_controller(tmp_path):
    source = copy_of_checkout(tmp_path)
    (source / "build" / "lib").mkdir(parents=True)   # what an in-tree `pip install .` leaves behind
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path / "out")],
                   cwd=source, check=True, capture_output=True, text=True)
    [tarball] = (tmp_path / "out").glob("depot-software-*.tar.gz")
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    top = {name.split("/", 1)[0] for name in names}
    assert {"plugins", "roles", "playbooks", "meta", "MANIFEST.json", "FILES.json"} <= top
    assert "plugins/modules/package.py" in names and "roles/deploy/tasks/main.yml" in names
    assert not top & {"controller", "tests", "bench", "docs", "scripts", "build", "setup.py", "MANIFEST.in",
                      "pyproject.toml", "requirements.txt"}, top
