"""Sign-up from the newsletter page and the sign-up boxes: double opt-in, no enumeration."""

import re

import pytest
from django.core import mail
from django.urls import reverse

from outlet.core.addresses import email_digest
from outlet.newsletters.models import ConsentRecord, Subscriber, Subscription, Suppression
from outlet.newsletters.selectors import newsletter_recipients
from outlet.newsletters.services import subscriber_signup, subscriber_unsubscribe
from tests.factories import SubscriberFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_tasks")]


def signup(client, email, *newsletters, **extra):
    data = {"email": email, "newsletters": [n.pk for n in newsletters], **extra}
    return client.post(reverse("newsletters:index"), data, REMOTE_ADDR="203.0.113.7")


def confirm_link(message) -> str:
    return re.search(r"https?://\S+/newsletter/confirm/\S+/", message.body).group(0)


def test_signup_sends_one_confirmation_and_stays_pending(
    client, daily, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = signup(client, "  Reader@Example.COM ", daily, page_url="/some-article/")

    assert response.status_code == 302
    assert response["Location"] == reverse("newsletters:thanks")
    subscriber = Subscriber.objects.get()
    assert subscriber.email == "reader@example.com"
    assert subscriber.status == Subscriber.Status.PENDING
    assert not subscriber.is_mailable
    consent = ConsentRecord.objects.get(kind=ConsentRecord.Kind.SIGNUP)
    assert consent.ip == "203.0.113.7"
    assert consent.page_url.endswith("/some-article/")
    assert "unsubscribe" in consent.text_shown
    assert consent.newsletters == "The Daily Briefing"
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["reader@example.com"]
    assert "reader@example.com" not in confirm_link(mail.outbox[0])


def test_following_the_confirmation_link_activates(
    client, daily, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        signup(client, "reader@example.com", daily)
    link = confirm_link(mail.outbox[0])

    page = client.get(link)
    assert page.status_code == 200
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING  # GET changes nothing

    response = client.post(link)
    assert response.status_code == 200
    assert b"subscribed" in response.content
    subscriber = Subscriber.objects.get()
    assert subscriber.status == Subscriber.Status.ACTIVE
    assert subscriber.is_mailable
    assert Subscription.objects.get().confirmed_at is not None


def test_answer_is_identical_for_new_pending_active_and_unsubscribed(client, daily, weekly):
    SubscriberFactory(email="active@example.com", newsletters=[daily])
    SubscriberFactory(email="pending@example.com", status=Subscriber.Status.PENDING)
    SubscriberFactory(email="gone@example.com", status=Subscriber.Status.UNSUBSCRIBED)
    Suppression.objects.create(email_hash=email_digest("blocked@example.com"), reason="complaint")

    answers = []
    for email in ("new@example.com", "pending@example.com", "active@example.com",
                  "gone@example.com", "blocked@example.com"):  # fmt: skip
        response = signup(client, email, daily)
        followed = client.get(response["Location"])
        answers.append((response.status_code, response["Location"], followed.content))
    assert len(set(answers)) == 1


def test_active_subscriber_is_not_changed_by_someone_else_signing_them_up(
    client, daily, weekly, django_capture_on_commit_callbacks
):
    subscriber = SubscriberFactory(email="active@example.com", newsletters=[daily])
    with django_capture_on_commit_callbacks(execute=True):
        signup(client, "active@example.com", weekly)

    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE
    weekly_choice = Subscription.objects.get(subscriber=subscriber, newsletter=weekly)
    assert weekly_choice.confirmed_at is None  # waits for the owner to confirm
    assert list(newsletter_recipients(weekly)) == []
    assert len(mail.outbox) == 1


def test_signup_again_after_unsubscribing_works(client, daily, django_capture_on_commit_callbacks):
    subscriber = SubscriberFactory(email="back@example.com", newsletters=[daily])
    subscriber_unsubscribe(subscriber=subscriber)
    with django_capture_on_commit_callbacks(execute=True):
        signup(client, "back@example.com", daily)
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.PENDING

    client.post(confirm_link(mail.outbox[-1]))
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE
    assert subscriber.unsubscribed_at is None


def test_confirmation_is_not_resent_within_the_interval(
    client, daily, settings, django_capture_on_commit_callbacks
):
    settings.NEWSLETTER_CONFIRM_RESEND_SECONDS = 600
    with django_capture_on_commit_callbacks(execute=True):
        signup(client, "reader@example.com", daily)
        signup(client, "reader@example.com", daily)
        signup(client, "READER@example.com", daily)
    assert len(mail.outbox) == 1
    assert Subscriber.objects.count() == 1


def test_honeypot_filled_stores_nothing_and_answers_the_same(client, daily):
    response = signup(client, "bot@example.com", daily, website="http://spam.example")
    assert response.status_code == 302
    assert response["Location"] == reverse("newsletters:thanks")
    assert not Subscriber.objects.exists()


def test_rate_limit_per_ip(client, daily, settings):
    settings.NEWSLETTER_SIGNUP_RATE_PER_IP = 3
    codes = [signup(client, f"r{n}@example.com", daily).status_code for n in range(5)]
    assert codes == [302, 302, 302, 429, 429]
    assert Subscriber.objects.count() == 3


def test_rate_limit_per_ip_counts_an_ipv6_64_as_one_client(client, daily, settings):
    """A host holds a whole /64: each of its addresses is not a new client."""
    settings.NEWSLETTER_SIGNUP_RATE_PER_IP = 3
    codes = [
        client.post(
            reverse("newsletters:index"),
            {"email": f"r{n}@example.com", "newsletters": [daily.pk]},
            REMOTE_ADDR=f"2001:db8:5:6::{n + 1:x}",
        ).status_code
        for n in range(5)
    ]
    assert codes == [302, 302, 302, 429, 429]
    assert Subscriber.objects.count() == 3


def test_rate_limit_per_address(client, daily, settings):
    settings.NEWSLETTER_SIGNUP_RATE_PER_EMAIL = 2
    codes = [
        client.post(
            reverse("newsletters:index"),
            {"email": "same@example.com", "newsletters": [daily.pk]},
            REMOTE_ADDR=f"198.51.100.{n}",
        ).status_code
        for n in range(4)
    ]
    assert codes == [302, 302, 429, 429]


@pytest.mark.parametrize(
    "email",
    ["not-an-address", "a@b", "x" * 250 + "@example.com", "", "two@@example.com"],
)
def test_malformed_addresses_get_a_clear_message_and_store_nothing(client, daily, email):
    response = signup(client, email, daily)
    assert response.status_code == 400
    assert any(
        message in response.content
        for message in (b"Enter a valid email address", b"Enter your email", b"too long")
    )
    assert not Subscriber.objects.exists()


def test_no_newsletter_chosen_is_refused(client, daily):
    response = client.post(reverse("newsletters:index"), {"email": "r@example.com"})
    assert response.status_code == 400
    assert b"Choose at least one newsletter" in response.content


def test_donors_only_newsletter_cannot_be_chosen_on_the_public_form(client, daily):
    from tests.factories import NewsletterFactory

    donors = NewsletterFactory(slug="donors", visibility="donors")
    response = signup(client, "r@example.com", donors)
    assert response.status_code == 400
    assert not Subscriber.objects.exists()


def test_donation_opt_in_creates_a_pending_subscription(daily, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        subscriber = subscriber_signup(
            email="Donor@Example.com",
            newsletters=[daily],
            source=Subscriber.Source.DONATION,
            form="donation",
            page_url="http://testserver/donate/",
            consent_text="Send me the daily briefing",
            ip="192.0.2.1",
        )
    assert subscriber.status == Subscriber.Status.PENDING
    assert subscriber.source == Subscriber.Source.DONATION
    assert subscriber.consent_records.get().kind == ConsentRecord.Kind.DONATION
    assert len(mail.outbox) == 1


def test_signup_page_lists_public_newsletters(client, daily, weekly):
    response = client.get(reverse("newsletters:index"))
    assert response.status_code == 200
    assert b"The Daily Briefing" in response.content
    assert b"The Weekly Analysis" in response.content
    assert b'name="website"' in response.content


def test_donation_opt_in_without_a_choice_means_the_main_and_donor_newsletters(
    daily, weekly, django_capture_on_commit_callbacks
):
    from tests.factories import NewsletterFactory

    donors = NewsletterFactory(name="From the Editor", slug="donors", visibility="donors")
    with django_capture_on_commit_callbacks(execute=True):
        subscriber = subscriber_signup(email="giver@example.com", source="donation:17")
    assert subscriber.source == Subscriber.Source.DONATION
    assert subscriber.consent_records.get().form == "donation:17"
    chosen = {s.newsletter for s in subscriber.subscriptions.all()}
    assert chosen == {daily, donors}
    assert all(s.confirmed_at is None for s in subscriber.subscriptions.all())


def test_overlong_hidden_fields_are_cut_not_refused(client, daily):
    response = signup(
        client, "r@example.com", daily, page_url="/" + "a" * 5000, form_name="b" * 500
    )
    assert response.status_code == 302
    consent = ConsentRecord.objects.get()
    assert len(consent.page_url) <= 500
    assert consent.form == "b" * 80


def test_suppressed_address_gets_no_confirmation_even_if_queued(daily):
    from outlet.newsletters.tasks import subscriber_confirmation_send_task

    subscriber = subscriber_signup(email="late-bounce@example.com", newsletters=[daily])
    Suppression.objects.create(email_hash=subscriber.email_hash, reason="hard_bounce")
    subscriber_confirmation_send_task(subscriber.pk, "2026-01-01T00:00:00")
    assert mail.outbox == []


def test_behind_the_proxy_the_rate_limit_counts_the_forwarded_client(client, daily, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.NEWSLETTER_SIGNUP_RATE_PER_IP = 1
    url = reverse("newsletters:index")
    codes = [
        client.post(
            url,
            {"email": f"r{n}@example.com", "newsletters": [daily.pk]},
            REMOTE_ADDR="10.0.0.1",  # the proxy
            HTTP_X_FORWARDED_FOR=f"6.6.6.6, 198.51.100.{n}",
        ).status_code
        for n in range(3)
    ]
    assert codes == [302, 302, 302]
    assert ConsentRecord.objects.filter(ip="198.51.100.2").exists()


def test_a_confirmation_that_failed_to_send_is_sent_on_the_retry(daily, settings):
    from outlet.newsletters.tasks import subscriber_confirmation_send_task
    from tests.conftest import free_port

    subscriber = subscriber_signup(email="retry@example.com", newsletters=[daily])
    mail.outbox.clear()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nothing listens

    with pytest.raises(OSError):
        subscriber_confirmation_send_task(subscriber.pk, "2026-01-01T00:00:00")

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    subscriber_confirmation_send_task(subscriber.pk, "2026-01-01T00:00:00")
    subscriber_confirmation_send_task(subscriber.pk, "2026-01-01T00:00:00")
    assert [m.to for m in mail.outbox] == [["retry@example.com"]]
