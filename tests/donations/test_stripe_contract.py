"""The contract with Stripe's current API, proven offline.

Each flow runs the real services and gateway against `StubStripe` (tests/donations/
stripe_contract.py), which answers like current Stripe from its published example objects
and checks every request against the pinned SDK's own typed description of its API
version: endpoint, every parameter (nested too), every `expand` path, the API version
header, an idempotency key on every create. A flow passes only when Stripe, as the SDK
describes it, would accept every request and the donor's money ends up recorded.
"""

from __future__ import annotations

import pytest

from outlet.donations import services, stripe_gateway
from outlet.donations.models import Donation, Gift
from tests.donations import stripe_events as se
from tests.donations.stripe_contract import StubStripe, check_expand

pytestmark = pytest.mark.django_db


@pytest.fixture
def stub(settings, monkeypatch):
    settings.STRIPE_API_BASE = "https://api.stripe.com"
    settings.STRIPE_DIALECT = "current"
    settings.STRIPE_SECRET_KEY = "sk_test_contract"
    transport = StubStripe()
    monkeypatch.setattr(stripe_gateway, "TRANSPORT", transport)
    return transport


def charge(stub: StubStripe, frequency: str = "once") -> services.CheckoutStep:
    """A gift through the donate page: the payment created on submit, confirmed by the
    browser (Payment Element), then read by our server."""
    step = services.checkout_intent_create(
        email="reader@example.org",
        name="A Reader",
        amount=2500,
        cover_fee=False,
        frequency=frequency,
        ip="203.0.113.9",
        checkout_key=f"contract-{len(stub.requests)}-{frequency}",
    )
    assert step.action == "confirm" and step.client_secret, stub.problems
    stub.authenticate(step.client_secret.split("_secret_")[0])
    return services.checkout_confirmed(donation=Donation.objects.get(pk=step.donation.pk))


def assert_accepted(stub: StubStripe) -> None:
    assert stub.requests, "the flow made no request"
    assert stub.problems == []


def test_monthly_gift_with_3d_secure_speaks_the_current_api(stub):
    stub.card = "3ds"
    step = charge(stub, "month")

    assert_accepted(stub)
    assert step.action == "done"
    assert Gift.objects.get().status == Gift.Status.ACTIVE
    assert Donation.objects.get().status == Donation.Status.PAID


def live_gift(stub: StubStripe) -> Gift:
    assert charge(stub, "month").action == "done"
    gift = Gift.objects.get()
    assert gift.is_live
    stub.requests.clear()
    return gift


def test_card_update_speaks_the_current_api(stub):
    gift = live_gift(stub)
    client_secret = services.gift_card_setup_start(gift=gift)
    services.gift_card_update(gift=gift, setup_intent_id=client_secret.split("_secret_")[0])

    assert_accepted(stub)
    assert Gift.objects.get().card_last4 == "4242"


def test_amount_change_speaks_the_current_api(stub):
    gift = live_gift(stub)
    services.gift_amount_change(gift=gift, amount=4000)

    assert_accepted(stub)
    assert Gift.objects.get().amount == 4000
    assert any(call.startswith("POST /v1/subscriptions/") for call in stub.calls())


def test_cancel_speaks_the_current_api(stub):
    gift = live_gift(stub)
    services.gift_cancel(gift=gift)

    assert_accepted(stub)
    assert Gift.objects.get().status == Gift.Status.CANCELLED


def test_refund_of_a_one_time_gift_speaks_the_current_api(stub):
    charge(stub)
    stub.requests.clear()
    services.donation_refund(donation=Donation.objects.get())

    assert_accepted(stub)
    assert stub.calls() == ["POST /v1/refunds"]


def test_refund_of_a_renewal_speaks_the_current_api(stub, client):
    """A renewal arrives as a current-shape invoice.paid without payments: the invoice's
    payment is fetched, so the renewal knows its PaymentIntent and can be refunded."""
    gift = live_gift(stub)
    renewal_payment = stub._payment_intent(
        amount=gift.amount, currency=gift.currency, customer=gift.stripe_customer_id, metadata={}
    )
    evt = se.invoice_current(gift, invoice_id="in_renewal_contract")
    evt["data"]["object"].pop("payments", None)
    stub._store(
        "invoice_payment",
        "inpay",
        invoice="in_renewal_contract",
        amount_paid=gift.amount,
        currency=gift.currency,
        is_default=True,
        payment={"type": "payment_intent", "payment_intent": renewal_payment["id"]},
        status="paid",
    )
    assert se.post_event(client, evt).status_code == 200
    renewal = Donation.objects.get(stripe_invoice_id="in_renewal_contract")
    assert renewal.status == Donation.Status.PAID
    assert renewal.stripe_payment_intent_id == renewal_payment["id"]
    assert renewal.stripe_charge_id == renewal_payment["latest_charge"]

    services.donation_refund(donation=renewal)

    assert_accepted(stub)
    assert stub.calls()[-1] == "POST /v1/refunds"


def test_the_stub_refuses_what_the_sdk_does_not_describe(stub):
    """The checker itself can fail: yesterday's parameters and expand paths are caught."""
    client = stripe_gateway._client()
    client.v1.setup_intents.create(
        params={"customer": "cus_1", "payment_method_types": ["card"]},  # type: ignore[typeddict-unknown-key]
        options={"idempotency_key": "k"},
    )
    assert any("payment_method_types is not a parameter" in p for p in stub.problems)
    stub.requests.clear()
    customer = client.v1.customers.create(
        params={"email": "a@example.org"}, options={"idempotency_key": "c"}
    )
    client.v1.plans.create(
        params={
            "id": "p1",
            "amount": 500,
            "currency": "usd",
            "interval": "month",
            "product": {"name": "x"},
        },
        options={"idempotency_key": "p"},
    )
    client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"plan": "p1"}],
            "expand": ["latest_invoice.payment_intent"],
        },
    )
    assert any("has no field 'payment_intent'" in p for p in stub.problems)
    assert any("without an idempotency key" in p for p in stub.problems)


def test_dialect_is_the_setting_not_a_guess_from_the_api_base(settings):
    # A proxy in front of Stripe (any other base URL) still speaks the current API.
    settings.STRIPE_API_BASE = "https://stripe-proxy.example.org"
    settings.STRIPE_DIALECT = "current"
    settings.DONATION_PAYMENT_METHOD_TYPES = ["card"]
    assert stripe_gateway.payment_methods_offered() == {"allowed_payment_method_types": ["card"]}
    settings.STRIPE_DIALECT = "localstripe"
    assert stripe_gateway.payment_methods_offered() == {"payment_method_types": ["card"]}


def test_expand_must_end_on_an_expandable_or_includable_field():
    assert check_expand("latest_invoice.confirmation_secret", "Subscription") == []
    assert check_expand("latest_invoice", "Subscription") == []
    assert check_expand("data.payment.payment_intent", 'ListObject["InvoicePayment"]') == []
    assert check_expand("latest_invoice.amount_due", "Subscription")  # a plain number
    assert check_expand("latest_invoice.status_transitions", "Subscription")  # a plain object


# --- stripe_adopt: the account's existing subscriptions, read only ---------------------------


def test_adoption_only_reads_and_speaks_the_current_api(stub, monkeypatch):
    """Every list request (subscriptions with status=all, paid invoices with their payments,
    each page of them) is one the SDK describes, and not one request writes."""
    monkeypatch.setattr(stripe_gateway, "_ADOPT_PAGE", 2)  # so both lists take pages
    monthly = stub.existing_subscription(email="Old@Example.org", amount=1500, paid_invoices=3)
    stub.existing_subscription(email="yearly@example.org", amount=9000, interval="year")
    stub.existing_subscription(email="ended@example.org", amount=1000, status="canceled")
    stub.existing_subscription(email="quarterly@example.org", amount=3000, interval_count=3)
    stub.existing_subscription(email="trial@example.org", amount=500, status="trialing")

    report = services.subscriptions_adopt()

    assert_accepted(stub)
    assert {request.method for request in stub.requests} == {"get"}
    assert "GET /v1/subscriptions" in stub.calls() and "GET /v1/invoices" in stub.calls()
    assert any(r.params.get("starting_after") for r in stub.requests if r.path == "/v1/invoices")
    assert report.summary == (
        "stripe_adopt: subscriptions=5 adopted=4 updated=0 skipped=1 failed=0 donations=6"
    )
    gift = Gift.objects.get(stripe_subscription_id=monthly["id"])
    assert (gift.donor.email, gift.amount, gift.interval) == ("old@example.org", 1500, "month")
    assert (gift.card_brand, gift.card_last4, gift.status) == ("mastercard", "4444", "active")
    history = list(gift.donations.order_by("paid_at"))
    assert [donation.status for donation in history] == [Donation.Status.PAID] * 3
    assert all(donation.stripe_payment_intent_id for donation in history)
    assert history[0].paid_at.timestamp() == 1_700_000_000
    assert Gift.objects.get(donor__email="ended@example.org").status == Gift.Status.CANCELLED
    assert Gift.objects.get(donor__email="trial@example.org").status == Gift.Status.ACTIVE
    assert not Gift.objects.filter(donor__email="quarterly@example.org").exists()

    stub.requests.clear()
    again = services.subscriptions_adopt()
    assert_accepted(stub)
    assert (again.adopted, again.updated, again.donations) == (0, 0, 0)
    assert Donation.objects.count() == 6


def test_adoption_records_what_was_refunded_before_the_move(stub):
    stub.existing_subscription(email="old@example.org", amount=1500, paid_invoices=2)
    charges = [obj for obj in stub.objects.values() if obj.get("object") == "charge"]
    charges[0].update(amount_refunded=1500, refunded=True)

    report = services.subscriptions_adopt()
    services.subscriptions_adopt()  # a second run refunds nothing twice

    assert_accepted(stub)
    assert "GET /v1/charges" in stub.calls()
    assert report.donations == 2
    refunded = Donation.objects.get(stripe_charge_id=charges[0]["id"])
    assert (refunded.status, refunded.refunded_amount) == (Donation.Status.REFUNDED, 1500)
    assert Donation.objects.filter(status=Donation.Status.PAID, refunded_amount=0).count() == 1


def test_an_adopted_gift_renews_by_a_current_invoice_paid(stub, client):
    """The old system's invoices name no gift of ours: the subscription id finds it."""
    subscription = stub.existing_subscription(email="old@example.org", amount=1500)
    services.subscriptions_adopt()
    gift = Gift.objects.get()
    renewal = stub.paid_invoice(subscription, paid_at=1_760_000_000)
    evt = se.invoice_current(gift, invoice_id=renewal["id"])
    evt["data"]["object"]["parent"]["subscription_details"]["metadata"] = {}

    assert se.post_event(client, evt).status_code == 200
    assert se.post_event(client, evt).status_code == 200

    assert_accepted(stub)
    paid = Donation.objects.get(stripe_invoice_id=renewal["id"])
    assert (paid.gift, paid.status, paid.amount) == (gift, Donation.Status.PAID, 1500)
    assert paid.stripe_payment_intent_id and gift.donations.count() == 2
    assert services.subscriptions_adopt().donations == 0


def test_adopted_history_can_be_refunded_through_the_current_api(stub):
    stub.existing_subscription(email="old@example.org", amount=1500)
    services.subscriptions_adopt()
    stub.requests.clear()

    services.donation_refund(donation=Donation.objects.get())

    assert_accepted(stub)
    assert stub.calls() == ["POST /v1/refunds"]


def test_adoption_stops_clearly_when_stripe_cannot_be_read(stub):
    stub.existing_subscription(email="old@example.org", amount=1500)
    stub.down = {"/v1/invoices"}

    report = services.subscriptions_adopt()

    assert report.summary.endswith("adopted=0 updated=0 skipped=0 failed=1 donations=0")
    assert not Gift.objects.exists() and not Donation.objects.exists()


def test_restore_replay_lists_events_in_the_current_api(stub):
    from outlet.donations.event_replay import stripe_events_replay

    report = stripe_events_replay(since=1_800_000_000)

    assert_accepted(stub)
    assert stub.calls() == ["GET /v1/events"]
    assert stub.requests[0].params["created"] == {"gte": "1800000000"}
    assert report.listed == 0


def test_a_bank_debit_is_read_with_its_charge_in_the_current_api(stub):
    charge = se.sepa_charge_current(payment_intent_id="pi_sepa1", amount=2500, currency="eur")
    stub.objects[charge["id"]] = charge
    stub._store(
        "payment_intent", "pi", id="pi_sepa1", status="processing", latest_charge=charge["id"]
    )

    payment_intent = stripe_gateway.payment_intent_retrieve_with_charge(
        payment_intent_id="pi_sepa1"
    )

    assert_accepted(stub)
    assert stub.calls() == ["GET /v1/payment_intents/pi_sepa1"]
    assert stub.requests[0].params == {"expand": ["latest_charge"]}
    details = payment_intent["latest_charge"]["payment_method_details"]
    assert details["sepa_debit"]["mandate"] == "mandate_1SepaTest"


def test_a_customer_update_speaks_the_current_api(stub):
    customer = stub._store("customer", "cus", email="old@example.org", name="Old")

    stripe_gateway.customer_update(customer_id=customer["id"], email="", name="")

    assert_accepted(stub)
    assert stub.requests[0].params == {"email": "", "name": ""}
