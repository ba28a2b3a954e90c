"""The one build step pyproject.toml cannot state: the wheel carries a copy of the depot.software
collection (this repository's root: galaxy.yml, meta, plugins, roles, playbooks) as
depot/collections/ansible_collections/depot/software, so an installed `depot` runs its playbooks
and checks options against its module specs without a checkout (depot.config: COLLECTION_ROOT and
the default of DEPOT_COLLECTIONS_PATH). Everything else is in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
COLLECTION = ("galaxy.yml", "meta", "plugins", "roles", "playbooks")
TARGET = Path("depot", "collections", "ansible_collections", "depot", "software")


class BuildPyWithCollection(build_py):
    def run(self):
        super().run()
        if self.editable_mode:   # an editable install runs from the checkout, collection included
            return
        target = Path(self.build_lib) / TARGET
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for name in COLLECTION:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            elif source.is_file():
                shutil.copy2(source, target / name)
            else:
                raise FileNotFoundError(f"{source}: part of the depot.software collection the wheel carries")


setup(cmdclass={"build_py": BuildPyWithCollection})
