"""The Payment Element flow (deferred intent creation) against Stripe's current API, proven
offline by the contract stub (tests/donations/stripe_contract.py): every request checked
against the pinned SDK's typed params, and the money recorded once, from Stripe's word."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from outlet.donations import services
from outlet.donations.models import Donation, Gift
from outlet.donations.tokens import checkout_token_make
from tests.donations import test_stripe_contract
from tests.donations.stripe_contract import StubStripe
from tests.donations.test_stripe_contract import assert_accepted

pytestmark = pytest.mark.django_db
stub = test_stripe_contract.stub  # current Stripe, answered by the contract stub


def submit(
    frequency: str = "once",
    *,
    name: str = "A Reader",
    email: str = "reader@example.org",
    key: str = "checkout-1",
) -> services.CheckoutStep:
    return services.checkout_intent_create(
        email=email,
        name=name,
        amount=2500,
        cover_fee=False,
        frequency=frequency,
        ip="203.0.113.9",
        checkout_key=key,
    )


def browser_confirms(stub: StubStripe, step: services.CheckoutStep) -> services.CheckoutStep:
    """confirmPayment with the method chosen in the Payment Element, then our server reads."""
    assert step.action == "confirm" and step.client_secret, stub.problems
    stub.authenticate(step.client_secret.split("_secret_")[0])
    return services.checkout_confirmed(donation=Donation.objects.get(pk=step.donation.pk))


def sent(stub: StubStripe, endpoint: str) -> list[dict]:
    return [r.params for r in stub.requests if r.endpoint == endpoint]


def test_one_time_gift_is_created_unconfirmed_with_the_dashboards_methods(stub):
    step = browser_confirms(stub, submit())

    assert_accepted(stub)
    assert step.action == "done"
    (created,) = sent(stub, "POST /v1/payment_intents")
    assert created["automatic_payment_methods"] == {"enabled": "true"} or created[
        "automatic_payment_methods"
    ] == {"enabled": True}
    assert "confirm" not in created and "payment_method" not in created
    donation = Donation.objects.get()
    assert donation.status == Donation.Status.PAID
    assert (donation.card_brand, donation.card_last4) == ("visa", "4242")


def test_the_allow_list_setting_names_the_methods(stub, settings):
    settings.DONATION_PAYMENT_METHOD_TYPES = ["card", "sepa_debit"]
    browser_confirms(stub, submit())

    assert_accepted(stub)
    (created,) = sent(stub, "POST /v1/payment_intents")
    assert created["allowed_payment_method_types"] == ["card", "sepa_debit"]
    assert "automatic_payment_methods" not in created


def test_a_payment_method_configuration_is_passed_on(stub, settings):
    settings.STRIPE_PAYMENT_METHOD_CONFIGURATION = "pmc_1Donations"
    browser_confirms(stub, submit())

    assert_accepted(stub)
    (created,) = sent(stub, "POST /v1/payment_intents")
    assert created["payment_method_configuration"] == "pmc_1Donations"


def test_one_time_gift_with_3d_secure(stub):
    stub.card = "3ds"
    step = browser_confirms(stub, submit())

    assert_accepted(stub)
    assert step.action == "done"
    assert Donation.objects.get().status == Donation.Status.PAID


def test_a_declined_payment_fails_the_donation_and_charges_nothing(stub):
    stub.card = "decline"
    step = browser_confirms(stub, submit())

    assert_accepted(stub)
    assert step.action == "failed" and "declined" in step.message
    assert Donation.objects.get().status == Donation.Status.FAILED


def test_monthly_gift_uses_an_inline_price_and_default_incomplete(stub):
    step = browser_confirms(stub, submit("month"))

    assert_accepted(stub)
    assert step.action == "done"
    (created,) = sent(stub, "POST /v1/subscriptions")
    assert created["payment_behavior"] == "default_incomplete"
    assert created["payment_settings"]["save_default_payment_method"] == "on_subscription"
    price = created["items"][0]["price_data"]
    assert (price["unit_amount"], price["recurring"]["interval"]) in (
        ("2500", "month"),
        (2500, "month"),
    )
    assert price["product"] == "outlet-gift"
    assert created["expand"] == ["latest_invoice.confirmation_secret"]
    assert "POST /v1/plans" not in stub.calls()
    assert Gift.objects.get().status == Gift.Status.ACTIVE
    assert Donation.objects.get().status == Donation.Status.PAID


def test_monthly_gift_declined_ends_its_subscription(stub):
    stub.card = "decline"
    step = browser_confirms(stub, submit("month"))

    assert_accepted(stub)
    assert step.action == "failed"
    assert Gift.objects.get().status == Gift.Status.CANCELLED
    assert stub.calls()[-1].startswith("DELETE /v1/subscriptions/")


def test_a_repeated_submit_with_a_changed_name_reuses_the_payment_not_the_key(stub):
    first = submit(name="A Reader")
    again = submit(name="A. Reader, corrected")

    assert_accepted(stub)
    assert again.action == "confirm" and again.client_secret == first.client_secret
    assert stub.calls().count("POST /v1/customers") == 1
    assert stub.calls().count("POST /v1/payment_intents") == 1
    keys: dict[str, object] = {}
    for request in stub.requests:
        if request.idempotency_key:
            assert keys.setdefault(request.idempotency_key, request.params) == request.params


def test_a_returning_donor_is_charged_on_their_customer_and_nothing_else(stub):
    browser_confirms(stub, submit(key="first"))
    customer_id = Donation.objects.get().stripe_customer_id
    stub.requests.clear()

    browser_confirms(stub, submit(key="second", name="Someone Typing This Address"))

    assert_accepted(stub)
    assert "POST /v1/customers" not in stub.calls()  # reused, and never renamed
    assert not any(call.startswith("POST /v1/customers/") for call in stub.calls())
    assert not any("customer_session" in call for call in stub.calls())
    (created,) = sent(stub, "POST /v1/payment_intents")
    assert created["customer"] == customer_id
    assert "setup_future_usage" not in created


def test_the_return_page_reads_stripe_and_shows_only_its_own_checkout(stub, client):
    step = submit()
    stub.authenticate(step.client_secret.split("_secret_")[0])
    donation = Donation.objects.get()
    token = checkout_token_make(donation_id=donation.pk)
    url = reverse("donations:return")

    # Stripe's redirect says "failed", Stripe's API says succeeded: the API wins.
    answer = client.get(
        url,
        {
            "token": token,
            "payment_intent": donation.stripe_payment_intent_id,
            "redirect_status": "failed",
        },
    )
    assert answer.status_code == 200
    assert 'data-payment-state="succeeded"' in answer.content.decode()
    assert Donation.objects.get().status == Donation.Status.PAID

    creates = stub.calls().count("POST /v1/payment_intents")
    again = client.get(url, {"token": token, "payment_intent": donation.stripe_payment_intent_id})
    assert 'data-payment-state="succeeded"' in again.content.decode()
    assert stub.calls().count("POST /v1/payment_intents") == creates  # a reload charges nothing

    other = client.get(url, {"token": token, "payment_intent": "pi_someone_elses"})
    assert other.status_code == 404
    forged = client.get(
        url, {"token": "forged", "payment_intent": donation.stripe_payment_intent_id}
    )
    assert forged.status_code == 404


def test_the_return_page_shows_a_failed_payment_with_a_retry(stub, client):
    stub.card = "decline"
    step = submit()
    stub.authenticate(step.client_secret.split("_secret_")[0])
    donation = Donation.objects.get()
    answer = client.get(
        reverse("donations:return"),
        {
            "token": checkout_token_make(donation_id=donation.pk),
            "payment_intent": donation.stripe_payment_intent_id,
            "redirect_status": "succeeded",
        },
    )
    page = answer.content.decode()
    assert 'data-payment-state="failed"' in page
    assert reverse("donations:donate") in page
    assert Donation.objects.get().status == Donation.Status.FAILED


def test_card_update_sets_up_any_reusable_method(stub):
    browser_confirms(stub, submit("month"))
    gift = Gift.objects.get()
    stub.requests.clear()

    client_secret = services.gift_card_setup_start(gift=gift)
    services.gift_card_update(gift=gift, setup_intent_id=client_secret.split("_secret_")[0])

    assert_accepted(stub)
    (created,) = sent(stub, "POST /v1/setup_intents")
    assert "automatic_payment_methods" in created and "allowed_payment_method_types" not in created
    assert any(
        r.endpoint.startswith("POST /v1/subscriptions/") and "default_payment_method" in r.params
        for r in stub.requests
    )


def test_stripe_down_before_any_payment_exists_fails_plainly(stub):
    stub.down = {"/v1/payment_intents"}
    with pytest.raises(ValidationError, match="Nothing was charged"):
        submit()

    assert Donation.objects.get().status == Donation.Status.FAILED


def test_stripe_down_after_the_subscription_exists_is_uncertain_and_resumes(stub):
    stub.down = {"/v1/invoice_payments"}
    step = submit("month")
    assert step.action == "uncertain"
    assert Donation.objects.get().status == Donation.Status.PENDING
    stub.down = set()

    again = submit("month")  # the browser asks again under the same checkout key
    assert again.action == "confirm"
    assert stub.calls().count("POST /v1/subscriptions") == 1
    assert browser_confirms(stub, again).action == "done"
    assert Gift.objects.get().status == Gift.Status.ACTIVE


def test_an_amount_change_uses_an_inline_price_too_and_never_a_plan(stub):
    """A gift started with an inline price changes amount with an inline price on its one
    item, from the next renewal (no proration): no Plan is made or named."""
    browser_confirms(stub, submit("month"))
    gift = Gift.objects.get()
    stub.requests.clear()

    services.gift_amount_change(gift=gift, amount=4000)

    assert_accepted(stub)
    (updated,) = [
        r.params
        for r in stub.requests
        if r.method == "post" and r.path == f"/v1/subscriptions/{gift.stripe_subscription_id}"
    ]
    (item,) = updated["items"]
    assert item["id"].startswith("si_")
    assert int(item["price_data"]["unit_amount"]) == 4000
    assert item["price_data"]["recurring"]["interval"] == "month"
    assert item["price_data"]["currency"] == gift.currency
    assert item["price_data"]["product"] == "outlet-gift"
    assert "plan" not in item and "price" not in item
    assert updated["proration_behavior"] == "none"
    assert not [call for call in stub.calls() if "/v1/plans" in call]
    subscription = stub.objects[gift.stripe_subscription_id]
    assert subscription["items"]["data"][0]["price"]["unit_amount"] == 4000
    assert Gift.objects.get().amount == 4000
