"""`manage.py heartbeat_check beat|worker`: exit 0 when that heartbeat is recent, else 1.

For container health checks (compose.yaml's beat service).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from ops.models import Heartbeat


class Command(BaseCommand):
    help = "Exit 0 when beat's (or a worker's) last heartbeat is recent enough, else 1."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", choices=["beat", "worker"])
        parser.add_argument(
            "--max-age", type=int, help="Seconds (default READY_BEAT_MAX_AGE / ..._WORKER_...)."
        )

    def handle(self, *args: Any, name: str, max_age: int | None, **options: Any) -> None:
        if max_age is None:
            max_age = (
                settings.READY_BEAT_MAX_AGE if name == "beat" else settings.READY_WORKER_MAX_AGE
            )
        at = Heartbeat.objects.filter(name=name).values_list("at", flat=True).first()
        if at is None:
            raise CommandError(f"No heartbeat from {name} yet.")
        age = (timezone.now() - at).total_seconds()
        if age > max_age:
            raise CommandError(f"The last heartbeat of {name} is {age:.0f} s old (> {max_age} s).")
        self.stdout.write(f"{name}: last heartbeat {age:.0f} s ago")
