"""`demo_load --dataset N`: the synthetic audience anyone can load to try outlet at scale."""

import pytest
from django.core.management import CommandError, call_command

from outlet.core.demo_dataset import demo_dataset_load
from outlet.newsletters.models import Delivery, Issue, Newsletter, Segment, Subscriber
from outlet.newsletters.selectors import newsletter_recipients

pytestmark = pytest.mark.django_db


def test_dataset_has_a_fifth_donors_a_tenth_lapsed_and_sent_issues():
    counts = demo_dataset_load(subscribers=200, issues=2)

    assert counts["subscribers"] == 200
    assert counts["donations"] == 40
    daily = Newsletter.objects.get(slug="daily-briefing")
    assert newsletter_recipients(daily, Segment.DONORS).count() == 40
    assert newsletter_recipients(daily, Segment.LAPSED_DONORS).count() == 20
    active = Subscriber.objects.filter(
        email__endswith="@dataset.outlet.test", status=Subscriber.Status.ACTIVE
    ).count()
    sent = Issue.objects.filter(status=Issue.Status.SENT)
    assert sent.count() == 2
    for issue in sent:
        assert issue.planned_count == active
        assert Delivery.objects.filter(issue=issue, status=Delivery.Status.SENT).count() == active
    # Bounced addresses are suppressed, so no send reaches them.
    assert (
        newsletter_recipients(daily).count()
        == Subscriber.objects.mailable()
        .filter(subscriptions__newsletter=daily, subscriptions__confirmed_at__isnull=False)
        .count()
    )
    assert not newsletter_recipients(daily).filter(status=Subscriber.Status.BOUNCED).exists()


def test_demo_load_dataset_refuses_to_load_twice(settings):
    settings.DEBUG = True
    demo_dataset_load(subscribers=20, issues=0)
    with pytest.raises(CommandError, match="already loaded"):
        call_command("demo_load", "--dataset", "20", stdout=None)
