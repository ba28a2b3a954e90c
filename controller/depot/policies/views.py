"""/api/v1/policies: Draft → Published; only published policies deploy."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, status

from depot.dependencies import CurrentUser, DbSession, Paging
from depot.policies import service
from depot.policies.schemas import Category, PolicyFields, PolicyRead, PolicyUpdate
from depot.schemas import Page, paginate
from depot.users import service as users

router = APIRouter(prefix="/policies", tags=["policies"])


def _require_privilege(user, *policies) -> None:
    """A script policy, or one carrying command lines, is the privileged role's to change."""
    for policy in policies:
        lines = users.command_lines(getattr(policy, "options", None))
        if getattr(policy, "category", None) == "script" or lines:
            what = f"a policy setting {', '.join(lines)}" if lines else "a script policy"
            users.require(user, users.PRIVILEGED, what)


@router.get("", response_model=Page[PolicyRead])
def list_policies(session: DbSession, paging: Paging, state: Literal["draft", "published"] | None = None,
                  category: Category | None = None):
    return paginate(session, service.list_statement(state, category), paging.page, paging.page_size,
                    PolicyRead.model_validate)


@router.post("", response_model=PolicyRead, status_code=status.HTTP_201_CREATED)
def create_policy(session: DbSession, user: CurrentUser, body: PolicyFields):
    _require_privilege(user, body)
    return PolicyRead.model_validate(service.create(session, body))


@router.get("/{policy_id}", response_model=PolicyRead)
def get_policy(session: DbSession, policy_id: int):
    return PolicyRead.model_validate(service.get(session, policy_id))


@router.patch("/{policy_id}", response_model=PolicyRead, summary="Edit a policy (a published one returns to draft)")
def update_policy(session: DbSession, user: CurrentUser, policy_id: int, body: PolicyUpdate):
    policy = service.get(session, policy_id, for_update=True)
    _require_privilege(user, policy, body)
    return PolicyRead.model_validate(service.update(session, policy, body))


@router.post("/{policy_id}/publish", response_model=PolicyRead, summary="Draft → published")
def publish_policy(session: DbSession, user: CurrentUser, policy_id: int):
    policy = service.get(session, policy_id, for_update=True)
    _require_privilege(user, policy)
    return PolicyRead.model_validate(service.publish(session, policy))


@router.delete("/{policy_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_policy(session: DbSession, user: CurrentUser, policy_id: int):
    policy = service.get(session, policy_id, for_update=True)
    _require_privilege(user, policy)
    service.delete(session, policy)
