from __future__ import annotations

from django.core.management.base import BaseCommand

from valuetree import interchange, standards
from valuetree.management.commands.import_data_products import (
    read_document,
    refused,
    user_named,
)


class Command(BaseCommand):
    help = (
        "Attach a Bitol ODCS data contract to an output port (the contract with the "
        "same id, else --product/--port, else the document's dataProduct and "
        "outputPort). Nothing is written unless the contract is valid."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="The ODCS document (.yaml, or .json).")
        parser.add_argument("--user", help="Import as this user. Default: as the operator.")
        parser.add_argument("--product", help="The data product's slug.")
        parser.add_argument("--port", help="The output port's name.")
        parser.add_argument(
            "--create-port",
            metavar="KIND",
            help="Create the port, of this kind (table, api, file…), when it does not exist.",
        )

    def handle(
        self,
        *args,
        path: str,
        user: str | None,
        product: str | None,
        port: str | None,
        create_port: str | None,
        **options,
    ) -> None:
        importer = user_named(user)
        raw, fmt = read_document(path)
        try:
            contract = standards.odcs_import_text(
                raw,
                fmt=fmt,
                user=importer,
                product_slug=product,
                port_name=port,
                create_port_kind=create_port,
            )
        except interchange.ImportFailed as failed:
            raise refused(path, failed) from None
        port_row = contract.output_port
        self.stdout.write(
            f"Imported contract {contract.contract_id!r} for port {port_row.name!r} "
            f"of {port_row.data_product.slug!r}."
        )
