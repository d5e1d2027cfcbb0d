"""Celery tasks of the catalogue: thin, they take ids and call a service."""

from __future__ import annotations

from celery import shared_task

from valuetree import services


@shared_task(ignore_result=True, acks_late=True)
def refresh_embeddings(product_ids: list[int] | None = None) -> int:
    """Re-embed the products whose text changed (all products when no ids are given,
    e.g. after a glossary change). Idempotent: unchanged texts cost no model call."""
    return services.data_product_embeddings_refresh(product_ids=product_ids)
