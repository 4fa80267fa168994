"""Many subscribers at once, for the tests that send to thousands."""

from __future__ import annotations

from django.utils import timezone

from outlet.core.addresses import email_digest
from outlet.newsletters.models import Newsletter, Subscriber, Subscription


def subscribers_bulk_create(*, newsletter: Newsletter, count: int, prefix: str = "r") -> list[str]:
    """`count` active subscribers with confirmed subscriptions; returns their addresses."""
    now = timezone.now()
    emails = [f"{prefix}{n}@example.com" for n in range(count)]
    Subscriber.objects.bulk_create(
        [
            Subscriber(
                email=email,
                email_hash=email_digest(email),
                status=Subscriber.Status.ACTIVE,
                confirmed_at=now,
            )
            for email in emails
        ],
        batch_size=2000,
    )
    ids = Subscriber.objects.filter(email__in=emails).values_list("pk", flat=True)
    Subscription.objects.bulk_create(
        [Subscription(subscriber_id=pk, newsletter=newsletter, confirmed_at=now) for pk in ids],
        batch_size=2000,
    )
    return emails
