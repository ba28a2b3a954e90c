"""Policies: reusable what-to-do-on-a-host, Draft → Published; only published ones deploy."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from depot import modulespec
from depot.credentials.models import Credential
from depot.deployments.models import Step
from depot.errors import Conflict, Invalid, not_found
from depot.packages.models import Package
from depot.policies.models import Policy
from depot.policies.schemas import PolicyFields, PolicyUpdate
from depot.schemas import validate_merged

DRAFT, PUBLISHED = "draft", "published"
FIELDS = tuple(PolicyFields.model_fields)


def get(session: Session, policy_id: int, *, for_update: bool = False) -> Policy:
    policy = session.get(Policy, policy_id, with_for_update=for_update)
    if policy is None:
        raise not_found("policy", policy_id)
    return policy


def list_statement(state: str | None = None, category: str | None = None):
    statement = select(Policy).order_by(Policy.id)
    if state:
        statement = statement.where(Policy.state == state)
    if category:
        statement = statement.where(Policy.category == category)
    return statement


def _check(session: Session, data: PolicyFields, policy_id: int | None = None) -> None:
    """What the schema cannot know: names in use, referenced rows, options fit for the package's platform."""
    existing = session.scalar(select(Policy.id).where(Policy.name == data.name))
    if existing is not None and existing != policy_id:
        raise Conflict(f"name: policy {existing} is already named {data.name!r}")
    errors = []
    if data.package_id is not None:
        package = session.get(Package, data.package_id)
        if package is None:
            errors.append((["body", "package_id"], f"package {data.package_id} does not exist"))
        elif isinstance(data.options.get("detection"), dict):
            problems = modulespec.spec().detection_errors(data.options["detection"], package.platform == "windows")
            errors += [(["body", "options"], p) for p in problems]
    if data.run_as_credential_id is not None:
        credential = session.get(Credential, data.run_as_credential_id)
        if credential is None:
            errors.append((["body", "run_as_credential_id"], f"credential {data.run_as_credential_id} does not exist"))
        elif credential.kind != "run_as":
            errors.append((["body", "run_as_credential_id"],
                           f"credential {credential.id} is of kind {credential.kind}, not run_as"))
    if errors:
        raise Invalid(errors)


def create(session: Session, data: PolicyFields) -> Policy:
    _check(session, data)
    policy = Policy(state=DRAFT, **data.model_dump())
    session.add(policy)
    session.flush()
    return policy


def update(session: Session, policy: Policy, data: PolicyUpdate) -> Policy:
    """Apply an edit; a published policy goes back to draft."""
    changes = data.model_dump(exclude_unset=True)
    current = {f: getattr(policy, f) for f in FIELDS}
    if changes.get("category", policy.category) != policy.category:   # the other category's what does not carry over
        current.update(package_id=None, script=None, options={})
    if changes.get("run_as", policy.run_as) != "user":
        current["run_as_credential_id"] = None
    merged = validate_merged(PolicyFields, {**current, **changes})
    _check(session, merged, policy.id)
    for field in FIELDS:
        setattr(policy, field, getattr(merged, field))
    policy.state = DRAFT
    session.flush()
    return policy


def publish(session: Session, policy: Policy) -> Policy:
    if policy.state != DRAFT:
        raise Conflict(f"policy {policy.id} is already {policy.state}")
    _check(session, PolicyFields.model_validate({f: getattr(policy, f) for f in FIELDS}), policy.id)
    policy.state = PUBLISHED
    session.flush()
    return policy


def delete(session: Session, policy: Policy) -> None:
    step = session.scalar(select(Step).where(Step.policy_id == policy.id).limit(1))
    if step is not None:
        raise Conflict(f"policy {policy.id} is used by step {step.position} of deployment {step.deployment_id}")
    session.delete(policy)
    session.flush()
