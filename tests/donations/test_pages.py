"""Reader pages, self-service links and the editors' admin."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from outlet.donations import services
from outlet.donations.models import Donation, Donor, DonorEmail, Gift
from tests.factories import CampaignFactory, DonationFactory, DonorFactory, GiftFactory

pytestmark = pytest.mark.django_db


def test_donate_page_shows_presets_campaign_and_loads_stripe_from_its_origin(client, settings):
    campaign = CampaignFactory(name="Election fund", goal_amount=1_000_000)
    DonationFactory(campaign=campaign, status=Donation.Status.PAID, amount=250_000)

    response = client.get("/donate/?source=some-article&utm_source=newsletter")

    html = response.content.decode()
    assert response.status_code == 200
    assert "Election fund" in html
    assert "$2,500" in html and "$10,000" in html
    for preset in ("$10", "$25", "$50", "$100"):
        assert f"<span>{preset}</span>" in html
    assert 'value="some-article"' in html
    assert 'value="newsletter"' in html
    assert "<noscript>" in html
    # Stripe.js by its origin, our script from 'self': no per-request nonce in the page.
    stripe_origin = "/".join(settings.STRIPE_JS_URL.split("/")[:3])
    assert f"script-src 'self' {stripe_origin};" in response["Content-Security-Policy"]
    assert f'<script src="{settings.STRIPE_JS_URL}"' in html
    assert "nonce" not in html
    assert " style=" not in html


def post_submit(client, **overrides):
    data = {
        "amount_choice": "other",
        "custom_amount": "25",
        "frequency": "once",
        "name": "Ada Reader",
        "email": "ada@example.test",
        "source": "an-article",
        "utm_campaign": "spring",
        "campaign": "",
    }
    data.update(overrides)
    return client.post(reverse("donations:checkout-intent"), data)


@pytest.mark.parametrize("amount", ["1", "20000"])
def test_amount_outside_limits_is_refused_on_the_server(client, amount):
    response = post_submit(client, custom_amount=amount)
    assert response.status_code == 400
    assert "between $3.00 and $10,000.00" in str(response.json()["fields"])
    assert not Donation.objects.exists()


def test_unknown_preset_is_refused(client):
    response = post_submit(client, amount_choice="123456", custom_amount="")
    assert response.status_code == 400
    assert not Donation.objects.exists()


def test_submit_records_attribution_and_returns_the_payments_secret(client, localstripe):
    response = post_submit(client, newsletter_opt_in="on", public_credit="on")

    assert response.status_code == 200
    body = response.json()
    assert body["action"] == "confirm" and body["client_secret"].startswith("pi_")
    donation = Donation.objects.get()
    assert (donation.amount, donation.source) == (2500, "an-article")
    assert donation.utm == {"utm_campaign": "spring"}
    assert donation.newsletter_opt_in and donation.public_name == "Ada Reader"


def test_payment_attempts_are_rate_limited_per_email(client, localstripe, settings):
    settings.DONATION_RATE_LIMIT_PER_EMAIL = 2
    assert post_submit(client).status_code == 200
    assert post_submit(client).status_code == 200
    response = post_submit(client)
    assert response.status_code == 429
    assert "Too many payment attempts" in response.json()["message"]
    assert post_submit(client, email="someone.else@example.test").status_code == 200


def test_payment_attempts_are_rate_limited_per_ip(client, localstripe, settings):
    settings.DONATION_RATE_LIMIT_PER_IP = 1
    assert post_submit(client, email="a@example.test").status_code == 200
    assert post_submit(client, email="b@example.test").status_code == 429


def test_payment_attempts_from_one_ipv6_64_count_as_one_client(settings):
    from django.core.exceptions import ValidationError

    settings.DONATION_RATE_LIMIT_PER_IP = 1
    services.payment_attempt_register(ip="2001:db8:7:8::1", email="a@example.test")
    with pytest.raises(ValidationError, match="Too many payment attempts"):
        services.payment_attempt_register(ip="2001:db8:7:8:abcd::2", email="b@example.test")
    services.payment_attempt_register(ip="2001:db8:7:9::1", email="c@example.test")


def test_checkout_token_is_required_to_read_a_payment(client):
    response = client.post(reverse("donations:checkout-refresh"), {"token": "forged"})
    assert response.status_code == 404


def test_fee_rule_comes_from_settings(settings):
    settings.DONATION_FEE_PERCENT = 0
    settings.DONATION_FEE_FIXED = 50
    assert services.donation_fee_compute(amount=1000) == 50


# --- Gifts are managed from the reader account (tests/readers) ---------------------


def test_a_receipt_links_to_the_reader_account(client, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    from django.core import mail

    gift = GiftFactory()
    donation = DonationFactory(donor=gift.donor, status="paid", paid_at=timezone.now())
    email = DonorEmail.objects.create(kind="receipt", donor=gift.donor, donation=donation)
    services.donor_email_send(donor_email_id=email.pk)

    link = re.search(r"https?://\S+/account/\S*", mail.outbox[0].body).group(0)
    assert link.endswith("/account/")
    assert "/donate/manage" not in mail.outbox[0].body


@pytest.mark.parametrize(
    "old",
    [
        "/donate/manage/",
        "/donate/manage/an-old-token-from-a-receipt/",
        "/donate/manage/sign-in/an-old-sign-in-token/",
        "/donate/manage/gifts/",
    ],
)
def test_old_manage_addresses_lead_to_the_reader_account(client, old):
    response = client.get(old)
    assert response.status_code == 302
    assert response["Location"] == reverse("readers:account")


def test_an_old_sign_in_email_owed_is_not_sent(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    from django.core import mail

    email = DonorEmail.objects.create(kind="manage_link", donor=DonorFactory())
    assert services.donor_email_send(donor_email_id=email.pk) is False
    email.refresh_from_db()
    assert email.status == "failed" and not mail.outbox


def test_supporters_page_lists_only_consenting_paid_donors(client):
    DonationFactory(
        status="paid", public_credit=True, public_name="Grace H.", paid_at=timezone.now()
    )
    DonationFactory(status="paid", public_credit=False, public_name="", paid_at=timezone.now())
    DonationFactory(status="pending", public_credit=True, public_name="Not Yet")
    html = client.get(reverse("donations:supporters")).content.decode()
    assert "Grace H." in html and "Not Yet" not in html


# --- Admin ------------------------------------------------------------------------


@pytest.fixture
def editor_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("editor", "editor@example.test", "pw")
    client.force_login(user)
    return client


def test_admin_list_shows_totals_chart_and_filters(editor_client):
    now = timezone.now()
    campaign = CampaignFactory(name="Spring drive")
    DonationFactory(status="paid", paid_at=now, amount=2500, campaign=campaign, source="big-story")
    gift = GiftFactory(amount=1000, status=Gift.Status.ACTIVE)
    DonationFactory(
        donor=gift.donor, gift=gift, frequency="month", status="paid", paid_at=now, amount=1000
    )
    GiftFactory(amount=12000, interval="year", status=Gift.Status.ACTIVE)

    response = editor_client.get(reverse("admin:donations_donation_changelist"))
    html = response.content.decode()

    assert response.status_code == 200
    assert "$35.00" in html  # this month
    assert "$20.00" in html  # MRR: 10 monthly + 120/12 yearly
    assert "Spring drive" in html and "big-story" in html
    assert "<svg" in html
    filtered = editor_client.get(
        reverse("admin:donations_donation_changelist") + "?frequency__exact=month"
    )
    assert filtered.status_code == 200
    searched = editor_client.get(
        reverse("admin:donations_donation_changelist") + f"?q={gift.donor.email}"
    )
    assert gift.donor.email in searched.content.decode()


def test_admin_csv_export_streams_filtered_rows(editor_client):
    DonationFactory(
        status="paid",
        paid_at=timezone.now(),
        amount=2500,
        donor=DonorFactory(email="one@example.test"),
    )
    DonationFactory(status="failed", donor=DonorFactory(email="=cmd@example.test"))
    response = editor_client.get(
        reverse("admin:donations_donation_changelist") + "?export=csv&status__exact=paid"
    )
    assert response.streaming
    body = b"".join(response.streaming_content).decode()
    lines = body.strip().splitlines()
    assert lines[0].startswith("id,created_at")
    assert len(lines) == 2 and "one@example.test" in lines[1] and "25.00" in lines[1]

    everything = editor_client.get(reverse("admin:donations_donation_changelist") + "?export=csv")
    assert "'=cmd@example.test" in b"".join(everything.streaming_content).decode()


def test_admin_refund_action_asks_stripe(editor_client, localstripe):
    from tests.donations.localstripe_browser import confirm_payment

    step = services.checkout_intent_create(
        email="r@example.test", name="R", amount=2500, cover_fee=False, frequency="once",
        ip="1", checkout_key="admin-refund-1",
    )  # fmt: skip
    assert confirm_payment(localstripe, step.client_secret, "4242424242424242") is None
    services.checkout_confirmed(donation=step.donation)

    response = editor_client.post(
        reverse("admin:donations_donation_changelist"),
        {"action": "refund", "_selected_action": [step.donation.pk]},
        follow=True,
    )
    assert "Asked Stripe to refund 1 donation" in response.content.decode()
    donation = Donation.objects.get()
    assert donation.refund_requested_at is not None
    assert donation.status == Donation.Status.PAID  # until charge.refunded confirms


def test_old_gifts_in_chart_and_this_month_only_counts_this_month(editor_client):
    DonationFactory(status="paid", paid_at=timezone.now() - timedelta(days=70), amount=99_900)
    html = editor_client.get(reverse("admin:donations_donation_changelist")).content.decode()
    this_month = re.search(r"<dt>This month</dt><dd>([^<]+)</dd>", html).group(1)
    all_time = re.search(r"<dt>All time</dt><dd>([^<]+)</dd>", html).group(1)
    assert this_month == "$0.00"
    assert all_time == "$999.00"
    assert "(peak $999.00)" in html


def test_newsletter_opt_in_creates_a_pending_subscription_once_paid(client, localstripe):
    from outlet.newsletters.models import Subscriber
    from tests.factories import NewsletterFactory

    NewsletterFactory(name="The Daily")
    assert post_submit(client, newsletter_opt_in="on").status_code == 200
    assert not Subscriber.objects.exists()  # not before the payment
    services.payment_record(donation_id=Donation.objects.get().pk)
    subscriber = Subscriber.objects.get(email="ada@example.test")
    assert subscriber.status == Subscriber.Status.PENDING
    assert post_submit(client, email="no@example.test").status_code == 200
    assert not Subscriber.objects.filter(email="no@example.test").exists()


def test_an_unpaid_checkout_does_not_rename_an_existing_donor(client, localstripe):
    DonorFactory(email="ada@example.test", name="Ada Lovelace")

    assert post_submit(client, name="Someone Else").status_code == 200

    assert Donor.objects.get(email="ada@example.test").name == "Ada Lovelace"
