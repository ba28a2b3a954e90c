"""/api/v1/notifications: subscriptions (a webhook's secret is write-only) and their deliveries."""

from __future__ import annotations

from fastapi import APIRouter, status

from depot.dependencies import CurrentKeys, DbSession, Paging
from depot.notifications import service
from depot.notifications.schemas import (
    Channel, DeliveryRead, DeliveryStatus, SubscriptionCreate, SubscriptionRead, SubscriptionUpdate,
)
from depot.schemas import Page, paginate

router = APIRouter(prefix="/notifications", tags=["notifications"])


@router.get("/subscriptions", response_model=Page[SubscriptionRead])
def list_subscriptions(session: DbSession, paging: Paging, channel: Channel | None = None,
                       deployment_id: int | None = None, policy_id: int | None = None):
    return paginate(session, service.list_statement(channel, deployment_id, policy_id), paging.page,
                    paging.page_size, service.read)


@router.post("/subscriptions", response_model=SubscriptionRead, status_code=status.HTTP_201_CREATED)
def create_subscription(session: DbSession, keys: CurrentKeys, body: SubscriptionCreate):
    return service.read(service.create(session, keys, body))


@router.get("/subscriptions/{subscription_id}", response_model=SubscriptionRead)
def get_subscription(session: DbSession, subscription_id: int):
    return service.read(service.get(session, subscription_id))


@router.patch("/subscriptions/{subscription_id}", response_model=SubscriptionRead)
def update_subscription(session: DbSession, keys: CurrentKeys, subscription_id: int, body: SubscriptionUpdate):
    subscription = service.get(session, subscription_id, for_update=True)
    return service.read(service.update(session, keys, subscription, body))


@router.delete("/subscriptions/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_subscription(session: DbSession, subscription_id: int):
    service.delete(session, service.get(session, subscription_id, for_update=True))


@router.post("/subscriptions/{subscription_id}/test", response_model=DeliveryRead,
             status_code=status.HTTP_201_CREATED, summary="Queue a test delivery (event \"test\")")
def test_subscription(session: DbSession, subscription_id: int):
    return DeliveryRead.model_validate(service.queue_test(session, service.get(session, subscription_id)))


@router.get("/deliveries", response_model=Page[DeliveryRead])
def list_deliveries(session: DbSession, paging: Paging, status: DeliveryStatus | None = None,
                    deployment_id: int | None = None, subscription_id: int | None = None):
    return paginate(session, service.deliveries_statement(status, deployment_id, subscription_id), paging.page,
                    paging.page_size, DeliveryRead.model_validate)
