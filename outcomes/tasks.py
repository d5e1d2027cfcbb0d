"""Celery tasks: thin; they take ids and call the pull path (outcomes/pulling.py)."""

from __future__ import annotations

import logging
from datetime import datetime

from celery import shared_task
from django.conf import settings

from outcomes import evaluation, pulling, retention
from outcomes.connectors import TransientPullError

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def pull_due_metrics() -> int:
    """Beat, every minute: claim the metrics that are due and queue one pull each."""
    claimed = pulling.metrics_claim_due()
    for metric_id in claimed:
        pull_metric.delay(metric_id, "schedule")
    return len(claimed)


@shared_task(ignore_result=True)
def sweep_stuck_pulls() -> int:
    """Beat, every minute: queue again the pulls whose worker died or whose message was lost."""
    requeued = pulling.metrics_sweep_stuck()
    for metric_id in requeued:
        pull_metric.delay(metric_id, "sweeper")
    if requeued:
        logger.warning("Re-queued %d pulls that never finished: %s", len(requeued), requeued)
    return len(requeued)


@shared_task(
    bind=True,
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    # Only errors that may pass on their own; a bad query fails at once.
    autoretry_for=(TransientPullError,),
    max_retries=settings.PULL_MAX_RETRIES,
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
)
def pull_metric(
    self, metric_id: int, trigger: str = "schedule", user_id: int | None = None
) -> None:
    """`user_id`: who asked for a manual pull (recorded on its runs)."""
    pulling.metric_pull(
        metric_id=metric_id,
        trigger=trigger,
        user_id=user_id,
        attempt=self.request.retries + 1,
        final_attempt=self.request.retries >= self.max_retries,
    )


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def evaluate_measures(measure_ids: list[int], changed_at: str | None = None) -> int:
    """Queued after new observations commit: new verdicts for the measures they feed.

    `changed_at` (ISO 8601, taken after the commit): measures evaluated since then are
    skipped, so a burst of pushes costs one evaluation (evaluation.measures_evaluate)."""
    return evaluation.measures_evaluate(
        measure_ids=measure_ids,
        changed_at=datetime.fromisoformat(changed_at) if changed_at else None,
    )


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def evaluate_all_measures() -> int:
    """Beat, daily: dates move even when values don't (plans advance, data goes stale)."""
    return evaluation.measures_evaluate()


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def prune_history() -> dict[str, int]:
    """Beat, daily: old verdicts and pull runs go, evidence stays (outcomes/retention.py)."""
    pruned = retention.history_prune()
    logger.info(
        "Pruned %(verdicts)d verdicts, %(pull_runs)d pull runs, %(api_tokens)d expired "
        "API tokens and %(trash)d trashed subtrees past 30 days",
        pruned,
    )
    return pruned


# --- Scheduled review reports (outcomes/reports/services.py) ----------------------------


@shared_task(ignore_result=True)
def run_due_review_schedules() -> int:
    """Beat, every minute: claim the due review schedules and queue one run each on the
    reports queue; start delivering drafts published since their run."""
    from outcomes.reports import services as reports

    claimed = reports.schedules_claim_due()
    for schedule_id, run_at in claimed:
        run_review_schedule.delay(schedule_id, run_at)
    reports.runs_deliver_published()
    reports.reminders_send()
    reports.deliveries_sweep_stuck()
    return len(claimed)


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def run_review_schedule(schedule_id: int, run_at: str) -> None:
    """One scheduled run: make the review of the period, render it, queue deliveries."""
    from datetime import datetime

    from outcomes.reports import services as reports

    reports.schedule_run(schedule_id=schedule_id, run_at=datetime.fromisoformat(run_at))


@shared_task(
    bind=True,
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=settings.REPORT_DELIVERY_MAX_RETRIES,
)
def send_delivery(self, delivery_id: int) -> str:
    """Send one delivery exactly once; transient failures retry with exponential
    backoff (or after the server's Retry-After), permanent ones are stored."""
    from outcomes.reports import services as reports
    from outcomes.reports.transports import TransportError

    try:
        return reports.delivery_send(
            delivery_id=delivery_id, final_attempt=self.request.retries >= self.max_retries
        )
    except TransportError as e:
        backoff = min(settings.REPORT_DELIVERY_BACKOFF * 2**self.request.retries, 3600)
        countdown = max(backoff, min(e.retry_after or 0, 3600))
        raise self.retry(countdown=countdown, exc=e) from None
