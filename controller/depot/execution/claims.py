"""Claiming work: which Ready (step, host) rows a worker may take now.

A row is claimable when its deployment is active and not being cancelled, its next attempt is
due, its step's turn has come (every host finished the earlier steps, or with a pipelined
deployment this host did), its ring's turn has come (every earlier ring finished, and the failure
budget held), no other deployment is acting on the host (per-host exclusivity, with a visible
"queued behind deployment N"), and the deployment's concurrency limit leaves room.

Then the host's own conditions (DESIGN.md §3.4): a step with network condition "LAN only" whose
host is not on the LAN, or a host whose maintenance windows (the deployment's AND its targets')
are not open for the whole of the step's execution timeout, is Deferred with the reason and the
time it is looked at again (the next window that fits). A Wake-on-LAN step sends its packet
before the host's first contact and waits the boot time. A host that is claimed runs with the end
of its open window as the latest time it may reboot itself, and a host retried after a reboot runs
only if its boot id changed.

A worker's capacity is its forks. A batch gets one fork per host while forks are free; once
none is, it may take further hosts, up to ``worker_hosts_per_fork`` per fork it has: they wait
inside the run (Active, not yet contacted) and start as a fork frees, without paying for another
ansible-playbook start-up. Only hosts whose windows never close wait so (one that waits could
start after its window); a run that is cancelled or paused lets those that have not begun their
step skip it (the runner's stop file), and they go back to Ready.

On PostgreSQL, claim passes of all workers take turns under a transaction-level advisory lock
(exclusivity and concurrency limits are decided from rows of several deployments, which row locks
alone cannot protect), and candidate rows are locked FOR UPDATE SKIP LOCKED against the API's
concurrent changes. A pass takes milliseconds; the runs it starts go on in parallel.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Sequence

from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session

from depot.deployments.models import Deployment, HostResult, Step
from depot.execution.wakeup import WakeOptions
from depot.orchestration import lifecycle
from depot.orchestration.service import set_host_status
from depot.orchestration.states import DeploymentState, HostStatus
from depot.policies.models import Policy
from depot.scheduling import format_duration
from depot.scheduling.service import windows_for_host
from depot.hosts.models import Host
from depot.targets.models import Target

H = HostStatus
UNFINISHED = (H.READY, H.ACTIVE, H.DEFERRED)
CLAIM_LOCK = 0x6465706F74  # "depot": the advisory lock key of claim passes


#: How long a host deferred for not being on the LAN waits before it is looked at again.
LAN_RECHECK = dt.timedelta(minutes=5)
#: When no window within the search horizon fits a step, the host is looked at again after this.
NO_WINDOW_RECHECK = dt.timedelta(days=1)


@dataclass
class Batch:
    """Rows of one step of one deployment, run together by one ansible-runner invocation with
    ``forks``, with the step options that go with them (``unless_boot_id``, ``reboot_not_after``)."""

    deployment_id: int
    step_id: int
    rows: list[HostResult]
    options: dict = field(default_factory=dict)
    forks: int = 0      # hosts it runs at once; the rest of its rows wait in it for a fork


@dataclass
class Wake:
    """A Wake-on-LAN packet to send once the claim pass has committed."""

    host: str
    mac: str
    options: WakeOptions


@dataclass
class Claimed:
    batches: list[Batch] = field(default_factory=list)
    wakes: list[Wake] = field(default_factory=list)


def _first_unfinished(session: Session, deployment_ids: set[int], column) -> dict[int, int]:
    """Per deployment, the lowest ``column`` (step position, ring) among the unfinished host results."""
    return dict(session.execute(
        select(HostResult.deployment_id, func.min(column))
        .where(HostResult.deployment_id.in_(deployment_ids), HostResult.status.in_(UNFINISHED))
        .group_by(HostResult.deployment_id)).all())


def _host_positions(session: Session, deployment_ids: set[int], hosts: set[str]) -> dict[tuple[int, str], int]:
    """Per (deployment, host), the first step position that host has not finished."""
    rows = session.execute(
        select(HostResult.deployment_id, HostResult.host, func.min(HostResult.position))
        .where(HostResult.deployment_id.in_(deployment_ids), HostResult.host.in_(hosts),
               HostResult.status.in_(UNFINISHED))
        .group_by(HostResult.deployment_id, HostResult.host)).all()
    return {(d, h): p for d, h, p in rows}


def _owners(session: Session, hosts: set[str]) -> dict[str, int]:
    """Per host, the deployment acting on it: the lowest-id active deployment that has started
    on the host (some row of it there ran) and still has unfinished rows there."""
    started = set(session.execute(
        select(HostResult.deployment_id, HostResult.host).join(Deployment, Deployment.id == HostResult.deployment_id)
        .where(HostResult.host.in_(hosts), HostResult.started_at.is_not(None),
               Deployment.state.in_([DeploymentState.ACTIVE, DeploymentState.PAUSED]))).all())
    unfinished = session.execute(
        select(HostResult.deployment_id, HostResult.host)
        .where(HostResult.host.in_(hosts), HostResult.status.in_(UNFINISHED)).distinct()).all()
    owners: dict[str, int] = {}
    for deployment_id, host in unfinished:
        if (deployment_id, host) in started:
            owners[host] = min(deployment_id, owners.get(host, deployment_id))
    return owners


def on_lan(address: str | None, networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """Whether ``address`` (an IP, or a name resolved by the system) is in one of ``networks``."""
    if not address:
        return False
    try:
        ips = [ipaddress.ip_address(address)]
    except ValueError:
        try:
            ips = [ipaddress.ip_address(info[4][0]) for info in socket.getaddrinfo(address, None)]
        except OSError:
            return False
    return any(ip in network for ip in ips for network in networks)


class _Conditions:
    """The per-host checks of one claim pass, with what they load cached for the pass."""

    def __init__(self, session: Session, now: dt.datetime, lan_networks: Sequence):
        self.session, self.now, self.lan_networks = session, now, lan_networks
        self.steps: dict[int, Step] = {}
        self.policies: dict[int, bool] = {}
        self.targets: dict[int, Target | None] = {}
        self.windows: dict[tuple, object] = {}
        self.checked_in: dict[str, str | None] | None = None

    def step(self, row: HostResult) -> Step:
        if row.step_id not in self.steps:
            self.steps[row.step_id] = self.session.get(Step, row.step_id)
        return self.steps[row.step_id]

    def lan_only(self, step: Step) -> bool:
        """The step's network condition, or its policy's."""
        if step.network_condition == "lan_only":
            return True
        if step.policy_id is None:
            return False
        if step.policy_id not in self.policies:
            self.policies[step.policy_id] = self.session.get(Policy, step.policy_id).network_condition == "lan_only"
        return self.policies[step.policy_id]

    def host_windows(self, deployment: Deployment, row: HostResult):
        key = (deployment.id, tuple(row.targets or ()))
        if key not in self.windows:
            for target_id in key[1]:
                if target_id not in self.targets:
                    self.targets[target_id] = self.session.get(Target, target_id)
            self.windows[key] = windows_for_host(deployment, [t for i in key[1] if (t := self.targets[i])])
        return self.windows[key]

    def address(self, row: HostResult, candidates: list[HostResult]) -> str | None:
        """The address the host last checked in from, else its inventory address."""
        if self.checked_in is None:
            names = {r.host for r in candidates}
            self.checked_in = dict(self.session.execute(
                select(Host.name, Host.last_address).where(Host.name.in_(names))).all())
        return self.checked_in.get(row.host) or row.address

    def deferral(self, deployment: Deployment, row: HostResult, candidates: list[HostResult]):
        """(reason, until) when the host may not start its step now, else None."""
        step = self.step(row)
        if self.lan_only(step):
            address = self.address(row, candidates)
            if not on_lan(address, self.lan_networks):
                return (f"not on the LAN: its address {address or '(unknown)'} is outside DEPOT_LAN_NETWORKS "
                        "(network condition lan_only)", self.now + LAN_RECHECK)
        windows = self.host_windows(deployment, row)
        timeout = dt.timedelta(seconds=step.execution_timeout)
        if windows.fits(self.now, timeout):
            return None
        until = windows.next_fit(self.now, timeout)
        if until is None:
            return (f"no maintenance window in the next year is open for the step's timeout of "
                    f"{format_duration(timeout)}", self.now + NO_WINDOW_RECHECK)
        return (f"outside its maintenance windows: the next one open for the step's timeout of "
                f"{format_duration(timeout)} starts at {until:%Y-%m-%d %H:%M} UTC", until)

    def options(self, deployment: Deployment, row: HostResult) -> dict:
        options = {}
        stretch = self.host_windows(deployment, row).open_interval_at(self.now)
        if stretch is not None and stretch.end is not None:
            options["reboot_not_after"] = stretch.end.isoformat()
        if row.wait_boot_id:
            options["unless_boot_id"] = row.wait_boot_id
        return options


def claim(session: Session, worker: str, capacity: int, now: dt.datetime, lease_seconds: int,
          postgres: bool, lan_networks: Sequence = (), hosts_per_fork: int = 1) -> Claimed:
    """Claim rows for ``capacity`` free forks. Each batch gets forks while there are free ones
    (one per host); once none is free, a batch takes further hosts up to ``hosts_per_fork`` per
    fork it has, to run when one of its forks frees - only hosts whose windows do not close,
    since such a host may start well after now."""
    claimed = Claimed()
    if capacity <= 0:
        return claimed
    if postgres:
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CLAIM_LOCK})
    query = (select(HostResult).join(Deployment, Deployment.id == HostResult.deployment_id)
             .where(HostResult.status == H.READY, Deployment.state == DeploymentState.ACTIVE,
                    Deployment.cancel_requested.is_(False),
                    or_(HostResult.next_attempt_at.is_(None), HostResult.next_attempt_at <= now))
             .order_by(HostResult.deployment_id, HostResult.position, HostResult.id)
             .limit(max(capacity * hosts_per_fork * 2, 100)))
    if postgres:
        query = query.with_for_update(skip_locked=True, of=HostResult)
    candidates = session.scalars(query).all()
    if not candidates:
        return claimed
    deployment_ids = {r.deployment_id for r in candidates}
    hosts = {r.host for r in candidates}
    deployments = {d.id: d for d in session.scalars(select(Deployment).where(Deployment.id.in_(deployment_ids)))}
    # The budget is checked in the same transaction as the claim: no ring starts past a failure.
    paused = {d.id for d in deployments.values() if lifecycle.check_budget(session, d, f"worker:{worker}")}
    current = _first_unfinished(session, deployment_ids, HostResult.position)
    rings = _first_unfinished(session, deployment_ids, HostResult.ring)
    per_host = _host_positions(session, deployment_ids, hosts)
    owners = _owners(session, hosts)
    active = dict(session.execute(
        select(HostResult.deployment_id, func.count()).where(
            HostResult.deployment_id.in_(deployment_ids), HostResult.status == H.ACTIVE)
        .group_by(HostResult.deployment_id)).all())
    conditions = _Conditions(session, now, lan_networks)

    free = capacity
    batches: dict[tuple, Batch] = {}
    taken_hosts: set[str] = set()
    for row in candidates:
        if free == 0 and all(len(b.rows) >= b.forks * hosts_per_fork for b in batches.values()):
            break
        deployment = deployments[row.deployment_id]
        if deployment.id in paused:
            continue
        turn = per_host.get((row.deployment_id, row.host)) if deployment.pipelined else current.get(row.deployment_id)
        if row.position != turn or row.ring != rings.get(row.deployment_id) or row.host in taken_hosts:
            continue
        owner = owners.get(row.host)
        if owner is not None and owner != row.deployment_id:
            if row.queued_behind != owner:
                row.queued_behind = owner
                row.reason = f"queued behind deployment {owner}"
            continue
        limit = deployment.max_concurrent_hosts
        if limit is not None and active.get(row.deployment_id, 0) >= limit:
            continue
        deferral = conditions.deferral(deployment, row, candidates)
        if deferral is not None:
            reason, until = deferral
            set_host_status(session, [row], H.DEFERRED, cause="deferred", actor=f"worker:{worker}", reason=reason,
                            next_attempt_at=until, queued_behind=None)
            continue
        options = conditions.options(deployment, row)
        key = (row.deployment_id, row.step_id, tuple(sorted(options.items())))
        batch = batches.get(key)
        if free == 0 and (batch is None or len(batch.rows) >= batch.forks * hosts_per_fork
                          or "reboot_not_after" in options):
            continue   # no fork for it, and it may not wait for one (its window closes)
        step = conditions.step(row)
        if step.wake_on_lan and row.woken_at is None and row.mac:
            wake = WakeOptions.model_validate(step.wake_on_lan)
            claimed.wakes.append(Wake(row.host, row.mac, wake))
            row.woken_at = now
            if wake.boot_seconds:
                row.next_attempt_at = now + dt.timedelta(seconds=wake.boot_seconds)
                row.reason = (f"Wake-on-LAN sent to {row.mac}; first contact after its boot time, at "
                              f"{row.next_attempt_at:%H:%M:%S} UTC")
                continue
        if batch is None:
            batch = batches[key] = Batch(row.deployment_id, row.step_id, [], options, forks=0)
        if free:
            batch.forks += 1
            free -= 1
        batch.rows.append(row)
        taken_hosts.add(row.host)
        active[row.deployment_id] = active.get(row.deployment_id, 0) + 1
        owners[row.host] = row.deployment_id

    taken = [row for batch in batches.values() for row in batch.rows]
    set_host_status(session, taken, H.ACTIVE, cause="claimed", actor=f"worker:{worker}", claimed_by=worker,
                    lease_expires_at=now + dt.timedelta(seconds=lease_seconds), queued_behind=None, reason=None)
    for row in taken:
        row.first_contact_at = row.first_contact_at or now
    claimed.batches = list(batches.values())
    return claimed
