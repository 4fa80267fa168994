"""Money that survives faults: events out of order, a broker down at commit, disputes,
refunds, and the figures editors read. Each test fails if its guard is removed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from outlet.donations import selectors, services, stripe_gateway
from outlet.donations.models import Donation, DonorEmail, Gift
from outlet.donations.tasks import donor_email_send_task
from tests.donations import stripe_events as se
from tests.donations.stripe_contract import StubStripe
from tests.factories import CampaignFactory, DonationFactory, GiftFactory

pytestmark = pytest.mark.django_db


def emails(kind: str) -> int:
    return DonorEmail.objects.filter(kind=kind).count()


def paid_gift(**kwargs) -> tuple[Gift, Donation]:
    gift = GiftFactory(status=Gift.Status.ACTIVE, **kwargs)
    donation = DonationFactory(
        donor=gift.donor,
        gift=gift,
        frequency=gift.interval,
        amount=gift.amount,
        status=Donation.Status.PAID,
        paid_at=timezone.now(),
        stripe_invoice_id=f"in_first_{gift.pk}",
    )
    return gift, donation


# --- Order and repeats ---------------------------------------------------------------


@pytest.mark.parametrize("order", ["paid-then-failed", "failed-then-paid"])
def test_late_payment_failed_never_fails_a_paid_renewal(client, order):
    gift, _ = paid_gift()
    paid = se.invoice_current(gift, invoice_id="in_renewal")
    failed = se.invoice_current(gift, invoice_id="in_renewal", paid=False)
    for evt in (paid, failed) if order == "paid-then-failed" else (failed, paid):
        assert se.post_event(client, evt).status_code == 200

    gift.refresh_from_db()
    assert Donation.objects.get(stripe_invoice_id="in_renewal").status == Donation.Status.PAID
    assert gift.status == Gift.Status.ACTIVE
    # The failure was news only when it came first.
    assert emails(DonorEmail.Kind.PAST_DUE) == (1 if order == "failed-then-paid" else 0)


@pytest.mark.parametrize("order", ["newer-then-older", "older-then-newer"])
def test_older_subscription_update_never_overrides_a_newer_one(client, order):
    gift = GiftFactory(status=Gift.Status.ACTIVE, amount=1000)
    newer = se.subscription_current(
        gift, status="active", amount=1500, type_="customer.subscription.updated", created=2000
    )
    older = se.subscription_current(
        gift, status="past_due", amount=1000, type_="customer.subscription.updated", created=1000
    )
    for evt in (newer, older) if order == "newer-then-older" else (older, newer):
        assert se.post_event(client, evt).status_code == 200

    gift.refresh_from_db()
    assert (gift.status, gift.amount) == (Gift.Status.ACTIVE, 1500)


# --- The right email when a gift ends --------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "comment", "kind", "words"),
    [
        ("payment_failed", None, DonorEmail.Kind.GIFT_ENDED, "could not be collected"),
        ("cancellation_requested", None, DonorEmail.Kind.GIFT_ENDED, "our team cancelled it"),
        (
            "cancellation_requested",
            services.self_service.DONOR_CANCELLATION_COMMENT,
            DonorEmail.Kind.GIFT_CANCELLED,
            "You cancelled",
        ),
    ],
)
def test_ended_gift_tells_the_donor_the_true_reason_once(
    client, settings, reason, comment, kind, words
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    gift = GiftFactory(status=Gift.Status.ACTIVE)
    for _ in range(2):
        se.post_event(
            client,
            se.subscription_current(
                gift,
                status="canceled",
                type_="customer.subscription.deleted",
                cancellation_reason=reason,
                cancellation_comment=comment,
            ),
        )

    assert DonorEmail.objects.filter(gift=gift).count() == 1
    email = DonorEmail.objects.get(gift=gift)
    assert email.kind == kind
    services.donor_email_send(donor_email_id=email.pk)
    assert words in mail.outbox[0].body + mail.outbox[0].subject


# --- No network call inside the webhook's transaction ---------------------------------


@pytest.mark.django_db(transaction=True)
def test_renewal_payments_are_fetched_before_the_webhook_transaction(client, settings, monkeypatch):
    settings.STRIPE_API_BASE = "https://api.stripe.com"
    settings.STRIPE_DIALECT = "current"
    stub = StubStripe()
    monkeypatch.setattr(stripe_gateway, "TRANSPORT", stub)
    inside: list[bool] = []
    original = stub.request

    def watched(*args, **kwargs):
        inside.append(connection.in_atomic_block)
        return original(*args, **kwargs)

    monkeypatch.setattr(stub, "request", watched)
    gift, _ = paid_gift()
    payment = stub._payment_intent(
        amount=gift.amount, currency=gift.currency, customer=gift.stripe_customer_id, metadata={}
    )
    stub._store(
        "invoice_payment",
        "inpay",
        invoice="in_renewal",
        amount_paid=gift.amount,
        currency=gift.currency,
        payment={"type": "payment_intent", "payment_intent": payment["id"]},
        status="paid",
    )

    assert (
        se.post_event(client, se.invoice_current(gift, invoice_id="in_renewal")).status_code == 200
    )

    assert inside == [False]
    assert stub.problems == []
    renewal = Donation.objects.get(stripe_invoice_id="in_renewal")
    assert renewal.stripe_payment_intent_id == payment["id"]
    assert renewal.stripe_charge_id == payment["latest_charge"]

    refund = se.charge_refunded_current(renewal)
    refund["data"]["object"]["id"] = renewal.stripe_charge_id
    assert se.post_event(client, refund).status_code == 200
    assert Donation.objects.get(pk=renewal.pk).status == Donation.Status.REFUNDED


# --- A receipt is never lost -----------------------------------------------------------


def test_receipt_whose_task_was_never_queued_is_sent_once_by_the_sweep(
    client, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    donation = DonationFactory()

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(donor_email_send_task, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        response = se.post_event(client, se.payment_intent_succeeded_2017(donation))
    assert response.status_code == 200  # the payment is recorded whatever the broker says
    assert Donation.objects.get().status == Donation.Status.PAID
    DonorEmail.objects.update(created_at=timezone.now() - timedelta(minutes=30))

    queued: list[int] = []
    monkeypatch.setattr(donor_email_send_task, "delay", lambda pk: queued.append(pk))
    assert services.donor_emails_sweep() == 1
    for pk in queued * 2:  # the sweep's task, run twice
        donor_email_send_task.apply(args=[pk])
    assert services.donor_emails_sweep() == 0

    assert len(mail.outbox) == 1
    assert DonorEmail.objects.get().status == DonorEmail.Status.SENT


def test_sweep_leaves_fresh_and_failing_emails_to_their_own_tasks(monkeypatch):
    donation = DonationFactory(status=Donation.Status.PAID)
    DonorEmail.objects.create(kind="receipt", donor=donation.donor, donation=donation)
    DonorEmail.objects.create(kind="receipt", donor=donation.donor, attempts=2)
    DonorEmail.objects.update(created_at=timezone.now() - timedelta(minutes=30))
    DonorEmail.objects.create(kind="receipt", donor=donation.donor)
    queued: list[int] = []
    monkeypatch.setattr(donor_email_send_task, "delay", lambda pk: queued.append(pk))

    assert services.donor_emails_sweep() == 1


def test_sweep_runs_on_beat(settings):
    assert any(
        entry["task"] == "donations.donor_emails_sweep"
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
    )


# --- Refunds and disputes --------------------------------------------------------------


def test_refund_action_needs_the_refund_permission(client, django_user_model, monkeypatch):
    from django.contrib.auth.models import Permission

    asked: list[str] = []
    monkeypatch.setattr(
        stripe_gateway, "refund_create", lambda **kwargs: asked.append(kwargs["payment_intent_id"])
    )
    donation = DonationFactory(status=Donation.Status.PAID, stripe_payment_intent_id="pi_paid")
    viewer = django_user_model.objects.create_user("viewer", "v@example.test", "pw", is_staff=True)
    viewer.user_permissions.add(
        Permission.objects.get(codename="view_donation"),
        Permission.objects.get(codename="change_donation"),
    )
    client.force_login(viewer)
    changelist = reverse("admin:donations_donation_changelist")

    assert 'value="refund"' not in client.get(changelist).content.decode()
    client.post(changelist, {"action": "refund", "_selected_action": [donation.pk]})
    assert asked == [] and Donation.objects.get().refund_requested_at is None

    viewer.user_permissions.add(Permission.objects.get(codename="refund_donation"))
    client.post(changelist, {"action": "refund", "_selected_action": [donation.pk]})
    assert asked == ["pi_paid"]


def test_refunded_and_disputed_amounts_come_off_totals_mrr_and_campaign(settings):
    campaign = CampaignFactory(goal_amount=100_000, currency=settings.DONATION_CURRENCY)
    now = timezone.now()
    DonationFactory(status="paid", paid_at=now, amount=5000, campaign=campaign)
    DonationFactory(
        status="paid", paid_at=now, amount=4000, refunded_amount=1000, campaign=campaign
    )
    DonationFactory(status="refunded", paid_at=now, amount=3000, refunded_amount=3000)
    disputed_gift, disputed = paid_gift(amount=2000)
    Donation.objects.filter(pk=disputed.pk).update(
        campaign=campaign, disputed_at=now, disputed_amount=2000, dispute_status="needs_response"
    )
    paid_gift(amount=700)

    totals = selectors.donation_totals()

    assert totals.this_month == 5000 + 3000 + 700
    assert totals.all_time == 5000 + 3000 + 700
    assert totals.monthly_recurring == 700  # the disputed gift does not count
    assert selectors.campaign_raised(campaign=campaign) == 5000 + 3000


def test_a_payment_without_a_paid_date_never_hides_a_gifts_latest_payment(settings):
    gift, _ = paid_gift(amount=700)
    # An old refunded payment whose paid date was never recorded (say, from an import).
    DonationFactory(
        gift=gift,
        donor=gift.donor,
        status="refunded",
        paid_at=None,
        amount=700,
        refunded_amount=700,
    )

    assert selectors.donation_totals().monthly_recurring == 700


def test_opened_dispute_notifies_editors_once(client, settings, django_user_model):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    django_user_model.objects.create_superuser("boss", "boss@example.test", "pw")
    django_user_model.objects.create_user("reader", "reader@example.test", "pw")
    donation = DonationFactory(status=Donation.Status.PAID, stripe_charge_id="ch_disputed")

    from outlet.donations.tasks import dispute_editors_notify_task

    se.post_event(client, se.dispute_current(donation))
    se.post_event(client, se.dispute_current(donation))
    dispute_editors_notify_task.apply(args=[donation.pk])
    dispute_editors_notify_task.apply(args=[donation.pk])

    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["boss@example.test"]
    assert f"#{donation.pk}" in mail.outbox[0].subject


def test_dispute_whose_alert_was_never_queued_is_sent_once_by_the_sweep(
    client, settings, monkeypatch, django_user_model, django_capture_on_commit_callbacks
):
    from outlet.donations.tasks import dispute_editors_notify_task, donor_emails_sweep_task

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    django_user_model.objects.create_superuser("boss", "boss@example.test", "pw")
    donation = DonationFactory(status=Donation.Status.PAID, stripe_charge_id="ch_disputed")

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(dispute_editors_notify_task, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        response = se.post_event(client, se.dispute_current(donation))
    assert response.status_code == 200  # the dispute is recorded whatever the broker says
    Donation.objects.update(disputed_at=timezone.now() - timedelta(minutes=30))

    queued: list[int] = []
    monkeypatch.setattr(dispute_editors_notify_task, "delay", lambda pk: queued.append(pk))
    donor_emails_sweep_task.apply()
    for pk in queued * 2:  # the sweep's task, run twice
        dispute_editors_notify_task.apply(args=[pk])
    donor_emails_sweep_task.apply()

    assert queued == [donation.pk]
    assert len(mail.outbox) == 1


@pytest.mark.parametrize(
    ("status", "counted"), [("won", 2500), ("lost", 0), ("warning_closed", 2500)]
)
@pytest.mark.parametrize("opened_first", [True, False])
def test_closed_dispute_is_applied_in_either_order(client, status, counted, opened_first):
    donation = DonationFactory(
        status=Donation.Status.PAID,
        paid_at=timezone.now(),
        amount=2500,
        stripe_charge_id="ch_disputed",
    )
    if opened_first:
        se.post_event(client, se.dispute_current(donation))
        assert selectors.donation_totals().all_time == 0
    closed = se.dispute_current(donation, type_="charge.dispute.closed", status=status)
    assert se.post_event(client, closed).status_code == 200
    if not opened_first:  # a late "created" does not re-open a closed dispute
        se.post_event(client, se.dispute_current(donation))

    donation.refresh_from_db()
    assert donation.dispute_status == status
    assert selectors.donation_totals().all_time == counted


def test_dispute_closed_before_its_opening_arrives_still_tells_the_editors(
    client, settings, django_user_model, django_capture_on_commit_callbacks, monkeypatch
):
    from outlet.donations.tasks import dispute_editors_notify_task

    monkeypatch.setattr(
        dispute_editors_notify_task,
        "delay",
        lambda pk: dispute_editors_notify_task.apply(args=[pk]),
    )
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    django_user_model.objects.create_superuser("boss", "boss@example.test", "pw")
    donation = DonationFactory(status=Donation.Status.PAID, stripe_charge_id="ch_disputed")

    with django_capture_on_commit_callbacks(execute=True):
        se.post_event(
            client, se.dispute_current(donation, type_="charge.dispute.closed", status="lost")
        )
        se.post_event(client, se.dispute_current(donation))

    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["boss@example.test"]


def test_monthly_donor_appears_once_on_the_supporters_page(client):
    gift = GiftFactory(public_credit=True, public_name="Grace Monthly")
    for days in (60, 30, 0):
        DonationFactory(
            donor=gift.donor,
            gift=gift,
            frequency="month",
            status="paid",
            paid_at=timezone.now() - timedelta(days=days),
            public_credit=True,
            public_name="Grace Monthly",
        )
    DonationFactory(status="paid", paid_at=timezone.now(), public_credit=True, public_name="Ada")

    html = client.get(reverse("donations:supporters")).content.decode()

    assert html.count("Grace Monthly") == 1
    assert "Ada" in html


def test_renewal_paid_by_a_new_payment_intent_is_refundable_by_it(client, settings, monkeypatch):
    """The renewal failed with one PaymentIntent, then was paid with another (a new card):
    the donation names the paid one, so the admin's refund asks Stripe for the right one."""
    settings.STRIPE_API_BASE = "https://api.stripe.com"
    settings.STRIPE_DIALECT = "current"
    stub = StubStripe()
    monkeypatch.setattr(stripe_gateway, "TRANSPORT", stub)
    gift, _ = paid_gift()
    for status, card in (("open", "decline"), ("paid", "ok")):
        stub.card = card
        payment = stub._payment_intent(
            amount=gift.amount, currency=gift.currency, customer=gift.stripe_customer_id
        )
        stub._store(
            "invoice_payment",
            "inpay",
            invoice="in_renewal",
            currency=gift.currency,
            payment={"type": "payment_intent", "payment_intent": payment["id"]},
            status=status,
        )
        se.post_event(client, se.invoice_current(gift, invoice_id="in_renewal", paid=card == "ok"))

    renewal = Donation.objects.get(stripe_invoice_id="in_renewal")
    assert renewal.status == Donation.Status.PAID
    assert renewal.stripe_payment_intent_id == payment["id"]
    assert renewal.stripe_charge_id == payment["latest_charge"]
    assert stub.problems == []
