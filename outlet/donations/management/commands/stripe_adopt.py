"""`manage.py stripe_adopt [--price ID …] [--product ID …] [--metadata KEY=VALUE …] [--dry-run]`:
the Stripe account's existing subscriptions become donors and gifts here (read-only at
Stripe; see donations/services/adoption.py)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from outlet.donations import services, stripe_gateway


class Command(BaseCommand):
    help = "Adopt the Stripe account's existing subscriptions as recurring gifts (read-only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--price", action="append", default=[], help="Only subscriptions to this price or plan."
        )
        parser.add_argument(
            "--product", action="append", default=[], help="Only subscriptions to this product."
        )
        parser.add_argument(
            "--metadata",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="Only subscriptions whose metadata has KEY=VALUE.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Report only; write nothing.")

    def handle(self, *args, **options) -> None:
        try:
            adoption_filter = services.adoption_filter_parse(
                prices=options["price"], products=options["product"], metadata=options["metadata"]
            )
        except ValueError as error:
            raise CommandError(str(error)) from error
        try:
            report = services.subscriptions_adopt(
                adoption_filter=adoption_filter, dry_run=options["dry_run"]
            )
        except stripe_gateway.StripeError as error:
            raise CommandError(
                f"Stripe could not be read ({type(error).__name__}: {error.user_message or ''}); "
                "subscriptions adopted before it stay adopted, a new run continues."
            ) from error
        for line in report.lines:
            self.stdout.write(line)
        if report.dry_run:
            self.stdout.write("dry run: nothing was written.")
        self.stdout.write(report.summary)
