"""stripe_adopt beside the rest of the site: it never adopts a subscription the site itself
is starting, holds no transaction while Stripe answers (not even in a dry run), and a
later run never brings back what a donor changed or erased here."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from django.db import connection

from outlet.donations import services, stripe_gateway
from outlet.donations.models import Donation, Donor, Gift
from outlet.donations.stripe_objects import RefundFacts, charge_facts, subscription_facts
from tests.donations.stripe_contract import StubStripe


@pytest.fixture
def stub(settings, monkeypatch):
    settings.STRIPE_API_BASE = "https://api.stripe.com"
    settings.STRIPE_DIALECT = "current"
    settings.STRIPE_SECRET_KEY = "sk_test_contract"
    transport = StubStripe()
    monkeypatch.setattr(stripe_gateway, "TRANSPORT", transport)
    return transport


@pytest.mark.django_db
def test_a_subscription_the_site_is_still_starting_is_not_adopted_as_a_second_gift(stub):
    """The checkout's answer from Stripe was lost (the subscription exists, its id is not
    stored yet): its metadata names the gift made here, so adoption leaves it to the
    checkout's retry and the webhooks instead of making a second gift of it."""
    step = services.checkout_intent_create(
        email="reader@example.org",
        name="A Reader",
        amount=2500,
        cover_fee=False,
        frequency="month",
        ip="203.0.113.9",
        checkout_key="adopt-safety-1",
    )
    stub.authenticate(step.client_secret.split("_secret_")[0])
    services.checkout_confirmed(donation=step.donation)
    gift = Gift.objects.get()
    subscription_id = gift.stripe_subscription_id
    Gift.objects.filter(pk=gift.pk).update(stripe_subscription_id=None)

    report = services.subscriptions_adopt()

    assert Gift.objects.count() == 1
    assert (report.adopted, report.skipped) == (0, 1)
    assert any(subscription_id in line and f"#{gift.pk}" in line for line in report.lines)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("dry_run", [True, False])
def test_no_transaction_is_open_while_stripe_answers(stub, monkeypatch, dry_run):
    """A dry run reads as long as a real one; holding one transaction across it would lock
    the gifts and donors it touched (on SQLite, every write of the site) until the end."""
    stub.existing_subscription(email="first@example.org", amount=1500)
    stub.existing_subscription(email="second@example.org", amount=1500)
    in_transaction = []
    reading = stripe_gateway.invoices_paid_list

    def invoices_paid_list(*, subscription_id):
        in_transaction.append(connection.in_atomic_block)
        return reading(subscription_id=subscription_id)

    monkeypatch.setattr(stripe_gateway, "invoices_paid_list", invoices_paid_list)

    report = services.subscriptions_adopt(dry_run=dry_run)

    assert report.adopted == 2
    assert in_transaction == [False, False]
    assert Gift.objects.exists() is not dry_run
    assert Donor.objects.exists() is not dry_run


@pytest.mark.django_db
def test_a_second_run_after_an_erasure_brings_back_no_personal_data(stub):
    stub.existing_subscription(email="old@example.org", amount=1500)
    services.subscriptions_adopt()
    donor = Donor.objects.get()
    services.donor_gifts_stop(donor=donor)
    services.donor_erase(donor=donor)

    services.subscriptions_adopt()

    assert not Donor.objects.filter(email="old@example.org").exists()
    assert Donor.objects.get().name == ""
    gift = Gift.objects.get()
    assert (gift.donor_id, gift.card_brand, gift.card_last4) == (donor.pk, "", "")
    assert not Donation.objects.exclude(card_last4="").exists()


@pytest.mark.django_db
def test_a_second_run_keeps_the_address_a_donor_moved_to(stub):
    """Stripe keeps the address the old system gave it; ours follows the donor's change."""
    stub.existing_subscription(email="old@example.org", amount=1500)
    services.subscriptions_adopt()
    services.donor_email_change(donor=Donor.objects.get(), email="new@example.org")

    services.subscriptions_adopt()

    assert list(Donor.objects.values_list("email", flat=True)) == ["new@example.org"]


@pytest.mark.django_db
def test_a_customer_name_longer_than_a_donor_name_is_cut_not_fatal(stub):
    """Stripe keeps names of 256 characters; ours hold 200 (PostgreSQL would refuse more
    and stop the run)."""
    subscription = stub.existing_subscription(email="old@example.org", amount=1500)
    stub.objects[subscription["customer"]]["name"] = "N" * 256

    assert services.subscriptions_adopt().adopted == 1
    assert Donor.objects.get().name == "N" * 200


@pytest.mark.django_db
def test_a_second_run_does_not_undo_a_change_applied_by_webhook_while_it_read(stub, monkeypatch):
    """The run reads a page of subscriptions, then each one's invoices: an amount changed
    (the donor's own change, its customer.subscription.updated applied) after the page was
    read is newer than what the run holds, and stays."""
    subscription = stub.existing_subscription(email="old@example.org", amount=1500)
    services.subscriptions_adopt()
    gift = Gift.objects.get()
    reading = stripe_gateway.invoices_paid_list

    def invoices_paid_list(*, subscription_id):
        changed = subscription_facts(stub.objects[subscription["id"]])
        services.subscription_apply(
            facts=replace(changed, amount=2500), event_created=int(time.time()) + 1
        )
        return reading(subscription_id=subscription_id)

    monkeypatch.setattr(stripe_gateway, "invoices_paid_list", invoices_paid_list)

    services.subscriptions_adopt()

    gift.refresh_from_db()
    assert gift.amount == 2500


@pytest.mark.django_db
def test_a_refund_that_failed_while_the_run_read_counts_again(stub, monkeypatch):
    """The run read the charge while a refund was pending; the refund failed and its
    webhook gave the money back before the run wrote: the run's older reading of the
    refunded amount changes nothing."""
    stub.existing_subscription(email="old@example.org", amount=1500, paid_invoices=2)
    services.subscriptions_adopt()
    charge = next(obj for obj in stub.objects.values() if obj.get("object") == "charge")
    charge.update(amount_refunded=1500, refunded=True)  # the refund, still pending
    listing = stripe_gateway.charges_list

    def charges_list(*, customer_id):
        charges = list(listing(customer_id=customer_id))
        failed = RefundFacts(
            id="re_failed",
            charge_id=charge["id"],
            payment_intent_id=charge["payment_intent"],
            amount=1500,
            currency="usd",
            status="failed",
            failure_reason="expired_or_canceled_card",
        )
        now_read = replace(charge_facts(charge), amount_refunded=0, refunded=False)
        services.refund_apply(facts=failed, charge=now_read, read_at=int(time.time()) + 1)
        return iter(charges)

    monkeypatch.setattr(stripe_gateway, "charges_list", charges_list)

    services.subscriptions_adopt()

    donation = Donation.objects.get(stripe_payment_intent_id=charge["payment_intent"])
    assert (donation.status, donation.refunded_amount) == (Donation.Status.PAID, 0)
