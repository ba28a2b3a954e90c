"""Credentials: secrets encrypted with the controller's key the moment they arrive."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from depot.credentials.models import Credential
from depot.credentials.schemas import (
    CONNECTION_KINDS, CredentialCreate, CredentialFields, CredentialRead, CredentialUpdate,
)
from depot.errors import Conflict, not_found
from depot.policies.models import Policy
from depot.schemas import validate_merged
from depot.security import Keys
from depot.targets.models import Target


def get(session: Session, credential_id: int, *, for_update: bool = False) -> Credential:
    credential = session.get(Credential, credential_id, with_for_update=for_update)
    if credential is None:
        raise not_found("credential", credential_id)
    return credential


def list_statement(kind: str | None = None):
    statement = select(Credential).order_by(Credential.id)
    return statement.where(Credential.kind == kind) if kind else statement


def read(credential: Credential) -> CredentialRead:
    """The response body: everything but the secret, which shows only as has_secret."""
    return CredentialRead(id=credential.id, name=credential.name, kind=credential.kind, username=credential.username,
                          options=credential.options, has_secret=credential.secret is not None,
                          created_at=credential.created_at, updated_at=credential.updated_at)


def _check_unique(session: Session, name: str, credential_id: int | None = None) -> None:
    existing = session.scalar(select(Credential.id).where(Credential.name == name))
    if existing is not None and existing != credential_id:
        raise Conflict(f"name: credential {existing} is already named {name!r}")


def create(session: Session, keys: Keys, data: CredentialCreate) -> Credential:
    _check_unique(session, data.name)
    credential = Credential(name=data.name, kind=data.kind, username=data.username, options=data.options,
                            secret=keys.encrypt(data.secret.get_secret_value()))
    session.add(credential)
    session.flush()
    return credential


def update(session: Session, keys: Keys, credential: Credential, data: CredentialUpdate) -> Credential:
    changes = data.model_dump(exclude_unset=True, exclude={"secret"})
    current = dict(name=credential.name, kind=credential.kind, username=credential.username,
                   options=credential.options)
    if "kind" in changes and "options" not in changes:
        current["options"] = {}          # another kind's options do not carry over
    merged = validate_merged(CredentialFields, {**current, **changes})
    _check_unique(session, merged.name, credential.id)
    target = _target_using(session, credential)
    if target is not None and merged.kind not in CONNECTION_KINDS:
        raise Conflict(f"kind: credential {credential.id} connects to the hosts of target {target.id} "
                       f"({target.name!r}); {merged.kind} is not a connection kind")
    credential.name, credential.kind = merged.name, merged.kind
    credential.username, credential.options = merged.username, merged.options
    if data.secret is not None:
        credential.secret = keys.encrypt(data.secret.get_secret_value())
    session.flush()
    return credential


def _target_using(session: Session, credential: Credential) -> Target | None:
    return session.scalar(select(Target).where(Target.credential_id == credential.id).order_by(Target.id).limit(1))


def delete(session: Session, credential: Credential) -> None:
    policy = session.scalar(select(Policy).where(Policy.run_as_credential_id == credential.id).limit(1))
    if policy is not None:
        raise Conflict(f"credential {credential.id} is used by policy {policy.id} ({policy.name!r})")
    target = _target_using(session, credential)
    if target is not None:
        raise Conflict(f"credential {credential.id} is used by target {target.id} ({target.name!r})")
    session.delete(credential)
    session.flush()


def reveal_secret(keys: Keys, credential: Credential) -> str | None:
    """The plaintext secret, for the worker to hand to a run (never to an API response or a log)."""
    return None if credential.secret is None else keys.decrypt(credential.secret)
