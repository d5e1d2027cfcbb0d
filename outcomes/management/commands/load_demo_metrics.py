"""`manage.py load_demo_metrics`: metric sources for the demo tree that work offline.

Run after `load_demo`. Safe to run again: sources and metrics are found by name, the
demo warehouse is rewritten up to today, and check-ins are added only once.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from outcomes.demo import load_demo_metrics
from valuetree.models import ValueTree


class Command(BaseCommand):
    help = "Add offline demo metric sources (SQL, HTTP JSON, push) to the demo tree."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url",
            default="http://127.0.0.1:8000/",
            help="Where this server runs: the demo HTTP source reads its /demo/live-metrics/.",
        )

    def handle(self, *args: Any, url: str, **options: Any) -> None:
        try:
            result = load_demo_metrics(base_url=url)
        except ValueTree.DoesNotExist:
            raise CommandError("There is no demo tree: run `manage.py load_demo` first.") from None
        self.stdout.write(
            f"Demo metrics: {result['metrics']} metrics in tree {result['tree'].slug}; "
            f"warehouse {result['warehouse']}."
        )
        if not settings.DEMO_ENDPOINTS:
            self.stderr.write(
                self.style.WARNING(
                    "DEMO_ENDPOINTS is off, so /demo/live-metrics/ is not served and the "
                    "live demo metric will fail its pulls."
                )
            )
