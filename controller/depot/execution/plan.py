"""What one step asks of a host: the depot.software.step entry (action and module options) the
playbook runs, built from the step, its policy and its package, and how the run connects to the
hosts (the targets' connection credential). Secrets are not in it: the entry refers to them by name,
and the runner hands them to ansible-playbook in memory (a private key goes to ssh-agent)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from depot.credentials.models import Credential
from depot.deployments.models import Step
from depot.packages.content import signed_url
from depot.packages.models import Package
from depot.policies.models import Policy
from depot.security import Keys
from depot.execution.varsfile import secret_ref
from depot.targets.models import Target


class PlanError(ValueError):
    """The step cannot be turned into a task (a missing package, credential, or content)."""


@dataclass
class StepPlan:
    entry: dict                               # one item of depot_steps
    secrets: dict[str, str] = field(default_factory=dict)   # name -> secret value (varsfile.secret_ref)
    connection: dict = field(default_factory=dict)          # connection variables (extra vars of the run)
    ssh_key: str | None = None                              # private key for the run's ssh-agent
    credentials: list[int] = field(default_factory=list)    # ids of the credentials it uses (audited)


def connection_vars(credential: Credential, keys: Keys) -> tuple[dict, dict[str, str], str | None]:
    """How a run connects with ``credential``: (extra vars, secrets by name, private key for
    ssh-agent). The vars carry no secret, only references to it (depot.execution.varsfile)."""
    kind, options = credential.kind, credential.options or {}
    variables: dict = dict(ansible_user=credential.username)
    if kind == "winrm":
        variables.update(ansible_connection="winrm", ansible_winrm_transport=options.get("transport", "ntlm"),
                         ansible_winrm_server_cert_validation=options.get("cert_validation", "validate"))
    elif kind == "psrp":
        variables.update(ansible_connection="psrp", ansible_psrp_auth=options.get("transport", "ntlm"),
                         ansible_psrp_cert_validation=options.get("cert_validation", "validate"))
    elif kind not in ("ssh_key", "ssh_password"):
        raise PlanError(f"credential {credential.id} ({credential.name!r}) is of kind {kind}, not a connection kind")
    if options.get("port"):
        variables["ansible_port"] = options["port"]
    secret = keys.decrypt(credential.secret) if credential.secret else None
    if kind == "ssh_key":
        if secret is None:
            raise PlanError(f"credential {credential.id} ({credential.name!r}) has no private key")
        return variables, {}, secret if secret.endswith("\n") else secret + "\n"   # ssh-add wants the last newline
    secrets: dict[str, str] = {}
    if secret is not None:
        name = f"DEPOT_SECRET_CONNECTION_{credential.id}"
        secrets[name] = secret
        variables["ansible_password"] = secret_ref(name)
        if kind == "ssh_password" and options.get("become"):
            variables["ansible_become_password"] = secret_ref(name)
    return variables, secrets, None


def step_credential(session: Session, step: Step) -> Credential | None:
    """The connection credential of the step's targets (one run connects as one identity)."""
    ids = set(session.scalars(select(Target.credential_id).where(Target.id.in_(step.target_ids or []))))
    if len(ids) > 1:
        raise PlanError(f"step {step.position}: its targets connect with different credentials")
    credential_id = ids.pop() if ids else None
    if credential_id is None:
        return None
    credential = session.get(Credential, credential_id)
    if credential is None:
        raise PlanError(f"step {step.position}: connection credential {credential_id} does not exist")
    return credential


def package_args(package: Package, keys: Keys, public_url: str, ttl: int) -> dict:
    args = dict(name=package.name, installer_type=package.installer_type)
    if package.product_id:
        args["product_id"] = package.product_id
    if package.version:
        args["version"] = package.version
    if package.content_sha256 and package.content_url:
        args.update(src=package.content_url, checksum=package.content_sha256)
    elif package.content_sha256:
        args.update(src=signed_url(keys, public_url, package.content_sha256, package.content_filename or "content", ttl),
                    checksum=package.content_sha256)
    args.update(package.options or {})
    return args


def plan_step(session: Session, step: Step, keys: Keys, public_url: str, ttl: int = 3600,
              options: dict | None = None) -> StepPlan:
    """The step's entry; ``options`` are the batch's own (depot.execution.claims): the latest time a
    host may reboot itself (``reboot_not_after``: the end of its open maintenance window), and
    ``unless_boot_id`` for a retry that waits for a reboot."""
    options = options or {}
    plan = StepPlan(entry={})
    args: dict = {}
    policy = session.get(Policy, step.policy_id) if step.policy_id else None
    if policy is not None:
        if policy.state != "published":
            raise PlanError(f"step {step.position}: policy {policy.name!r} is not published")
        action = "package" if policy.category == "software" else "script"
        if action == "package":
            args.update(package_args(_package(session, policy.package_id, step), keys, public_url, ttl))
            args["state"] = "absent" if policy.operation == "uninstall" else "present"
        else:
            args["script"] = policy.script
        args.update(run_as=policy.run_as, retries=policy.retries, retry_interval=policy.retry_interval,
                    retry_after_reboot=policy.retry_after_reboot)
        if policy.run_as == "user":
            credential = session.get(Credential, policy.run_as_credential_id) if policy.run_as_credential_id else None
            if credential is None:
                raise PlanError(f"step {step.position}: policy {policy.name!r} runs as a user but has no credential")
            args["run_as_user"] = credential.username
            plan.credentials.append(credential.id)
            if credential.secret:
                name = f"DEPOT_SECRET_RUN_AS_{credential.id}"
                plan.secrets[name] = keys.decrypt(credential.secret)
                args["run_as_password"] = secret_ref(name)
        args.update(policy.options or {})
    else:
        action = step.action
        if action == "package":
            args.update(package_args(_package(session, step.package_id, step), keys, public_url, ttl))
        elif action == "script":
            args["script"] = step.script
        else:
            raise PlanError(f"step {step.position}: neither a policy nor an inline package or script")
    # The step's own options come last: they are the deployment's word on this step.
    args["timeout"] = step.execution_timeout
    if step.valid_exit_codes:
        args["exit_codes"] = dict(args.get("exit_codes") or {}, success=list(step.valid_exit_codes))
    # Reboot within the step and resume (as MECM does) unless the step says otherwise.
    args.setdefault("reboot_timing", "immediate")
    args.update(step.options or {})
    if options.get("reboot_not_after"):
        args["reboot_not_after"] = options["reboot_not_after"]
    plan.entry = dict(id=step.id, name=step.name, action=action, args=args)
    if options.get("unless_boot_id"):
        plan.entry["unless_boot_id"] = options["unless_boot_id"]
    credential = step_credential(session, step)
    if credential is not None:
        plan.credentials.append(credential.id)
        plan.connection, secrets, plan.ssh_key = connection_vars(credential, keys)
        plan.secrets.update(secrets)
    return plan


def _package(session: Session, package_id: int | None, step: Step) -> Package:
    package = session.get(Package, package_id) if package_id else None
    if package is None:
        raise PlanError(f"step {step.position}: its package does not exist")
    return package
