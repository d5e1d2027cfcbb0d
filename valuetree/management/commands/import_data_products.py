from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from valuetree import interchange, standards


def user_named(username: str | None):
    """The user ``--user`` names, or None (the operator) when it names none."""
    if not username:
        return None
    User = get_user_model()
    try:
        return User.objects.get_by_natural_key(username)
    except User.DoesNotExist:
        raise CommandError(f"No user named {username!r}.") from None


def read_document(path: str) -> tuple[bytes, str]:
    file = Path(path)
    if not file.is_file():
        raise CommandError(f"No file at {path}.")
    return file.read_bytes(), interchange.guess_format(filename=file.name)


def refused(path: str, failed: interchange.ImportFailed) -> CommandError:
    lines = "\n".join(f"  {problem}" for problem in failed.problems)
    return CommandError(f"{Path(path).name} was not imported; nothing was written:\n{lines}")


class Command(BaseCommand):
    help = (
        "Create or update data products from Bitol ODPS YAML (one product per `---` "
        "document, or a list). Nothing is written unless every product is valid."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="The ODPS document (.yaml, or .json).")
        parser.add_argument(
            "--user",
            help="Import as this user: owner of new products without a team owner, and "
            "may change only the products they may edit. Default: as the operator.",
        )

    def handle(self, *args, path: str, user: str | None, **options) -> None:
        importer = user_named(user)
        raw, fmt = read_document(path)
        try:
            products = standards.odps_import_text(raw, user=importer, fmt=fmt)
        except interchange.ImportFailed as failed:
            raise refused(path, failed) from None
        slugs = ", ".join(product.slug for product in products)
        self.stdout.write(f"Imported {len(products)} data product(s): {slugs}.")
