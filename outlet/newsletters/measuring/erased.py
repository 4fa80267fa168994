"""An erased subscriber's part in each issue's figures, kept as counts.

Contract: `issue_stats_keep_erased(subscriber_id=...)`, called by `subscriber_erase`
before the deletion cascades through deliveries, clicks, opens and events, adds what
the subscriber counted for to each issue's `IssueStats.erased`; `issue_stats_refresh`
adds it back to what it counts, so an issue's figures do not shrink. Counts only:
nothing about the person is kept.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count

from outlet.newsletters.measuring.breakdown import breakdown_add, issue_breakdown
from outlet.newsletters.models import Click, Delivery, DeliveryEvent, IssueStats, Open


def issue_stats_keep_erased(*, subscriber_id: int) -> None:
    """Before a subscriber's deliveries are erased, add what they counted for to each
    issue's `IssueStats.erased`, so the figures stay (counts, not people)."""
    per_issue: dict[int, dict[str, int]] = {}
    deliveries = Delivery.objects.filter(subscriber_id=subscriber_id).values_list(
        "id", "issue_id", "status"
    )
    ids = [d[0] for d in deliveries]
    if not ids:
        return
    events = set(
        DeliveryEvent.objects.filter(delivery_id__in=ids).values_list("delivery_id", "kind")
    )
    clicks = dict(
        Click.objects.filter(delivery_id__in=ids)
        .values_list("delivery_id")
        .annotate(n=Count("id"))
        .values_list("delivery_id", "n")
    )
    human = set(
        Open.objects.filter(delivery_id__in=ids, machine=False).values_list(
            "delivery_id", flat=True
        )
    )
    opened = set(Open.objects.filter(delivery_id__in=ids).values_list("delivery_id", flat=True))
    for delivery_id, issue_id, status in deliveries:
        counts = per_issue.setdefault(issue_id, {})
        contributions = {
            "sent": status == Delivery.Status.SENT,
            "bounced": (delivery_id, DeliveryEvent.Kind.BOUNCE) in events,
            "complaints": (delivery_id, DeliveryEvent.Kind.COMPLAINT) in events,
            "unsubscribed": (delivery_id, DeliveryEvent.Kind.UNSUBSCRIBE) in events,
            "opened": delivery_id in opened,
            "opened_machine": delivery_id in opened
            and delivery_id not in human
            and delivery_id not in clicks,
            "clicks": clicks.get(delivery_id, 0),
            "clicked": delivery_id in clicks,
        }
        for name, value in contributions.items():
            counts[name] = counts.get(name, 0) + int(value)
    with transaction.atomic():
        for issue_id, counts in per_issue.items():
            stats, _ = IssueStats.objects.select_for_update().get_or_create(issue_id=issue_id)
            for name, value in counts.items():
                stats.erased[name] = int(stats.erased.get(name, 0)) + value
            theirs = issue_breakdown(
                issue_id=issue_id, delivery_ids=[d[0] for d in deliveries if d[1] == issue_id]
            )
            stats.erased["breakdown"] = breakdown_add(stats.erased.get("breakdown", {}), theirs)
            stats.save(update_fields=["erased"])
