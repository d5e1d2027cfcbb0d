from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from valuetree import services


class Command(BaseCommand):
    help = (
        "Issue a new named API token for a user and print it (Authorization: Token <token>). "
        "Only its digest is stored: keep the printed token, it cannot be shown again. "
        "Users list and revoke their tokens at /account/tokens/."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--name", default="issue_token", help="What the token is for (default: issue_token)."
        )
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help=f"Days until it expires (default API_TOKEN_DAYS, {settings.API_TOKEN_DAYS}).",
        )
        parser.add_argument(
            "--rotate",
            action="store_true",
            help="Revoke the user's tokens of the same name before issuing the new one.",
        )

    def handle(
        self, *args, username: str, name: str, days: int | None, rotate: bool, **options
    ) -> None:
        try:
            user = get_user_model().objects.get_by_natural_key(username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user named {username!r}.") from None
        if not user.is_active:
            raise CommandError(f"User {username!r} is inactive; activate them first.")
        issue = services.api_token_rotate if rotate else services.api_token_create
        try:
            token, key = issue(user=user, name=name, days=days)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stderr.write(f"Token {token.name!r} for {username}, expires {token.expiry:%Y-%m-%d}.")
        self.stdout.write(key)
