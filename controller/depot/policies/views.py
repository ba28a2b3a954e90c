"""/api/v1/policies: Draft → Published; only published policies deploy."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, status

from depot.dependencies import DbSession, Paging
from depot.policies import service
from depot.policies.schemas import Category, PolicyFields, PolicyRead, PolicyUpdate
from depot.schemas import Page, paginate

router = APIRouter(prefix="/policies", tags=["policies"])


@router.get("", response_model=Page[PolicyRead])
def list_policies(session: DbSession, paging: Paging, state: Literal["draft", "published"] | None = None,
                  category: Category | None = None):
    return paginate(session, service.list_statement(state, category), paging.page, paging.page_size,
                    PolicyRead.model_validate)


@router.post("", response_model=PolicyRead, status_code=status.HTTP_201_CREATED)
def create_policy(session: DbSession, body: PolicyFields):
    return PolicyRead.model_validate(service.create(session, body))


@router.get("/{policy_id}", response_model=PolicyRead)
def get_policy(session: DbSession, policy_id: int):
    return PolicyRead.model_validate(service.get(session, policy_id))


@router.patch("/{policy_id}", response_model=PolicyRead, summary="Edit a policy (a published one returns to draft)")
def update_policy(session: DbSession, policy_id: int, body: PolicyUpdate):
    return PolicyRead.model_validate(service.update(session, service.get(session, policy_id, for_update=True), body))


@router.post("/{policy_id}/publish", response_model=PolicyRead, summary="Draft → published")
def publish_policy(session: DbSession, policy_id: int):
    return PolicyRead.model_validate(service.publish(session, service.get(session, policy_id, for_update=True)))


@router.delete("/{policy_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_policy(session: DbSession, policy_id: int):
    service.delete(session, service.get(session, policy_id, for_update=True))
