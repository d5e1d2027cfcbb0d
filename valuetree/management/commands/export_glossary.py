"""manage.py export_glossary [--csv] [-o FILE]: the business glossary as YAML or CSV."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand

from valuetree import selectors


class Command(BaseCommand):
    help = "Export the business glossary as YAML (default) or CSV."

    def add_arguments(self, parser):
        parser.add_argument("--csv", action="store_true", help="CSV instead of YAML.")
        parser.add_argument("-o", "--output", help="Write to this file instead of stdout.")

    def handle(self, *args, csv: bool, output: str | None, **options) -> None:
        body = selectors.glossary_export(fmt="csv" if csv else "yaml")
        if output:
            Path(output).write_text(body, encoding="utf-8")
            self.stderr.write(f"Wrote the glossary to {output}.")
        else:
            self.stdout.write(body, ending="")
