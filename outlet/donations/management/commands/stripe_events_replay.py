"""`manage.py stripe_events_replay --since EPOCH_SECONDS`: apply Stripe's events since a
time through the webhook's path (donations/event_replay.py); repeats change nothing."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from outlet.donations.event_replay import stripe_events_replay, unmatched_message


class Command(BaseCommand):
    help = "Apply every Stripe event created since a time (epoch seconds), once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", type=int, required=True, help="Epoch seconds (UTC).")

    def handle(self, *args: object, **options: object) -> None:
        since = options["since"]
        assert isinstance(since, int)
        report = stripe_events_replay(since=since)
        self.stdout.write(report.summary())
        if report.deferred:
            raise CommandError(
                f"{report.deferred} events deferred (Stripe unreachable): run again."
            )
        if report.unmatched:
            raise CommandError(unmatched_message(report.unmatched))
