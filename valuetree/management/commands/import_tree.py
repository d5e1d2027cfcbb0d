from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from valuetree import interchange


class Command(BaseCommand):
    help = (
        "Create a value tree from a JSON or YAML document (see `export_tree`). "
        "Nothing is written unless the whole document is valid."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "path", help="The document; its extension (.json/.yaml) sets the format."
        )
        parser.add_argument("--owner", required=True, help="Username of the tree's owner.")
        parser.add_argument("--slug", help="Import under this slug instead of the document's.")

    def handle(self, *args, path: str, owner: str, slug: str | None, **options) -> None:
        User = get_user_model()
        try:
            owner_user = User.objects.get_by_natural_key(owner)
        except User.DoesNotExist:
            raise CommandError(f"No user named {owner!r}.") from None
        file = Path(path)
        if not file.is_file():
            raise CommandError(f"No file at {path}.")
        fmt = interchange.guess_format(filename=file.name)
        try:
            tree = interchange.tree_import_text(
                file.read_bytes(), fmt=fmt, owner=owner_user, slug=slug, operator=True
            )
        except interchange.ImportFailed as failed:
            lines = "\n".join(f"  {problem}" for problem in failed.problems)
            raise CommandError(
                f"{file.name} was not imported; nothing was written:\n{lines}"
            ) from None
        self.stdout.write(f"Imported tree {tree.slug!r} ({tree.nodes.count()} nodes).")
