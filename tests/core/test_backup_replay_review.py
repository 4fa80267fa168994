"""Review of the restore's Stripe replay (issue 25): what a restored database cannot know.

A donation begun on the old site after the dump is not in the restored database, and its
id is handed out again by the restored sequence. Its payment must neither vanish as
"applied" nor land on the other reader's donation that now carries the same id."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from outlet.core.backups import restore as restore_module
from outlet.core.backups.manifest import Manifest
from outlet.donations import stripe_gateway
from outlet.donations.event_replay import stripe_events_replay
from outlet.donations.models import Donation, DonorEmail
from tests.factories import DonationFactory


def paid_event(
    *, event_id: str, donation_id: int, amount: int, customer: str, created: int, currency="eur"
):
    return {
        "id": event_id,
        "type": "payment_intent.succeeded",
        "created": created,
        "data": {
            "object": {
                "id": f"pi_{event_id}",
                "object": "payment_intent",
                "status": "succeeded",
                "amount": amount,
                "currency": currency,
                "customer": customer,
                "metadata": {"donation_id": str(donation_id)},
                "charges": {"data": [{"id": f"ch_{event_id}"}]},
            }
        },
    }


@pytest.mark.django_db
def test_a_payment_for_a_donation_the_restore_lacks_is_reported_not_applied(monkeypatch):
    # The old site's donation 999999 was begun and paid after the dump.
    event = paid_event(
        event_id="evt_orphan", donation_id=999_999, amount=2500, customer="cus_old", created=10
    )
    monkeypatch.setattr(stripe_gateway, "events_list", lambda *, created_gte: iter([event]))
    report = stripe_events_replay(since=0)
    assert report.applied == 0
    assert report.unmatched == ["pi_evt_orphan"]
    with pytest.raises(CommandError, match="pi_evt_orphan"):
        call_command("stripe_events_replay", "--since", "0")


@pytest.mark.django_db
def test_a_replayed_payment_never_pays_another_readers_donation_of_the_same_id(monkeypatch):
    # After the restore a new reader's checkout got the id the old site had given the payer.
    newcomer = DonationFactory(
        stripe_payment_intent_id=None, stripe_customer_id="cus_newcomer", amount=1000
    )
    event = paid_event(
        event_id="evt_old_site", donation_id=newcomer.pk, amount=1000, customer="cus_payer",
        created=10, currency=newcomer.currency,
    )  # fmt: skip
    monkeypatch.setattr(stripe_gateway, "events_list", lambda *, created_gte: iter([event]))
    report = stripe_events_replay(since=0)
    assert report.unmatched == ["pi_evt_old_site"]
    newcomer.refresh_from_db()
    assert newcomer.status == Donation.Status.PENDING
    assert newcomer.amount == 1000 and newcomer.stripe_payment_intent_id is None
    assert not DonorEmail.objects.filter(donation=newcomer).exists()


@pytest.mark.django_db
def test_replay_reaches_back_as_far_as_stripe_retries_a_delivery(monkeypatch):
    """An event created 2 hours before the dump's newest one, failed then, and retried by
    Stripe to the old site after the dump, must be listed again."""
    asked: list[int] = []

    def events_list(*, created_gte):
        asked.append(created_gte)
        return iter([])

    monkeypatch.setattr(stripe_gateway, "events_list", events_list)
    mark = 1_800_000_000
    manifest = Manifest(
        created_at="2027-01-15T08:00:00Z", finished_at="2027-01-15T08:00:01Z", database={},
        migrations={}, row_counts={}, stripe_event_high_water=mark, encrypted=False,
    )  # fmt: skip
    report = restore_module.RestoreReport()
    restore_module._replay(manifest, report, lambda _: None)
    assert asked and asked[0] <= mark - 3 * 24 * 3600


def test_a_replay_left_for_after_migrate_says_from_when(monkeypatch, capsys):
    """A newer release restores, asks for `migrate` first and leaves the replay to the
    operator: the --since it needs (dump's mark minus the overlap) must be printed, not
    guessed (guessed late, payments after the dump are lost)."""
    manifest = Manifest(
        created_at="2027-01-15T08:00:00Z", finished_at="2027-01-15T08:00:01Z", database={},
        migrations={}, row_counts={}, stripe_event_high_water=1_800_000_000, encrypted=False,
    )  # fmt: skip
    report = restore_module.RestoreReport(migrate_needed=["donations.0099_next"])
    restore_module._replay(manifest, report, lambda _: None)
    since = 1_800_000_000 - restore_module.REPLAY_OVERLAP_SECONDS
    assert report.replay_since == since

    from outlet.core.management.commands import restore as command

    monkeypatch.setattr(command, "backup_restore", lambda **_: report)
    with pytest.raises(CommandError, match=f"stripe_events_replay --since {since}"):
        call_command("restore", "/nowhere")


@pytest.mark.django_db
def test_a_renewal_of_a_gift_the_restore_lacks_is_reported(monkeypatch):
    """A monthly gift begun on the old site after the dump: its first invoice paid, and no
    gift here to record it on."""
    invoice = {
        "id": "in_after_dump",
        "object": "invoice",
        "status": "paid",
        "amount_paid": 1500,
        "amount_due": 1500,
        "currency": "eur",
        "customer": "cus_new_giver",
        "parent": {
            "subscription_details": {"subscription": "sub_new", "metadata": {"gift_id": "77"}}
        },
    }
    event = {"id": "evt_inv", "type": "invoice.paid", "created": 10, "data": {"object": invoice}}
    monkeypatch.setattr(stripe_gateway, "events_list", lambda *, created_gte: iter([event]))
    monkeypatch.setattr(stripe_gateway, "invoice_payments_fill", lambda *, invoice: invoice)
    monkeypatch.setattr(
        stripe_gateway,
        "subscription_retrieve",
        lambda *, subscription_id: {"id": subscription_id, "metadata": {"gift_id": "77"}},
    )
    report = stripe_events_replay(since=0)
    assert report.unmatched == ["in_after_dump"]
    assert report.applied == 0
