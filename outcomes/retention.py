"""Retention: verdict rows (one per evaluation) and pull runs (one per pull or push)
are pruned to a configurable history by a daily task (`prune_history`).

Kept whatever their age:
- every measure's current verdict, and every verdict another row points at (a
  published value review or decision cites the verdict it was made on:
  `verdict_ids_referenced`);
- the latest PULL_RUNS_KEEP_LATEST runs of each metric, runs still in progress, every
  run a review or decision cites, and the run that stored an observation a review or
  decision cites (`pull_run_ids_referenced`).

A run that stored values is otherwise pruned like any other (issue 16 §15: a push
metric has one run per pushed value): its values stay, and lose only the link to the
run that wrote them (`Observation.pull_run` is SET_NULL).

Expired API tokens go too (`api_tokens_expired_prune`): they are refused already, and
the request that presents one no longer deletes it (valuetree/auth.py).

Settings: VERDICT_HISTORY_DAYS, PULL_RUN_HISTORY_DAYS, PULL_RUNS_KEEP_LATEST (README).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import QuerySet
from django.utils import timezone

from outcomes.models import Observation, PullRun, PullStatus, Verdict

DELETE_BATCH = 2000  # rows per DELETE: short transactions, no long lock on a busy table


def verdict_ids_referenced() -> set[int]:
    """Ids of verdicts that some other row points at: these are evidence and never pruned.

    The hook for reviews and decisions: any model with a ForeignKey, OneToOneField or
    ManyToManyField to Verdict (e.g. a ValueReview's or Decision's `verdict`) is found
    here by introspection, so a new model that cites verdicts is protected without
    changing this function. A relation whose rows should not protect (none today) would
    be excluded here, by its related model's label.
    """
    return _ids_referenced(Verdict)


def pull_run_ids_referenced() -> set[int]:
    """Ids of pull runs that are evidence: cited by a row of another model (a decision's
    or learning's evidence), or the run that stored an observation such a row cites.

    Found by introspection, as for verdicts; the observations a run stored do not
    protect it (that link is provenance, not citation)."""
    cited_observations = _ids_referenced(Observation)
    referenced = _ids_referenced(PullRun, ignore=(Observation,))
    if cited_observations:
        referenced.update(
            Observation.objects.filter(pk__in=cited_observations, pull_run__isnull=False)
            .values_list("pull_run_id", flat=True)
            .distinct()
        )
    return referenced


def _ids_referenced(
    target: type[models.Model], *, ignore: tuple[type[models.Model], ...] = ()
) -> set[int]:
    """Ids of `target` rows that a row of another model (not in `ignore`) points at."""
    referenced: set[int] = set()
    for relation in _relations_to(target):
        model = relation.related_model
        if model in ignore:
            continue
        if relation.many_to_many:
            through = relation.field.remote_field.through if relation.field else None
            if through is None:
                continue
            column = next(
                f.attname
                for f in through._meta.get_fields()
                if isinstance(f, models.ForeignKey) and f.related_model is target
            )
            referenced.update(through.objects.values_list(column, flat=True).distinct().iterator())
        elif relation.one_to_many or relation.one_to_one:
            column = relation.field.attname
            referenced.update(
                model._base_manager.exclude(**{f"{column}__isnull": True})
                .values_list(column, flat=True)
                .distinct()
                .iterator()
            )
    return referenced


def _relations_to(model: type[models.Model]) -> list[models.ForeignObjectRel]:
    """Every relation other models have to `model`, hidden ones (related_name="+") too."""
    return [
        field
        for field in model._meta.get_fields(include_hidden=True)
        if field.auto_created and not field.concrete and field.is_relation
    ]


def _delete_in_batches(queryset: QuerySet, model: type[models.Model]) -> int:
    deleted = 0
    while True:
        ids = list(queryset.values_list("pk", flat=True)[:DELETE_BATCH])
        if not ids:
            return deleted
        with transaction.atomic():
            # An ordinary delete: whatever relation a later model adds to these rows is
            # honoured (a PROTECT refuses, SET_NULL clears) rather than bypassed.
            _, by_model = model.objects.filter(pk__in=ids).delete()
            deleted += by_model.get(model._meta.label, 0)


def verdicts_prune(*, now: datetime | None = None, days: int | None = None) -> int:
    """Delete verdicts evaluated more than `days` (VERDICT_HISTORY_DAYS) ago that are not
    current and not referenced; how many."""
    now = now or timezone.now()
    days = settings.VERDICT_HISTORY_DAYS if days is None else days
    old = Verdict.objects.filter(is_current=False, evaluated_at__lt=now - timedelta(days=days))
    keep = verdict_ids_referenced()
    if keep:
        old = old.exclude(pk__in=keep)
    return _delete_in_batches(old.order_by("pk"), Verdict)


def pull_runs_prune(
    *, now: datetime | None = None, days: int | None = None, keep_latest: int | None = None
) -> int:
    """Delete pull runs started more than `days` (PULL_RUN_HISTORY_DAYS) ago, except each
    metric's latest `keep_latest` (PULL_RUNS_KEEP_LATEST), running ones and those a
    review or decision cites (`pull_run_ids_referenced`); how many. Runs that stored
    values go too: the values stay, without their run."""
    now = now or timezone.now()
    days = settings.PULL_RUN_HISTORY_DAYS if days is None else days
    keep_latest = settings.PULL_RUNS_KEEP_LATEST if keep_latest is None else keep_latest
    cutoff = now - timedelta(days=days)
    old = PullRun.objects.filter(started_at__lt=cutoff).exclude(status=PullStatus.RUNNING)
    keep = pull_run_ids_referenced()
    if keep:
        old = old.exclude(pk__in=keep)
    deleted = 0
    for metric_id in _metrics_with(old):
        newest = PullRun.objects.filter(metric_id=metric_id).order_by("-started_at", "-id")
        kept = list(newest.values_list("pk", flat=True)[:keep_latest]) if keep_latest else []
        deleted += _delete_in_batches(
            old.filter(metric_id=metric_id).exclude(pk__in=kept).order_by("pk"), PullRun
        )
    return deleted


def _metrics_with(runs: QuerySet[PullRun]) -> Iterable[int]:
    return list(runs.order_by().values_list("metric_id", flat=True).distinct())


def api_tokens_expired_prune(*, now: datetime | None = None) -> int:
    """Delete API tokens whose expiry has passed (they are refused already); how many."""
    from valuetree.models import ApiToken

    now = now or timezone.now()
    _, by_model = ApiToken.objects.filter(expiry__lt=now).delete()
    return by_model.get(ApiToken._meta.label, 0)


def history_prune(*, now: datetime | None = None) -> dict[str, int]:
    """Every prune with the configured history:
    {"verdicts": n, "pull_runs": n, "api_tokens": n, "trash": n}. ``trash``: deleted
    subtrees past the trash's 30 days (valuetree.trash), which were hidden but kept
    for ever."""
    from valuetree.trash import trash_purge

    return {
        "verdicts": verdicts_prune(now=now),
        "pull_runs": pull_runs_prune(now=now),
        "api_tokens": api_tokens_expired_prune(now=now),
        "trash": trash_purge(now=now),
    }
