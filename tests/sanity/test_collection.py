"""The collection as Galaxy users get it: build the tarball, render its docs, run ansible-test sanity on it.

Everything here runs on the *built* artifact (``ansible-galaxy collection build``, extracted into
``<tmp>/ansible_collections/depot/software``), so a file missing from the tarball or a file that
build_ignore should have dropped shows up here and not on a user's machine.

ansible-test and pip
--------------------
ansible-test creates each sanity venv with ``python -m venv --without-pip`` and then bootstraps pip
with ``get-pip-<version>.py``, which it downloads from ci-files.testing.ansible.com into
``~/.ansible/test/cache/get_pip_<version>.py``. When that host is unreachable (here the network
reaches only PyPI, Debian and npm) the download fails -- the reason is printed only with ``-v`` --
and ansible-test then reports the misleading ``Python 3.11 at ".../bin/python" does not have pip
available``. The pip config, PIP_* variables and virtualenv have nothing to do with it.
ansible-test's own message for this case says to save the script to that cache path by hand, so
:func:`seed_get_pip` writes a stand-in there: a few lines that run ``pip install`` from the pip
wheel of the same version, fetched from PyPI with the project venv's pip. An existing script
(the real one, or ours from an earlier run) is left alone.

Caching: ansible-test keeps its sanity venvs in ``~/.ansible/test/venv`` keyed by their
requirements, and the bootstrap script and pip wheel stay in ``~/.ansible/test/cache``; the first run
on a fresh machine builds them (about a minute), later runs reuse them.
"""
from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import pytest
import yaml
from ansible.release import __version__ as ansible_core_version

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent  # the project venv, which has ansible-core and ansible-test
GALAXY = yaml.safe_load((REPO / 'galaxy.yml').read_text())
FQCN = f"{GALAXY['namespace']}.{GALAXY['name']}"
PYTHON = f'{sys.version_info[0]}.{sys.version_info[1]}'
ANSIBLE_MINOR = '.'.join(ansible_core_version.split('.')[:2])  # ansible-test reads tests/sanity/ignore-<this>.txt
MODULES = sorted(p.stem for p in (REPO / 'plugins' / 'modules').glob('*.py') if p.stem != '__init__')
ROLES = sorted(p.name for p in (REPO / 'roles').iterdir() if (p / 'meta' / 'argument_specs.yml').is_file())

# Top-level entries that must never be in the tarball (besides everything galaxy.yml's build_ignore lists).
NOT_SHIPPED = {'controller', 'tests', 'bench', 'docs', 'scripts', '.venv', '.collections', '.ci', '.git'}

# Without PowerShell (pwsh is not packaged for Debian; Microsoft's apt repository is out of reach
# here) two things cannot run, and are left out on purpose rather than by ansible-test's warning:
# - the pslint test (PSScriptAnalyzer on .ps1/.psm1), skipped as a whole;
# - validate-modules on each .ps1 module: it reads the module's argument spec by running pwsh, and
#   without it crashes (FileNotFoundError) for all modules at once. The .ps1 files get a generated
#   "validate-modules!skip" ignore entry; their DOCUMENTATION, in the .py file of the same name, is
#   still validated. The PowerShell parse tests elsewhere in the suite (tree-sitter) cover syntax.
HAVE_PWSH = shutil.which('pwsh') is not None
SANITY_SKIP: dict[str, str] = {} if HAVE_PWSH else {
    'pslint': 'needs pwsh (PowerShell), not installable here',
}
# Tools ansible-test looks for and skips a test without; any other missing one fails the test
# below, so that a sanity test never stops running unnoticed (shellcheck, for instance, would be
# wanted as soon as a .sh file ships: it is a Debian package, add it to scripts/setup.sh then).
ALLOWED_MISSING_PROGRAMS = set() if HAVE_PWSH else {'pwsh'}

SANITY_TIMEOUT = 900  # seconds; measured on 2 cores: about 20 s warm, 65-80 s cold (creating ~9 venvs from PyPI)

# Output of a failing command shown in the assertion message.
TAIL_LINES = 80


def _env(**extra: str) -> dict[str, str]:
    """Environment for the ansible tools: the project venv first on PATH, none of the checkout's config."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('ANSIBLE_', 'PYTEST_')) and k not in ('VIRTUAL_ENV', 'PYTHONPATH')}
    env['PATH'] = f"{BIN}{os.pathsep}{env.get('PATH', os.defpath)}"
    env['ANSIBLE_NOCOLOR'] = '1'
    env.update(extra)
    return env


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    out = text.rstrip().splitlines()
    cut = '' if len(out) <= lines else f'[... {len(out) - lines} lines above left out ...]\n'
    return cut + '\n'.join(out[-lines:])


def _run(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
         timeout: float = 300, merge: bool = False) -> subprocess.CompletedProcess[str]:
    """Run cmd capturing its output; merge=True puts stderr into stdout, in order."""
    return subprocess.run(cmd, cwd=cwd, env=env or _env(), timeout=timeout, text=True, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT if merge else subprocess.PIPE)


def _check(proc: subprocess.CompletedProcess[str], what: str) -> None:
    if proc.returncode != 0:
        pytest.fail(f'{what} failed (exit {proc.returncode}): {" ".join(map(str, proc.args))}\n'
                    f'--- stdout (tail) ---\n{_tail(proc.stdout)}\n--- stderr (tail) ---\n{_tail(proc.stderr)}',
                    pytrace=False)


# ---------------------------------------------------------------------------------------------------
# Build


@pytest.fixture(scope='module')
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp('dist')
    proc = _run([str(BIN / 'ansible-galaxy'), 'collection', 'build', '--output-path', str(out), str(REPO)],
                cwd=out)
    _check(proc, 'ansible-galaxy collection build')
    built = list(out.glob('*.tar.gz'))
    assert len(built) == 1, f'expected one tarball in {out}, found {built}\n{proc.stdout}'
    assert built[0].name == f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"
    return built[0]


@pytest.fixture(scope='module')
def collections_root(tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """<root>/ansible_collections/depot/software holds the extracted tarball; returns <root>."""
    root = tmp_path_factory.mktemp('extracted')
    dest = root / 'ansible_collections' / GALAXY['namespace'] / GALAXY['name']
    dest.mkdir(parents=True)
    with tarfile.open(tarball) as tar:
        if hasattr(tarfile, 'data_filter'):
            tar.extractall(dest, filter='data')
        else:  # Debian 12's Python 3.11.2 predates extraction filters (3.11.4)
            bad = [m.name for m in tar.getmembers()
                   if m.name.startswith('/') or '..' in m.name.split('/') or not (m.isfile() or m.isdir())]
            assert not bad, f'unsafe members in {tarball.name}: {bad}'
            tar.extractall(dest)  # noqa: S202 -- checked just above
    return root


def test_build_leaves_out_what_is_not_shipped(tarball: Path) -> None:
    with tarfile.open(tarball) as tar:
        names = [m.name.removeprefix('./') for m in tar.getmembers()]
    assert 'MANIFEST.json' in names and 'FILES.json' in names
    for module in MODULES:
        assert f'plugins/modules/{module}.py' in names
    for role in ROLES:
        assert f'roles/{role}/meta/argument_specs.yml' in names

    shipped_top = {n.split('/', 1)[0] for n in names}
    assert not shipped_top & NOT_SHIPPED, f'tarball holds {sorted(shipped_top & NOT_SHIPPED)}'

    ignored = []
    for name in names:
        parts = name.split('/')
        prefixes = ['/'.join(parts[:i]) for i in range(1, len(parts) + 1)]
        ignored += [name for p in GALAXY.get('build_ignore', []) if any(fnmatch.fnmatch(x, p) for x in prefixes)]
    ignored += [n for n in names if '__pycache__' in n.split('/') or n.endswith('.pyc')]
    assert not ignored, f'tarball holds files build_ignore drops: {sorted(set(ignored))}'

    with tarfile.open(tarball) as tar:
        manifest = json.load(tar.extractfile('MANIFEST.json'))  # type: ignore[arg-type]
    info = manifest['collection_info']
    assert (info['namespace'], info['name'], info['version']) == (
        GALAXY['namespace'], GALAXY['name'], GALAXY['version'])


# ---------------------------------------------------------------------------------------------------
# ansible-doc


def _ansible_doc(collections_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = _env(ANSIBLE_COLLECTIONS_PATH=str(collections_root), ANSIBLE_DEPRECATION_WARNINGS='1')
    return _run([str(BIN / 'ansible-doc'), *args], cwd=collections_root, env=env, timeout=120)


def _no_warnings(proc: subprocess.CompletedProcess[str], what: str) -> None:
    bad = [line for line in proc.stderr.splitlines() if 'WARNING' in line or 'ERROR' in line]
    assert not bad, f'{what} warned:\n{_tail(proc.stderr)}'


@pytest.mark.parametrize('module', MODULES)
def test_ansible_doc_renders_module(collections_root: Path, module: str) -> None:
    name = f'{FQCN}.{module}'
    proc = _ansible_doc(collections_root, '-j', name)
    _check(proc, f'ansible-doc -j {name}')
    _no_warnings(proc, f'ansible-doc -j {name}')
    docs = json.loads(proc.stdout)
    assert name in docs, f'ansible-doc found no documentation for {name}:\n{_tail(proc.stdout + proc.stderr)}'
    doc = docs[name]['doc']
    assert doc.get('short_description'), f'{name}: no short_description'
    assert doc.get('description'), f'{name}: no description'
    assert docs[name].get('examples'), f'{name}: no EXAMPLES'
    for option, spec in (doc.get('options') or {}).items():
        assert spec.get('description'), f'{name}: option {option} has no description'

    # The text rendering goes through the markup parser (C(), O(), V() ...) that -j does not.
    proc = _ansible_doc(collections_root, name)
    _check(proc, f'ansible-doc {name}')
    _no_warnings(proc, f'ansible-doc {name}')
    assert name.upper() in proc.stdout or name in proc.stdout


@pytest.mark.parametrize('role', ROLES)
def test_ansible_doc_renders_role_argument_spec(collections_root: Path, role: str) -> None:
    name = f'{FQCN}.{role}'
    proc = _ansible_doc(collections_root, '-t', 'role', name)
    _check(proc, f'ansible-doc -t role {name}')
    _no_warnings(proc, f'ansible-doc -t role {name}')
    assert re.search(r'ENTRY POINT: \W*main\b', proc.stdout), _tail(proc.stdout)

    proc = _ansible_doc(collections_root, '-t', 'role', '-j', name)
    _check(proc, f'ansible-doc -t role -j {name}')
    entry = json.loads(proc.stdout)[name]['entry_points']['main']
    assert entry.get('short_description'), f'{name}: entry point main has no short_description'
    assert entry.get('options'), f'{name}: entry point main has no options'


# ---------------------------------------------------------------------------------------------------
# ansible-test sanity


def _bootstrap_pip_version() -> str:
    """The pip version ansible-test bootstraps into its venvs (24.2 for ansible-core 2.19)."""
    from ansible_test._internal.host_configs import NativePythonConfig
    from ansible_test._internal.python_requirements import get_venv_packages

    return get_venv_packages(NativePythonConfig(version=PYTHON, path=sys.executable))['pip']


STAND_IN_MARK = "written by the depot collection's tests/sanity/test_collection.py"
GET_PIP_STAND_IN = '''\
"""Stand-in for get-pip.py {version}, {mark}.

ansible-test downloads get-pip.py from ci-files.testing.ansible.com to bootstrap pip into the venvs
it makes; that host is not reachable from here. This does what get-pip.py does -- pip install
--upgrade --force-reinstall [pip setuptools wheel] <arguments> -- with pip {version} from its PyPI
wheel, unpacked in {pip_dir}.
"""
import sys

PIP_DIR = {pip_dir!r}
WHEEL_DIR = {wheel_dir!r}


def main():
    args = sys.argv[1:]
    packages = ['pip']
    if sys.version_info < (3, 12):  # get-pip.py adds these only for Python 3.11 and older
        packages += [p for p in ('setuptools', 'wheel') if '--no-' + p not in args]
    args = [a for a in args if a not in ('--no-setuptools', '--no-wheel')]
    sys.path.insert(0, PIP_DIR)
    from pip._internal.cli.main import main as pip_main
    return pip_main(['install', '--upgrade', '--force-reinstall', '--find-links', WHEEL_DIR] + args + packages)


if __name__ == '__main__':
    sys.exit(main())
'''


def seed_get_pip() -> Path:
    """Make sure ansible-test finds its pip bootstrap script in its cache (see the module docstring)."""
    version = _bootstrap_pip_version()
    cache = Path('~/.ansible/test/cache').expanduser()
    script = cache / f"get_pip_{version.replace('.', '_')}.py"  # the path ansible-test looks at
    wheel_dir = cache / f'depot-pip-{version}-wheel'
    pip_dir = cache / f'depot-pip-{version}'
    if script.is_file() and script.stat().st_size:
        ours = STAND_IN_MARK in script.read_text(errors='replace')
        if not ours or (pip_dir / 'pip' / '__init__.py').is_file():
            return script  # the real get-pip.py, or our stand-in with its pip still in place
    cache.mkdir(parents=True, exist_ok=True)

    wheels = sorted(wheel_dir.glob(f'pip-{version}-*.whl'))
    if not wheels:
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            proc = _run([sys.executable, '-m', 'pip', 'download', '--disable-pip-version-check', '--no-deps',
                         '--only-binary=:all:', '--dest', tmp, f'pip=={version}'], timeout=300)
            _check(proc, f'downloading the pip {version} wheel from PyPI')
            wheel_dir.mkdir(exist_ok=True)
            for whl in Path(tmp).glob('pip-*.whl'):
                os.replace(whl, wheel_dir / whl.name)
        wheels = sorted(wheel_dir.glob(f'pip-{version}-*.whl'))
        assert wheels, f'pip download left no pip-{version} wheel'
    if not (pip_dir / 'pip' / '__init__.py').is_file():
        shutil.rmtree(pip_dir, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(dir=cache))
        with zipfile.ZipFile(wheels[0]) as whl:  # only the package: no dist-info, so no "installed" pip here
            whl.extractall(tmp, [n for n in whl.namelist() if n.startswith('pip/')])
        os.replace(tmp, pip_dir)

    text = GET_PIP_STAND_IN.format(version=version, mark=STAND_IN_MARK, pip_dir=str(pip_dir),
                                   wheel_dir=str(wheel_dir))
    partial = script.with_suffix('.py.depot-tmp')
    partial.write_text(text)
    os.replace(partial, script)
    return script


@pytest.fixture(scope='module')
def sanity_tree(collections_root: Path) -> Path:
    tree = collections_root / 'ansible_collections' / GALAXY['namespace'] / GALAXY['name']
    # build_ignore drops tests/, so the ignore file comes from this directory.
    ignore = HERE / f'ignore-{ANSIBLE_MINOR}.txt'
    lines = ignore.read_text().splitlines() if ignore.is_file() else []
    if not HAVE_PWSH:
        lines += [f'{p.relative_to(tree).as_posix()} validate-modules!skip  # no pwsh to read the argument spec'
                  for p in sorted((tree / 'plugins' / 'modules').glob('*.ps1'))]
    if lines:
        (tree / 'tests' / 'sanity').mkdir(parents=True, exist_ok=True)
        (tree / 'tests' / 'sanity' / ignore.name).write_text('\n'.join(lines) + '\n')
    return tree


def test_ignore_entries_say_why() -> None:
    files = sorted(HERE.glob('ignore-*.txt'))
    assert [f.name for f in files] in ([], [f'ignore-{ANSIBLE_MINOR}.txt']), (
        f'ansible-core is {ANSIBLE_MINOR}: rename or merge the ignore files {[f.name for f in files]}')
    for ignore in files:
        for number, line in enumerate(ignore.read_text().splitlines(), 1):
            assert line.strip() and not line.startswith('#'), (
                f'{ignore.name}:{number}: ansible-test allows no blank or comment-only lines')
            assert re.search(r'\S #\s*\S', line), f'{ignore.name}:{number}: entry without a "# why" comment: {line}'


def test_ansible_test_sanity(sanity_tree: Path, tmp_path: Path) -> None:
    seed_get_pip()
    cmd = [str(BIN / 'ansible-test'), 'sanity', '--local', '--python', PYTHON, '--color', 'no', '-v']
    for name in sorted(SANITY_SKIP):
        cmd += ['--skip-test', name]
    log = tmp_path / 'ansible-test-sanity.log'
    started = time.monotonic()
    try:
        proc = _run(cmd, cwd=sanity_tree, timeout=SANITY_TIMEOUT, merge=True)
    except subprocess.TimeoutExpired as ex:
        out = ex.stdout.decode(errors='replace') if isinstance(ex.stdout, bytes) else (ex.stdout or '')
        log.write_text(out)
        pytest.fail(f'ansible-test sanity ran over {SANITY_TIMEOUT}s (full output: {log})\n{_tail(out)}')
    took = time.monotonic() - started
    log.write_text(proc.stdout)
    print(f'ansible-test sanity took {took:.0f}s (full output: {log})')
    output = proc.stdout
    errors = [line for line in output.splitlines() if line.startswith(('ERROR:', 'FATAL:', 'Traceback'))]
    if proc.returncode != 0:
        pytest.fail(
            f'ansible-test sanity failed (exit {proc.returncode}, {took:.0f}s); ran in {sanity_tree}: {" ".join(cmd)}\n'
            f'full output: {log}\n'
            f'--- ERROR/FATAL lines ---\n{_tail(chr(10).join(errors), 60)}\n'
            f'--- output (tail) ---\n{_tail(output, 30)}', pytrace=False)
    assert 'Running sanity test' in output, _tail(output)
    missing = set(re.findall(r'WARNING: Required program "([^"]+)" not found', output)) - ALLOWED_MISSING_PROGRAMS
    assert not missing, (f'ansible-test skipped tests for want of {sorted(missing)}; install them '
                         f'(scripts/setup.sh) or skip the test in SANITY_SKIP with the reason\n{_tail(output, 40)}')
