"""Targets, and their resolution into host names through `ansible-inventory`, so any inventory
source Ansible understands (files, directories, inventory plugin configs) works as it would for a
playbook run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from depot.credentials.models import Credential
from depot.credentials.schemas import CONNECTION_KINDS
from depot.deployments.models import Deployment, Step
from depot.errors import Conflict, Invalid, invalid, not_found
from depot.scheduling import service as windows_service
from depot.orchestration.states import DeploymentState
from depot.schemas import validate_merged
from depot.targets.models import Target
from depot.targets.schemas import TargetCreate, TargetSpec, TargetUpdate

INVENTORY_TIMEOUT = 300
ANSIBLE_INVENTORY = Path(sys.executable).parent / "ansible-inventory"
_MISSING = object()


class InventoryError(ValueError):
    """An inventory source that cannot be read, or a target that does not fit its inventory."""


# --- resolution ----------------------------------------------------------------------------------

def _reasons(stderr: str) -> str:
    """The lines of ansible-inventory's stderr that say why (each plugin's failure), not the noise."""
    lines = [line for line in stderr.splitlines()
             if line.startswith(("[ERROR]", "[WARNING]: Failed to parse", "[WARNING]: Unable to parse"))]
    return " | ".join(lines or stderr.strip().splitlines()[-3:])[:2000]


# Static inventories (files and directories of them) read once per version: the key changes with
# every file's mtime, size and inode. ansible-inventory costs a Python start-up (1-2 s on a busy
# machine), and every start, readiness check and host preview resolves targets.
_STATIC: dict[str, tuple[tuple, dict]] = {}
_STATIC_LOCK = threading.Lock()
_PLUGIN_CONFIG = re.compile(rb"^plugin\s*:", re.MULTILINE)


def _static_version(source: str) -> tuple | None:
    """What changes whenever a static inventory source changes; None for a source that may give
    other hosts without changing on disk (an executable script, an inventory plugin's config)."""
    path = Path(source)
    try:
        files = [path] if path.is_file() else sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else []
        version = []
        for f in files:
            st = f.stat()
            if st.st_mode & 0o111 or (f.suffix in (".yml", ".yaml") and _PLUGIN_CONFIG.search(f.read_bytes())):
                return None
            version.append((str(f), st.st_mtime_ns, st.st_size, st.st_ino))
    except OSError:
        return None
    return tuple(version) or None


def load_inventory(source: str, cache: dict[str, dict] | None = None) -> dict:
    """``ansible-inventory -i SOURCE --list`` as a dict (groups, and host vars under _meta); do not
    modify it. With ``cache``, each source is read once per cache (use one cache for one call); a
    static source is read once per version of its files in any case."""
    if cache is not None and source in cache:
        return cache[source]
    version = _static_version(source)
    with _STATIC_LOCK:
        known = _STATIC.get(source)
    if version is not None and known is not None and known[0] == version:
        if cache is not None:
            cache[source] = known[1]
        return known[1]
    env = {k: v for k, v in os.environ.items() if k not in ("ANSIBLE_CONFIG", "ANSIBLE_INVENTORY_ENABLED")}
    env["ANSIBLE_INVENTORY_UNPARSED_FAILED"] = "true"   # an unparsable source is an error, not an empty inventory
    try:
        proc = subprocess.run([str(ANSIBLE_INVENTORY), "-i", source, "--list"], capture_output=True, text=True,
                              env=env, stdin=subprocess.DEVNULL, timeout=INVENTORY_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise InventoryError(f"ansible-inventory took longer than {INVENTORY_TIMEOUT}s for {source}") from None
    if proc.returncode != 0:
        raise InventoryError(f"ansible-inventory could not read {source}: {_reasons(proc.stderr)}")
    try:
        inventory = json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        raise InventoryError(f"ansible-inventory printed no JSON for {source}: {e}") from None
    if cache is not None:
        cache[source] = inventory
    if version is not None and version == _static_version(source):   # unchanged while it was read
        with _STATIC_LOCK:
            _STATIC[source] = (version, inventory)
    return inventory


def _known_groups(inventory: dict) -> set[str]:
    groups = {name for name in inventory if name != "_meta"}
    for entry in inventory.values():
        if isinstance(entry, dict):
            groups.update(entry.get("children", []))
    return groups


def group_hosts(inventory: dict, group: str) -> list[str]:
    """Every host of ``group`` and of its child groups, in inventory order."""
    if group not in _known_groups(inventory):
        raise InventoryError(f"group {group!r} is not in the inventory")
    hosts: dict[str, None] = {}
    seen: set[str] = set()
    pending = [group]
    while pending:
        name = pending.pop(0)
        if name in seen:
            continue
        seen.add(name)
        entry = inventory.get(name, {})
        hosts.update(dict.fromkeys(entry.get("hosts", [])))
        pending.extend(entry.get("children", []))
    return list(hosts)


def _lookup(variables: dict, path: str) -> Any:
    value: Any = variables
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def matches(variables: dict, filters: list[dict]) -> bool:
    """Whether a host's variables satisfy every filter ({var, op, value})."""
    for f in filters:
        value, wanted, op = _lookup(variables, f["var"]), f.get("value"), f["op"]
        found = value is not _MISSING
        if op == "exists":
            ok = found
        elif op == "eq":
            ok = found and value == wanted
        elif op == "ne":
            ok = not (found and value == wanted)
        elif op == "in":
            ok = found and value in wanted
        elif op == "contains":
            ok = found and (isinstance(value, (list, dict)) and wanted in value
                            or isinstance(value, str) and isinstance(wanted, str) and wanted in value)
        else:
            raise InventoryError(f"unknown filter op {op!r}")
        if not ok:
            return False
    return True


def resolve(target: Target | TargetSpec, cache: dict[str, dict] | None = None) -> list[str]:
    """The host names ``target`` selects now, in inventory order. Raises InventoryError when the
    inventory cannot be read, its group is not there, or listed hosts are not in it."""
    inventory = load_inventory(target.inventory, cache)
    if target.kind == "host":
        known = set(group_hosts(inventory, "all"))
        unknown = [h for h in target.hosts if h not in known]
        if unknown:
            raise InventoryError(f"host(s) not in the inventory {target.inventory}: {', '.join(unknown)}")
        return list(target.hosts)
    hosts = group_hosts(inventory, target.group or "all")
    if target.kind == "dynamic":
        hostvars = inventory.get("_meta", {}).get("hostvars", {})
        filters = [f if isinstance(f, dict) else f.model_dump() for f in target.filters]
        hosts = [h for h in hosts if matches(hostvars.get(h, {}), filters)]
    return hosts


def host_vars(target: Target, host: str, cache: dict[str, dict] | None = None) -> dict:
    """The inventory variables of one of the target's hosts."""
    return load_inventory(target.inventory, cache).get("_meta", {}).get("hostvars", {}).get(host, {})


# --- CRUD ----------------------------------------------------------------------------------------

def get(session: Session, target_id: int, *, for_update: bool = False) -> Target:
    target = session.get(Target, target_id, with_for_update=for_update)
    if target is None:
        raise not_found("target", target_id)
    return target


def list_statement(kind: str | None = None):
    statement = select(Target).order_by(Target.id)
    return statement.where(Target.kind == kind) if kind else statement


def _check_unique(session: Session, name: str, target_id: int | None = None) -> None:
    existing = session.scalar(select(Target.id).where(Target.name == name))
    if existing is not None and existing != target_id:
        raise Conflict(f"name: target {existing} is already named {name!r}")


def _check_credential(session: Session, credential_id: int | None) -> None:
    if credential_id is None:
        return
    credential = session.get(Credential, credential_id)
    if credential is None:
        raise invalid(["body", "credential_id"], f"credential {credential_id} does not exist")
    if credential.kind not in CONNECTION_KINDS:
        raise invalid(["body", "credential_id"], f"credential {credential.id} is of kind {credential.kind}, not a "
                      f"connection kind ({', '.join(CONNECTION_KINDS)})")


def _apply(target: Target, data: TargetCreate) -> None:
    target.name, target.kind, target.inventory = data.name, data.kind, data.inventory
    target.group, target.hosts = data.group, data.hosts
    target.filters = [f.model_dump() for f in data.filters]
    target.credential_id = data.credential_id


def create(session: Session, data: TargetCreate) -> Target:
    _check_unique(session, data.name)
    _check_credential(session, data.credential_id)
    windows = windows_service.parse_windows(data.windows, data.exclusions, ["body"])
    target = Target()
    _apply(target, data)
    windows_service.replace_windows(target, windows, ("windows", "exclusions"))
    session.add(target)
    session.flush()
    return target


def update(session: Session, target: Target, data: TargetUpdate) -> Target:
    changes = data.model_dump(exclude_unset=True, exclude={"windows", "exclusions"})
    which = [field for field in ("windows", "exclusions") if field in data.model_fields_set]
    if any(getattr(data, field) is None for field in which):
        raise Invalid([(["body", field], f"{field} cannot be null") for field in which if getattr(data, field) is None])
    windows = windows_service.parse_windows(data.windows or [], data.exclusions or [], ["body"])
    current = dict(name=target.name, kind=target.kind, inventory=target.inventory, group=target.group,
                   hosts=target.hosts, filters=target.filters, credential_id=target.credential_id)
    if "kind" in changes:   # what selected hosts under the old kind does not carry over
        current.update(group=None, hosts=[], filters=[])
    merged = validate_merged(TargetCreate, {**current, **changes})
    _check_unique(session, merged.name, target.id)
    _check_credential(session, merged.credential_id)
    _apply(target, merged)
    if which:
        windows_service.replace_windows(target, windows, which)
    session.flush()
    return target


def delete(session: Session, target: Target) -> None:
    """A target used by a deployment that has not completed cannot be deleted."""
    steps = session.execute(select(Step.position, Step.target_ids, Deployment.id).join(Deployment).where(
        Deployment.state.in_([DeploymentState.DRAFT, DeploymentState.READY, DeploymentState.ACTIVE,
                              DeploymentState.PAUSED]))).all()
    for position, target_ids, deployment_id in steps:
        if target.id in target_ids:
            raise Conflict(f"target {target.id} is used by step {position} of deployment {deployment_id}")
    session.delete(target)
    session.flush()
