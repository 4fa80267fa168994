"""Demo newsletters and subscribers for `manage.py demo_load` (idempotent, DEBUG only)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from outlet.newsletters.models import ConsentRecord, Newsletter, Subscriber, Subscription

NEWSLETTERS = [
    {
        "slug": "daily-briefing",
        "name": "The Daily Briefing",
        "description": "The day's politics in five minutes, every weekday at 7 a.m.",
        "from_name": "The Outlet Daily",
        "from_email": "daily@outlet.test",
        "visibility": Newsletter.Visibility.PUBLIC,
        "position": 1,
    },
    {
        "slug": "weekly-analysis",
        "name": "The Weekly Analysis",
        "description": "One long read on Saturday: what the week meant, and what comes next.",
        "from_name": "The Outlet Weekly",
        "from_email": "weekly@outlet.test",
        "visibility": Newsletter.Visibility.PUBLIC,
        "position": 2,
    },
    {
        "slug": "from-the-editor",
        "name": "From the Editor",
        "description": "A monthly letter to the readers who pay for our work.",
        "from_name": "The Outlet's editor",
        "from_email": "editor@outlet.test",
        "visibility": Newsletter.Visibility.DONORS,
        "position": 3,
    },
]

# (address, status, newsletters, days ago)
SUBSCRIBERS = [
    ("ada.reader@example.org", Subscriber.Status.ACTIVE, ["daily-briefing", "weekly-analysis"], 28),
    ("ben.reader@example.org", Subscriber.Status.ACTIVE, ["daily-briefing"], 21),
    (
        "cleo.donor@example.org",
        Subscriber.Status.ACTIVE,
        ["weekly-analysis", "from-the-editor"],
        14,
    ),
    ("dev.reader@example.org", Subscriber.Status.ACTIVE, ["weekly-analysis"], 6),
    ("eve.pending@example.org", Subscriber.Status.PENDING, ["daily-briefing"], 2),
    ("finn.gone@example.org", Subscriber.Status.UNSUBSCRIBED, [], 18),
]


def newsletter_demo_load() -> str:
    """Create the demo newsletters and a few subscribers if missing; say what was done."""
    newsletters = {}
    for data in NEWSLETTERS:
        newsletters[data["slug"]], _ = Newsletter.objects.get_or_create(
            slug=data["slug"], defaults=data
        )
    now = timezone.now()
    created = 0
    for email, status, slugs, days_ago in SUBSCRIBERS:
        if Subscriber.objects.filter(email=email).exists():
            continue
        joined = now - timedelta(days=days_ago)
        subscriber = Subscriber.objects.create(
            email=email,
            status=status,
            created_at=joined,
            confirmed_at=joined if status != Subscriber.Status.PENDING else None,
            unsubscribed_at=now - timedelta(days=3)
            if status == Subscriber.Status.UNSUBSCRIBED
            else None,
        )
        for slug in slugs:
            Subscription.objects.create(
                subscriber=subscriber,
                newsletter=newsletters[slug],
                confirmed_at=subscriber.confirmed_at,
            )
        ConsentRecord.objects.create(
            subscriber=subscriber,
            kind=ConsentRecord.Kind.SIGNUP,
            form="demo",
            text_shown="Demo data",
            created_at=joined,
        )
        created += 1
    return f"Newsletters: {len(newsletters)}; {created} new demo subscriber(s)."
