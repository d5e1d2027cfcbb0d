"""`manage.py prune_history`: what the daily `prune_history` task does, now.

Deletes verdicts older than VERDICT_HISTORY_DAYS and pull runs older than
PULL_RUN_HISTORY_DAYS, keeping what outcomes/retention.py says is evidence, expired
API tokens and what has been in a tree's trash longer than 30 days.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from outcomes.retention import history_prune


class Command(BaseCommand):
    help = (
        "Prune old verdicts and pull runs to the configured history, expired API "
        "tokens and trash older than 30 days (as the daily task does)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        pruned = history_prune()
        self.stdout.write(
            f"Deleted {pruned['verdicts']} verdict(s), {pruned['pull_runs']} pull run(s), "
            f"{pruned['api_tokens']} expired API token(s) and {pruned['trash']} trashed "
            "subtree(s) older than 30 days."
        )
