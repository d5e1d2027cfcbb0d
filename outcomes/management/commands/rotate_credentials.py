"""`manage.py rotate_credentials`: re-encrypt every source's credentials with the newest key.

Rotate a key: put a new key in front of CREDENTIALS_KEYS (keep the old one after it),
restart, run this command, then remove the old key.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from outcomes.credentials import CredentialsUnreadable
from outcomes.services import credentials_rotate_all


class Command(BaseCommand):
    help = "Re-encrypt all metric source credentials with the first key in CREDENTIALS_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with transaction.atomic():
                rotated = credentials_rotate_all()
        except CredentialsUnreadable as error:
            raise CommandError(f"Nothing was changed: {error}") from None
        self.stdout.write(f"{rotated} sources re-encrypted with the newest key.")
