"""`manage.py pull_metrics`: pull metrics once, here and now, without a worker.

By default the metrics that are due (what beat would queue); `--all` pulls every
active pulled metric, `--metric ID` and `--tree SLUG` narrow the choice. Each pull
claims its metric first, so it never runs beside a worker's pull of the same metric.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from outcomes import pulling
from outcomes.models import Metric, PullStatus, PullTrigger, SourceKind


class Command(BaseCommand):
    help = "Pull metrics once, in this process (due ones by default)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--all", action="store_true", help="Every active pulled metric.")
        parser.add_argument("--metric", type=int, action="append", default=[], help="A metric id.")
        parser.add_argument("--tree", help="Only metrics of this tree (slug).")

    def handle(
        self, *args: Any, all: bool, metric: list[int], tree: str | None, **options: Any
    ) -> None:
        chosen = Metric.objects.exclude(source__kind=SourceKind.PUSH).select_related("source")
        if tree:
            chosen = chosen.filter(source__tree__slug=tree)
        if metric:
            chosen = chosen.filter(pk__in=metric)
            missing = set(metric) - set(chosen.values_list("pk", flat=True))
            if missing:
                raise CommandError(
                    f"No pulled metric with id {', '.join(map(str, sorted(missing)))}."
                )
        if metric or all:
            ids = [m.pk for m in chosen.filter(is_active=True) if pulling.metric_claim(metric=m)]
        else:
            ids = pulling.metrics_claim_due(among=chosen)
        failed = 0
        for metric_id in ids:
            run = pulling.metric_pull(metric_id=metric_id, trigger=PullTrigger.MANUAL)
            if run is None:
                continue
            name = Metric.objects.get(pk=metric_id).name
            if run.status == PullStatus.SUCCEEDED:
                self.stdout.write(f"{name}: {run.values_written} values ({run.duration_ms} ms)")
            else:
                failed += 1
                self.stderr.write(f"{name}: failed: {run.error}")
        self.stdout.write(f"{len(ids)} pulled, {failed} failed.")
        if failed:
            raise CommandError(f"{failed} of {len(ids)} pulls failed.")
