"""Celery tasks of the catalogue: thin, they take ids and call services."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from valuetree import services
from valuetree.mail import TransportError


@shared_task(
    bind=True,
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=settings.REPORT_DELIVERY_MAX_RETRIES,
)
def email_notification(self, notification_id: int) -> str:
    """E-mail one notification exactly once; an SMTP outage retries with exponential
    backoff (the same path and settings as review report deliveries)."""
    try:
        return services.notification_email_send(
            notification_id=notification_id,
            final_attempt=self.request.retries >= self.max_retries,
        )
    except TransportError as e:
        countdown = min(settings.REPORT_DELIVERY_BACKOFF * 2**self.request.retries, 3600)
        raise self.retry(countdown=countdown, exc=e) from None


@shared_task(ignore_result=True, acks_late=True)
def refresh_embeddings(product_ids: list[int] | None = None) -> int:
    """Re-embed the products whose text changed (all products when no ids are given,
    e.g. after a glossary change). Idempotent: unchanged texts cost no model call."""
    return services.data_product_embeddings_refresh(product_ids=product_ids)
