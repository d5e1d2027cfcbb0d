"""manage.py rebuild_embeddings [--all]: (re)compute the similarity embeddings of the
catalogue's data products, now, in this process."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from valuetree import services
from valuetree.models import DataProductEmbedding


class Command(BaseCommand):
    help = "Compute the text embeddings used to find similar data products."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--all",
            action="store_true",
            help="Recompute every embedding, not only those whose text changed.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["all"]:
            DataProductEmbedding.objects.all().delete()
        count = services.data_product_embeddings_refresh()
        self.stdout.write(f"Embedded {count} data product(s).")
