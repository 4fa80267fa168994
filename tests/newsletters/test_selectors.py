"""Who an issue reaches: newsletter_recipients and its segments."""

from datetime import timedelta

import pytest
from django.apps import apps
from django.utils import timezone

from outlet.newsletters.models import Segment, Subscriber, Subscription, Suppression
from outlet.newsletters.selectors import newsletter_recipients
from outlet.newsletters.services import email_suppress, subscriber_signup
from tests.factories import SubscriberFactory

pytestmark = pytest.mark.django_db


def paid_donation(email: str, days_ago: int) -> None:
    donor_model = apps.get_model("donations", "Donor")
    donation_model = apps.get_model("donations", "Donation")
    donor, _ = donor_model.objects.get_or_create(email=email)
    donation_model.objects.create(
        donor=donor,
        amount=2500,
        currency="usd",
        status="paid",
        paid_at=timezone.now() - timedelta(days=days_ago),
    )


def emails(queryset) -> list[str]:
    return [s.email for s in queryset]


def test_recipients_are_active_confirmed_unsuppressed_unpaused_in_id_order(daily, weekly):
    first = SubscriberFactory(email="a@example.com", newsletters=[daily])
    SubscriberFactory(email="weekly-only@example.com", newsletters=[weekly])
    SubscriberFactory(email="gone@example.com", newsletters=[daily], status="unsubscribed")
    bounced = SubscriberFactory(email="bounced@example.com", newsletters=[daily])
    email_suppress(email=bounced.email, reason=Suppression.Reason.HARD_BOUNCE)
    paused = SubscriberFactory(email="paused@example.com", newsletters=[daily])
    Subscription.objects.filter(subscriber=paused).update(
        paused_until=timezone.localdate() + timedelta(days=3)
    )
    resumed = SubscriberFactory(email="resumed@example.com", newsletters=[daily])
    Subscription.objects.filter(subscriber=resumed).update(
        paused_until=timezone.localdate() - timedelta(days=1)
    )
    last = SubscriberFactory(email="z@example.com", newsletters=[daily])
    subscriber_signup(email="pending@example.com", newsletters=[daily])

    assert emails(newsletter_recipients(daily)) == [first.email, resumed.email, last.email]


def test_suppressed_address_is_never_a_recipient_even_if_marked_active(daily):
    subscriber = SubscriberFactory(email="x@example.com", newsletters=[daily])
    Suppression.objects.create(email_hash=subscriber.email_hash, reason="manual")
    Subscriber.objects.filter(pk=subscriber.pk).update(status="active")
    assert not newsletter_recipients(daily).exists()
    subscriber.refresh_from_db()
    assert not subscriber.is_mailable


def test_donor_segments(daily):
    SubscriberFactory(email="recent-donor@example.com", newsletters=[daily])
    SubscriberFactory(email="lapsed-donor@example.com", newsletters=[daily])
    SubscriberFactory(email="never@example.com", newsletters=[daily])
    paid_donation("Recent-Donor@example.com", days_ago=20)
    paid_donation("recent-donor@example.com", days_ago=500)
    paid_donation("lapsed-donor@example.com", days_ago=400)

    assert emails(newsletter_recipients(daily, Segment.DONORS)) == [
        "recent-donor@example.com",
        "lapsed-donor@example.com",
    ]
    assert emails(newsletter_recipients(daily, Segment.NON_DONORS)) == ["never@example.com"]
    assert emails(newsletter_recipients(daily, Segment.LAPSED_DONORS)) == [
        "lapsed-donor@example.com"
    ]


def test_recent_signups_segment(daily):
    SubscriberFactory(
        email="old@example.com",
        newsletters=[daily],
        confirmed_at=timezone.now() - timedelta(days=90),
    )
    SubscriberFactory(email="new@example.com", newsletters=[daily])
    assert emails(newsletter_recipients(daily, Segment.RECENT)) == ["new@example.com"]


def test_preferences_offer_donors_only_newsletters_to_donors_alone(daily):
    from outlet.newsletters.selectors import newsletter_choices_for
    from tests.factories import NewsletterFactory

    donors_only = NewsletterFactory(slug="from-the-editor", visibility="donors")
    NewsletterFactory(slug="retired", is_active=False)
    donor = SubscriberFactory(email="giver@example.com", newsletters=[daily])
    reader = SubscriberFactory(email="reader@example.com", newsletters=[daily])
    paid_donation("giver@example.com", days_ago=3)

    assert set(newsletter_choices_for(subscriber=donor)) == {daily, donors_only}
    assert set(newsletter_choices_for(subscriber=reader)) == {daily}


def test_a_donors_only_newsletter_reaches_only_those_who_gave_however_they_got_on_it(daily):
    """A confirmed subscription alone is no proof of giving: an import, an opt-in made
    at a checkout never paid, a gift refunded since. The rule holds at send time."""
    from outlet.newsletters.models import Newsletter

    daily.visibility = Newsletter.Visibility.DONORS
    daily.save()
    SubscriberFactory(email="gave@example.com", newsletters=[daily])
    paid_donation("gave@example.com", days_ago=400)
    SubscriberFactory(email="imported@example.com", newsletters=[daily])
    SubscriberFactory(email="refunded@example.com", newsletters=[daily])
    paid_donation("refunded@example.com", days_ago=3)
    apps.get_model("donations", "Donation").objects.filter(
        donor__email="refunded@example.com"
    ).update(status="refunded")
    assert emails(newsletter_recipients(daily)) == ["gave@example.com"]
    assert emails(newsletter_recipients(daily, Segment.NON_DONORS)) == []
    first = Subscriber.objects.get(email="gave@example.com")
    assert emails(newsletter_recipients(daily, after_id=first.pk)) == []
