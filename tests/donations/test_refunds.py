"""Refunds as Stripe reports them: amounts that only grow while refunds stand, a refund
that fails (the money counts again, the editors hear, they can refund again), and the
receipt owed once whatever path records the payment."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from outlet.donations import selectors, services, stripe_gateway
from outlet.donations.models import Donation, DonorEmail, Refund, StripeEvent
from outlet.donations.stripe_objects import payment_intent_facts
from outlet.donations.tasks import refund_failed_editors_notify_task
from tests.donations import stripe_events as se
from tests.donations.stripe_contract import StubStripe
from tests.factories import DonationFactory

pytestmark = pytest.mark.django_db


def receipts(donation) -> int:
    return DonorEmail.objects.filter(kind=DonorEmail.Kind.RECEIPT, donation=donation).count()


# --- A refunded amount never shrinks ------------------------------------------------


def test_smaller_charge_refunded_after_a_larger_one_changes_nothing(client):
    donation = DonationFactory(status=Donation.Status.PAID, amount=5000, stripe_charge_id="ch_1")
    larger = se.charge_refunded_current(donation, amount_refunded=3000)
    smaller = se.charge_refunded_current(donation, amount_refunded=1000)

    assert se.post_event(client, larger).status_code == 200
    assert se.post_event(client, smaller).status_code == 200

    donation.refresh_from_db()
    assert donation.refunded_amount == 3000
    assert donation.status == Donation.Status.PAID


def test_partial_charge_refunded_after_a_full_refund_changes_nothing(client):
    donation = DonationFactory(status=Donation.Status.PAID, amount=5000, stripe_charge_id="ch_1")
    se.post_event(client, se.charge_refunded_current(donation))
    refunded_at = Donation.objects.get().refunded_at

    se.post_event(client, se.charge_refunded_current(donation, amount_refunded=1000))

    donation.refresh_from_db()
    assert donation.status == Donation.Status.REFUNDED
    assert donation.refunded_amount == 5000
    assert donation.refunded_at == refunded_at


# --- The receipt's own send-once key ------------------------------------------------


@pytest.mark.parametrize("second_path", ["payment_record", "payment_record_if_matching"])
def test_receipt_is_owed_once_even_when_the_status_guard_lets_a_payment_through_twice(
    client, second_path
):
    """Both ways of recording a payment owe the receipt under one key: with the status
    guard out of the way (the row put back to pending), a second recording still owes no
    second receipt."""
    donation = DonationFactory(amount=2500)
    evt = se.payment_intent_succeeded_current(donation)
    se.post_event(client, evt)
    assert receipts(donation) == 1

    Donation.objects.filter(pk=donation.pk).update(status=Donation.Status.PENDING)
    if second_path == "payment_record":
        assert services.payment_record(donation_id=donation.pk)
    else:
        facts = payment_intent_facts(evt["data"]["object"])
        assert services.payment_record_if_matching(facts=facts)

    assert receipts(donation) == 1


# --- A refund that fails --------------------------------------------------------------


@pytest.fixture
def stub(settings, monkeypatch):
    """Current Stripe, answered by the contract stub (every request checked)."""
    settings.STRIPE_API_BASE = "https://api.stripe.com"
    settings.STRIPE_DIALECT = "current"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    stripe = StubStripe()
    monkeypatch.setattr(stripe_gateway, "TRANSPORT", stripe)
    yield stripe
    assert stripe.problems == []


@pytest.fixture
def editor(django_user_model):
    return django_user_model.objects.create_superuser("boss", "boss@example.test", "pw")


def paid_donation(stub: StubStripe, amount: int = 2500) -> Donation:
    """A one-time donation paid through the stub, its charge known on both sides."""
    payment_intent = stub._payment_intent(amount=amount, currency="usd", customer="cus_1")
    return DonationFactory(
        amount=amount,
        status=Donation.Status.PAID,
        paid_at=timezone.now(),
        stripe_payment_intent_id=payment_intent["id"],
        stripe_charge_id=payment_intent["latest_charge"],
    )


def refund_fails_at_stripe(stub: StubStripe, refund_id: str) -> None:
    """What Stripe does when a refund fails: the refund says failed and its amount is
    taken off the charge's amount_refunded."""
    refund = stub.objects[refund_id]
    refund.update(status="failed", failure_reason="expired_or_canceled_card")
    charge = stub.objects[refund["charge"]]
    charge["amount_refunded"] = max(0, charge["amount_refunded"] - refund["amount"])
    charge["refunded"] = False


def refund_succeeds_at_stripe(stub: StubStripe, refund_id: str) -> dict:
    refund = stub.objects[refund_id]
    charge = stub.objects[refund["charge"]]
    charge["amount_refunded"] += refund["amount"]
    charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
    return charge


def the_refund(donation: Donation) -> str:
    return Refund.objects.filter(donation=donation).latest("created_at").stripe_refund_id


def charge_refunded(donation: Donation, charge: dict) -> dict:
    evt = se.charge_refunded_current(donation, amount_refunded=charge["amount_refunded"])
    evt["data"]["object"]["id"] = charge["id"]
    return evt


@pytest.mark.parametrize("event_type", ["refund.failed", "refund.updated", "charge.refund.updated"])
def test_failed_refund_counts_again_tells_the_editors_once_and_can_be_refunded_again(
    client, stub, editor, event_type
):
    donation = paid_donation(stub)
    services.donation_refund(donation=donation)
    charge = refund_succeeds_at_stripe(stub, the_refund(donation))
    se.post_event(client, charge_refunded(donation, charge))
    assert selectors.donation_totals().all_time == 0

    refund_fails_at_stripe(stub, the_refund(donation))
    failed = se.refund_current(
        Donation.objects.get(),
        refund_id=the_refund(donation),
        status="failed",
        type_=event_type,
        failure_reason="expired_or_canceled_card",
    )
    assert se.post_event(client, failed).status_code == 200
    failed["id"] = "evt_same_fact_again"
    assert se.post_event(client, failed).status_code == 200
    for _ in range(2):  # the editors' alert, its task run twice
        refund_failed_editors_notify_task.apply(args=[Refund.objects.get().pk])

    donation.refresh_from_db()
    assert donation.status == Donation.Status.PAID
    assert donation.refunded_amount == 0
    assert donation.refund_requested_at is None
    assert selectors.donation_totals().all_time == 2500
    assert Refund.objects.get().status == Refund.Status.FAILED
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["boss@example.test"]
    assert f"#{donation.pk}" in mail.outbox[0].subject
    assert "expired_or_canceled_card" in mail.outbox[0].body

    services.donation_refund(donation=donation)  # the editor refunds again
    refunds = [r for r in stub.requests if r.endpoint == "POST /v1/refunds"]
    assert len(refunds) == 2
    assert refunds[0].idempotency_key != refunds[1].idempotency_key
    assert Refund.objects.count() == 2


def test_charge_refunded_older_than_a_refund_failure_changes_nothing(client, stub, editor):
    """The failure comes first; the charge.refunded written before it (its amount holds
    the refund that failed) arrives late and must not take the money off again."""
    donation = paid_donation(stub)
    services.donation_refund(donation=donation)
    stale = charge_refunded(donation, refund_succeeds_at_stripe(stub, the_refund(donation)))
    stale["created"] -= 60
    refund_fails_at_stripe(stub, the_refund(donation))

    se.post_event(
        client, se.refund_current(donation, refund_id=the_refund(donation), status="failed")
    )
    se.post_event(client, stale)

    donation.refresh_from_db()
    assert (donation.status, donation.refunded_amount) == (Donation.Status.PAID, 0)
    assert selectors.donation_totals().all_time == 2500


def test_refund_failure_waits_for_stripe_when_the_charge_cannot_be_read(client, stub):
    donation = paid_donation(stub)
    Donation.objects.filter(pk=donation.pk).update(refunded_amount=2500, status="refunded")
    stub.down.add("/v1/charges")

    response = se.post_event(
        client, se.refund_current(donation, refund_id="re_gone", status="failed")
    )

    assert response.status_code == 503
    assert not StripeEvent.objects.exists()
    assert Donation.objects.get().refunded_amount == 2500
    stub.requests.clear()


def test_a_refund_that_succeeds_changes_no_amount_by_itself(client, stub):
    """refund.updated to succeeded: the ledger follows; the amount comes from charge.refunded."""
    donation = paid_donation(stub)
    se.post_event(client, se.refund_current(donation, refund_id="re_ok", status="succeeded"))
    donation.refresh_from_db()
    assert (donation.status, donation.refunded_amount) == (Donation.Status.PAID, 0)
    assert Refund.objects.get().status == Refund.Status.SUCCEEDED
    assert [r.endpoint for r in stub.requests] == []


def test_a_failed_refund_shows_in_the_admin(client, stub, editor):
    donation = paid_donation(stub)
    se.post_event(
        client,
        se.refund_current(
            donation, refund_id="re_failed", status="failed", failure_reason="lost_or_stolen_card"
        ),
    )
    client.force_login(editor)

    listing = client.get(reverse("admin:donations_donation_changelist") + "?refund=failed")
    page = client.get(reverse("admin:donations_donation_change", args=[donation.pk]))

    assert f"/{donation.pk}/change/" in listing.content.decode()
    assert "re_failed" in page.content.decode()
    assert "lost_or_stolen_card" in page.content.decode()


def test_failed_refund_whose_alert_was_never_queued_is_sent_once_by_the_sweep(
    client, stub, editor, monkeypatch, django_capture_on_commit_callbacks
):
    from outlet.donations.tasks import donor_emails_sweep_task

    donation = paid_donation(stub)

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(refund_failed_editors_notify_task, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        response = se.post_event(
            client, se.refund_current(donation, refund_id="re_lost", status="failed")
        )
    assert response.status_code == 200
    Refund.objects.update(failed_at=timezone.now() - timedelta(minutes=30))

    queued: list[int] = []
    monkeypatch.setattr(refund_failed_editors_notify_task, "delay", queued.append)
    donor_emails_sweep_task.apply()
    for pk in queued * 2:
        refund_failed_editors_notify_task.apply(args=[pk])
    donor_emails_sweep_task.apply()

    assert queued == [Refund.objects.get().pk]
    assert len(mail.outbox) == 1


@pytest.mark.parametrize("payment_event_first", [False, True])
def test_refund_that_failed_before_the_payment_was_recorded_records_the_payment(
    client, stub, editor, payment_event_first
):
    """charge.refunded comes before payment_intent.succeeded (Stripe keeps no order), then
    its refund fails: the payment is recorded once, with its date and its receipt, whether
    its own event came while the donation was refunded (and was ignored) or comes after."""
    payment_intent = stub._payment_intent(amount=2500, currency="usd", customer="cus_1")
    donation = DonationFactory(amount=2500, stripe_payment_intent_id=payment_intent["id"])
    donation.stripe_charge_id = payment_intent["latest_charge"]
    se.post_event(client, se.charge_refunded_current(donation))
    assert Donation.objects.get().status == Donation.Status.REFUNDED
    succeeded = se.payment_intent_succeeded_current(donation)
    if payment_event_first:
        se.post_event(client, succeeded)

    se.post_event(client, se.refund_current(donation, refund_id="re_early", status="failed"))
    if not payment_event_first:
        se.post_event(client, succeeded)
        succeeded["id"] = "evt_same_payment_again"
        se.post_event(client, succeeded)

    donation.refresh_from_db()
    assert (donation.status, donation.refunded_amount) == (Donation.Status.PAID, 0)
    assert donation.paid_at is not None
    assert receipts(donation) == 1
    assert selectors.donation_totals().all_time == 2500


def test_the_admin_shows_a_refunds_amount_as_money(client, stub, editor):
    """The refund ledger's amount is in minor units: an editor reads $25.00, not 2500."""
    donation = paid_donation(stub, amount=2500)
    se.post_event(
        client, se.refund_current(donation, refund_id="re_shown", status="failed", amount=1250)
    )
    client.force_login(editor)

    page = client.get(reverse("admin:donations_donation_change", args=[donation.pk]))

    row = page.content.decode().split('<td class="field-stripe_refund_id">', 1)[1]
    row = row.split("</tr>", 1)[0]
    assert "$12.50" in row
    assert "1250" not in row


def test_charge_refunded_older_than_a_refund_failure_changes_nothing_when_our_clock_is_slow(
    client, stub, editor, monkeypatch
):
    """Which charge.refunded is out of date is told by Stripe's clock on both sides (the
    events' `created`), not ours: with our clock five minutes behind Stripe's, the stale
    event must still not take the money off again."""
    import types

    from outlet.donations import webhooks

    real_time = webhooks.time.time
    monkeypatch.setattr(webhooks, "time", types.SimpleNamespace(time=lambda: real_time() - 300))
    donation = paid_donation(stub)
    services.donation_refund(donation=donation)
    stale = charge_refunded(donation, refund_succeeds_at_stripe(stub, the_refund(donation)))
    stale["created"] -= 60
    refund_fails_at_stripe(stub, the_refund(donation))

    se.post_event(
        client, se.refund_current(donation, refund_id=the_refund(donation), status="failed")
    )
    se.post_event(client, stale)

    donation.refresh_from_db()
    assert (donation.status, donation.refunded_amount) == (Donation.Status.PAID, 0)


def test_a_refund_failure_read_that_finds_the_charge_refunded_in_full_marks_it_refunded(
    client, stub, editor
):
    """A partial refund fails; before we hear of it, a full refund is made from Stripe's
    dashboard. The charge read for the failure holds that full refund, so the donation is
    refunded, not left 'paid' with all its money refunded."""
    donation = paid_donation(stub)
    partial = stub._store(
        "refund",
        "re",
        amount=1000,
        currency="usd",
        payment_intent=donation.stripe_payment_intent_id,
        charge=donation.stripe_charge_id,
        status="succeeded",
    )
    charge = refund_succeeds_at_stripe(stub, partial["id"])
    se.post_event(client, charge_refunded(donation, charge))
    refund_fails_at_stripe(stub, partial["id"])
    failed = se.refund_current(donation, refund_id=partial["id"], status="failed", amount=1000)
    whole = stub._store(
        "refund",
        "re",
        amount=2500,
        currency="usd",
        payment_intent=donation.stripe_payment_intent_id,
        charge=donation.stripe_charge_id,
        status="succeeded",
    )
    later = charge_refunded(donation, refund_succeeds_at_stripe(stub, whole["id"]))
    later["created"] = failed["created"] + 5

    se.post_event(client, failed)
    se.post_event(client, later)

    donation.refresh_from_db()
    assert (donation.status, donation.refunded_amount) == (Donation.Status.REFUNDED, 2500)
    assert donation.refunded_at is not None
    assert selectors.donation_totals().all_time == 0


def test_a_failed_refund_stays_failed_when_an_older_update_arrives_late(client, stub, editor):
    """Failed is final: a refund.updated that said 'succeeded' (written before the failure,
    delivered after it) neither marks the ledger succeeded nor lets the failure apply again."""
    donation = paid_donation(stub)
    se.post_event(client, se.refund_current(donation, refund_id="re_late", status="failed"))
    se.post_event(client, se.refund_current(donation, refund_id="re_late", status="succeeded"))

    assert Refund.objects.get().status == Refund.Status.FAILED


def test_a_canceled_refund_gives_its_money_back_as_a_failed_one_does(client, stub, editor):
    donation = paid_donation(stub)
    services.donation_refund(donation=donation)
    se.post_event(
        client, charge_refunded(donation, refund_succeeds_at_stripe(stub, the_refund(donation)))
    )
    refund_fails_at_stripe(stub, the_refund(donation))
    stub.objects[the_refund(donation)]["status"] = "canceled"

    se.post_event(
        client, se.refund_current(donation, refund_id=the_refund(donation), status="canceled")
    )

    donation.refresh_from_db()
    assert (donation.status, donation.refunded_amount) == (Donation.Status.PAID, 0)
    assert Refund.objects.get().status == Refund.Status.CANCELED


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
def test_one_refund_failure_told_by_three_events_at_once_applies_once(monkeypatch):
    """Stripe sends refund.failed, refund.updated and charge.refund.updated for one failure,
    and may deliver them at the same moment: the money comes back once, the editors are
    asked to be told once."""
    import threading

    from outlet.donations.services import refunds as refunds_module
    from outlet.donations.stripe_objects import charge_facts, refund_facts

    told: list[int] = []
    monkeypatch.setattr(
        refunds_module, "_refund_failed_editors_notify_queue", lambda *, refund_id: told.append(1)
    )
    donation = DonationFactory(
        status=Donation.Status.REFUNDED,
        amount=2500,
        refunded_amount=2500,
        paid_at=timezone.now(),
        stripe_payment_intent_id="pi_race",
        stripe_charge_id="ch_race",
    )
    refund = refund_facts(
        se.refund_current(donation, refund_id="re_race", status="failed")["data"]["object"]
    )
    charge_obj = se.charge_refunded_current(donation, amount_refunded=0)["data"]["object"]
    charge = charge_facts({**charge_obj, "id": "ch_race"})
    start = threading.Barrier(3)
    outcomes: list[str] = []

    def apply() -> None:
        try:
            start.wait(10)
            outcomes.append(services.refund_apply(facts=refund, charge=charge, read_at=1))
        finally:
            connection.close()

    threads = [threading.Thread(target=apply) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)

    assert sorted(outcomes) == ["already applied", "already applied", "refund failed"]
    donation.refresh_from_db()
    assert (donation.status, donation.refunded_amount) == (Donation.Status.PAID, 0)
    assert Refund.objects.count() == 1
    assert len(told) == 1
