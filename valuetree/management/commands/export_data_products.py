from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from valuetree import standards


class Command(BaseCommand):
    help = "Export data products as Bitol ODPS YAML (one `---` document per product)."

    def add_arguments(self, parser):
        parser.add_argument("slugs", nargs="*", metavar="SLUG", help="Default: every product.")
        parser.add_argument("-o", "--output", help="Write to this file instead of stdout.")

    def handle(self, *args, slugs: list[str], output: str | None, **options) -> None:
        products = standards.products_for_export(slugs=slugs or None)
        if slugs:
            missing = sorted(set(slugs) - {product.slug for product in products})
            if missing:
                raise CommandError(f"No data product with slug {', '.join(missing)}.")
        body = standards.to_yaml([standards.data_product_to_odps(p) for p in products])
        if output:
            Path(output).write_text(body, encoding="utf-8")
            self.stderr.write(f"Wrote {len(products)} data product(s) to {output}.")
        else:
            self.stdout.write(body, ending="")
