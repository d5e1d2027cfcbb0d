from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from valuetree import interchange
from valuetree.models import ValueTree


class Command(BaseCommand):
    help = "Export a value tree (with measures and data product links) as JSON or YAML."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--format", choices=interchange.FORMATS, default="yaml")
        parser.add_argument("-o", "--output", help="Write to this file instead of stdout.")

    def handle(self, *args, slug: str, format: str, output: str | None, **options) -> None:
        tree = ValueTree.objects.filter(slug=slug).first()
        if tree is None:
            raise CommandError(f"No tree with slug {slug!r}.")
        body, _ = interchange.tree_export_text(tree=tree, fmt=format)
        if output:
            Path(output).write_bytes(body)
            self.stderr.write(f"Wrote {tree.slug} to {output}.")
        else:
            self.stdout.write(body.decode("utf-8"), ending="")
