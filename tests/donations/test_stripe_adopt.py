"""stripe_adopt on localstripe: subscriptions an older system made in the account (card
sources, plans, a payment method as the invoice default) become donors and gifts here,
read-only at Stripe, twice-safe, and from then on renew, refund and end by webhook like any
gift made here."""

from __future__ import annotations

import uuid
from io import StringIO

import pytest
import stripe
from django.core import mail
from django.core.management import CommandError, call_command

from outlet.donations import stripe_gateway
from outlet.donations.models import Donation, DonorEmail, Gift
from outlet.readers.models import Reader
from outlet.readers.selectors import reader_account
from tests.donations import stripe_events as se

pytestmark = pytest.mark.django_db


class Recording(stripe.RequestsClient):
    """The SDK's own transport, recording each request's method and path."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def request(self, method, url, headers, post_data=None):
        self.calls.append(f"{method.upper()} {url.split('?')[0]}")
        return super().request(method, url, headers, post_data)


def _card(number: str) -> dict:
    return {"object": "card", "number": number, "exp_month": "12", "exp_year": "2031", "cvc": "123"}


class OldSystem:
    """What the newsroom's previous donation software did, straight through the SDK. Each
    test's subscriptions pay its own product (localstripe lives for the whole session), and
    `adopt` picks them with --product."""

    def __init__(self, base: str) -> None:
        self.client = stripe.StripeClient("sk_test_old_system", base_addresses={"api": base})
        self.product = self.client.v1.products.create(params={"name": "Membership"}).id
        self.tag = uuid.uuid4().hex[:8]

    def plan(self, name: str, amount: int, interval: str = "month", currency: str = "usd"):
        plan_id = f"{name}-{self.tag}"
        plans = self.client.v1.plans
        try:
            return plans.retrieve(plan_id).id
        except stripe.InvalidRequestError:
            params = {"id": plan_id, "amount": amount, "currency": currency}
            params.update(interval=interval, product=self.product)
            return plans.create(params=params).id  # type: ignore[arg-type]

    def donor_with_source(self, email: str, name: str = "", number: str = "4242424242424242"):
        customer = self.client.v1.customers.create(params={"email": email, "name": name})
        self.client.v1.customers.payment_sources.create(
            customer.id,
            params={"source": _card(number)},  # type: ignore[typeddict-item]
        )
        return customer.id

    def donor_with_payment_method(self, email: str, number: str = "5555555555554444"):
        card = {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"}
        payment_method = self.client.v1.payment_methods.create(
            params={"type": "card", "card": card}  # type: ignore[typeddict-item]
        ).id
        customer = self.client.v1.customers.create(
            params={
                "email": email,
                "payment_method": payment_method,
                "invoice_settings": {"default_payment_method": payment_method},
            }
        )
        return customer.id

    def subscribe(self, customer: str, plan: str, **params) -> str:
        return self.client.v1.subscriptions.create(
            params={"customer": customer, "items": [{"plan": plan}], **params}
        ).id


@pytest.fixture
def old_system(localstripe) -> OldSystem:
    return OldSystem(localstripe)


def adopt(old_system: OldSystem, *args: str) -> list[str]:
    out = StringIO()
    call_command("stripe_adopt", "--product", old_system.product, *args, stdout=out)
    return out.getvalue().splitlines()


@pytest.fixture
def account(old_system):
    """Six subscriptions, as the old system left them."""
    monthly = old_system.plan("membership-monthly", 1500)
    yearly = old_system.plan("membership-yearly", 12000, interval="year")
    ids = {
        "monthly": old_system.subscribe(
            old_system.donor_with_source(" Old.Donor@Example.org ", "Old Donor"), monthly
        ),
        "yearly": old_system.subscribe(
            old_system.donor_with_payment_method("yearly@example.org"), yearly
        ),
        "euro": old_system.subscribe(
            old_system.donor_with_source("euro@example.org"),
            old_system.plan("membership-eur", 1500, currency="eur"),
        ),
        "weekly": old_system.subscribe(
            old_system.donor_with_source("weekly@example.org"),
            old_system.plan("membership-weekly", 500, interval="week"),
        ),
        # Its first charge was declined: incomplete, waiting for a payment.
        "incomplete": old_system.subscribe(
            old_system.donor_with_source("declined@example.org", number="4000000000000341"),
            monthly,
        ),
        "ended": old_system.subscribe(old_system.donor_with_source("ended@example.org"), monthly),
    }
    old_system.client.v1.subscriptions.cancel(ids["ended"])
    return ids


def test_existing_subscriptions_become_gifts_with_their_history_and_no_email(
    account, old_system, monkeypatch, django_capture_on_commit_callbacks
):
    transport = Recording()
    monkeypatch.setattr(stripe_gateway, "TRANSPORT", transport)
    with django_capture_on_commit_callbacks(execute=True):
        lines = adopt(old_system)

    assert lines[-1] == (
        "stripe_adopt: subscriptions=6 adopted=4 updated=0 skipped=2 failed=0 donations=3"
    )
    # Read-only at Stripe: nothing created, changed or charged.
    assert transport.calls and all(call.startswith("GET ") for call in transport.calls)
    assert any(account["euro"] in line and "EUR" in line for line in lines)
    assert any(
        account["monthly"] in line and line.endswith(", 1 past payment recorded") for line in lines
    )
    assert any(account["weekly"] in line and "week" in line for line in lines)

    monthly = Gift.objects.get(stripe_subscription_id=account["monthly"])
    assert (monthly.amount, monthly.currency, monthly.interval) == (1500, "usd", "month")
    assert monthly.status == Gift.Status.ACTIVE and monthly.adopted_at is not None
    assert (monthly.card_brand, monthly.card_last4) == ("visa", "4242")
    assert monthly.stripe_customer_id.startswith("cus_")
    assert (monthly.donor.email, monthly.donor.name) == ("old.donor@example.org", "Old Donor")
    history = Donation.objects.get(gift=monthly)
    assert history.status == Donation.Status.PAID and history.amount == 1500
    assert history.stripe_invoice_id.startswith("in_") and history.paid_at is not None
    assert history.stripe_charge_id.startswith("ch_")

    yearly = Gift.objects.get(stripe_subscription_id=account["yearly"])
    assert (yearly.interval, yearly.amount, yearly.card_last4) == ("year", 12000, "4444")
    incomplete = Gift.objects.get(stripe_subscription_id=account["incomplete"])
    assert incomplete.status == Gift.Status.INCOMPLETE and not incomplete.donations.exists()
    ended = Gift.objects.get(stripe_subscription_id=account["ended"])
    assert ended.status == Gift.Status.CANCELLED and ended.cancelled_at is not None
    assert ended.donations.get().status == Donation.Status.PAID

    # No receipts for history, no welcome storm.
    assert not DonorEmail.objects.exists()
    assert mail.outbox == []


def test_a_second_run_doubles_nothing_and_follows_changes(account, old_system):
    adopt(old_system)
    gifts, donations = Gift.objects.count(), Donation.objects.count()

    assert adopt(old_system)[-1] == (
        "stripe_adopt: subscriptions=6 adopted=0 updated=0 skipped=2 failed=0 donations=0"
    )
    assert (Gift.objects.count(), Donation.objects.count()) == (gifts, donations)
    assert any(
        account["monthly"] in line and line.endswith(", 0 past payments recorded")
        for line in adopt(old_system)
    )

    # The old system moved a donor to another amount meanwhile: the next run follows it.
    subscription = old_system.client.v1.subscriptions.retrieve(account["monthly"])
    bigger = old_system.plan("membership-monthly-25", 2500)
    old_system.client.v1.subscriptions.update(
        account["monthly"],
        params={"items": [{"id": subscription["items"]["data"][0]["id"], "plan": bigger}]},
    )
    assert adopt(old_system)[-1].startswith("stripe_adopt: subscriptions=6 adopted=0 updated=1 ")
    assert Gift.objects.get(stripe_subscription_id=account["monthly"]).amount == 2500
    assert Gift.objects.count() == gifts


def test_filters_and_dry_run(account, old_system):
    lines = adopt(old_system, "--price", f"membership-yearly-{old_system.tag}", "--dry-run")
    assert lines[-1] == (
        "stripe_adopt: subscriptions=1 adopted=1 updated=0 skipped=0 failed=0 donations=1"
    )
    assert lines[-3].endswith("other subscriptions do not match the filters.")
    assert not Gift.objects.exists() and not Donation.objects.exists()

    adopt(old_system, "--metadata", "campaign=none")
    assert not Gift.objects.exists()
    with pytest.raises(CommandError, match="KEY=VALUE"):
        adopt(old_system, "--metadata", "campaign")


def test_adopted_gift_renews_by_webhook_and_the_donor_finds_it_in_the_account(
    account, old_system, client, django_capture_on_commit_callbacks
):
    adopt(old_system)
    gift = Gift.objects.get(stripe_subscription_id=account["monthly"])
    renewal = se.invoice_2017(gift, invoice_id="in_renewal0001")
    renewal["type"] = "invoice.paid"

    with django_capture_on_commit_callbacks(execute=False):
        assert se.post_event(client, renewal).status_code == 200
        assert se.post_event(client, renewal).status_code == 200  # a repeat
    paid = Donation.objects.get(stripe_invoice_id="in_renewal0001")
    assert paid.gift == gift and paid.status == Donation.Status.PAID
    assert gift.donations.count() == 2
    assert DonorEmail.objects.filter(kind="receipt", donation=paid).count() == 1

    # Run again after the renewal: still nothing doubled.
    adopt(old_system)
    assert gift.donations.count() == 2

    account_view = reader_account(reader=Reader.objects.create(email="old.donor@example.org"))
    assert list(account_view.gifts) == [gift]
    assert account_view.card_gift == gift
    assert paid in list(account_view.donations)

    ended = se.subscription_2017(gift, status="canceled", type_="customer.subscription.deleted")
    assert se.post_event(client, ended).status_code == 200
    gift.refresh_from_db()
    assert gift.status == Gift.Status.CANCELLED
