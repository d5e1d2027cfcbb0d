"""manage.py import_glossary FILE | --defaults: create or update business glossary
terms from YAML (``terms: [...]``) or CSV (by the file's extension)."""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from valuetree import services

DEFAULTS = Path(__file__).resolve().parents[2] / "demo" / "glossary.yaml"


class Command(BaseCommand):
    help = "Import business glossary terms from YAML or CSV (all or nothing)."

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", help="A .yaml/.yml or .csv file.")
        parser.add_argument(
            "--defaults",
            action="store_true",
            help="Import the default set of common business synonyms and abbreviations.",
        )

    def handle(self, *args, file: str | None, defaults: bool, **options) -> None:
        if bool(file) == defaults:
            raise CommandError("Give a file or --defaults (one of them).")
        path = DEFAULTS if defaults else Path(file)
        if not path.is_file():
            raise CommandError(f"No file {path}.")
        fmt = "csv" if path.suffix.lower() == ".csv" else "yaml"
        try:
            rows = services.glossary_rows_from_text(path.read_bytes(), fmt=fmt)
            counts = services.glossary_import(rows=rows, by=None)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        # The worker re-embeds after a glossary change; a command run does it now.
        services.data_product_embeddings_refresh()
        self.stdout.write(f"Glossary: {counts['created']} created, {counts['updated']} updated.")
