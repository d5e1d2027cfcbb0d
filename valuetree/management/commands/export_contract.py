from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from valuetree import standards


class Command(BaseCommand):
    help = "Export the data contract of a product's output port as Bitol ODCS YAML."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The data product's slug.")
        parser.add_argument("port", help="The output port's name.")
        parser.add_argument("-o", "--output", help="Write to this file instead of stdout.")

    def handle(self, *args, slug: str, port: str, output: str | None, **options) -> None:
        contract = standards.contract_for_port(slug=slug, port=port)
        if contract is None:
            raise CommandError(f"No data contract for port {port!r} of {slug!r}.")
        body = standards.to_yaml([standards.contract_to_odcs(contract)])
        if output:
            Path(output).write_text(body, encoding="utf-8")
            self.stderr.write(f"Wrote contract {contract.contract_id} to {output}.")
        else:
            self.stdout.write(body, ending="")
