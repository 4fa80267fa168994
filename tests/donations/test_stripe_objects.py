"""One reader for both shapes: localstripe's 2017-08-15 payloads and Stripe's current ones."""

from outlet.donations.stripe_objects import (
    charge_facts,
    dispute_facts,
    invoice_facts,
    payment_intent_facts,
    subscription_facts,
)
from tests.donations.stripe_events import current_object, localstripe_object


def test_invoice_subscription_and_payment_from_2017_shape():
    facts = invoice_facts(localstripe_object("invoice_payment_succeeded"))
    assert facts.subscription_id.startswith("sub_")
    assert facts.payment_intent_id.startswith("pi_")
    assert facts.amount_paid > 0 and facts.status == "paid"


def test_invoice_subscription_and_payment_from_current_shape():
    invoice = current_object("invoice")
    invoice.pop("subscription", None)
    invoice["parent"] = {
        "type": "subscription_details",
        "subscription_details": {"subscription": "sub_123", "metadata": {"gift_id": "7"}},
    }
    invoice["payments"] = {
        "data": [
            {"status": "canceled", "payment": {"payment_intent": "pi_old"}},
            {"status": "paid", "payment": {"payment_intent": "pi_paid"}},
        ]
    }
    facts = invoice_facts(invoice)
    assert facts.subscription_id == "sub_123"
    assert facts.subscription_metadata == {"gift_id": "7"}
    assert facts.payment_intent_id == "pi_paid"


def test_payment_intent_charge_from_both_shapes():
    old = payment_intent_facts(localstripe_object("payment_intent_succeeded"))
    assert old.charge_id.startswith("ch_") and old.status == "succeeded"
    current = current_object("payment_intent")
    current["latest_charge"] = "ch_latest"
    assert payment_intent_facts(current).charge_id == "ch_latest"


def test_subscription_amount_from_price_or_plan():
    current = subscription_facts(current_object("subscription"))
    assert (current.amount, current.interval) == (2000, "month")
    old = subscription_facts(localstripe_object("customer_subscription_created"))
    assert old.amount > 0 and old.interval == "month"


def test_charge_and_dispute_name_their_payment():
    charge = current_object("charge")
    charge["payment_intent"] = "pi_of_the_charge"
    assert charge_facts(charge).payment_intent_id == "pi_of_the_charge"
    charge["payment_intent"] = {"id": "pi_expanded", "object": "payment_intent"}
    assert charge_facts(charge).payment_intent_id == "pi_expanded"
    dispute = dispute_facts(current_object("dispute"))
    assert dispute.charge_id.startswith("ch_")


def test_invoice_charge_comes_from_its_payments_expanded_payment_intent():
    invoice = current_object("invoice")
    payment_intent = current_object("payment_intent")
    payment_intent.update(id="pi_paid", latest_charge="ch_of_the_renewal")
    invoice_payment = current_object("invoice_payment")
    invoice_payment.update(
        status="paid", payment={"type": "payment_intent", "payment_intent": payment_intent}
    )
    invoice["payments"] = {"object": "list", "data": [invoice_payment]}
    invoice["confirmation_secret"] = {"client_secret": "pi_paid_secret_x", "type": "payment_intent"}

    facts = invoice_facts(invoice)

    assert (facts.payment_intent_id, facts.charge_id) == ("pi_paid", "ch_of_the_renewal")
    assert facts.confirmation_secret == "pi_paid_secret_x"
    old = invoice_facts(localstripe_object("invoice_payment_succeeded"))
    assert old.charge_id.startswith("ch_") and old.confirmation_secret == ""


def test_subscription_says_why_it_ended_only_in_the_current_shape():
    current = current_object("subscription")
    current["cancellation_details"] = {"reason": "payment_failed", "comment": None}
    assert subscription_facts(current).cancellation_reason == "payment_failed"
    old = subscription_facts(localstripe_object("customer_subscription_created"))
    assert old.cancellation_reason == "" and old.cancellation_comment == ""


def test_dispute_status_and_amount():
    dispute = current_object("dispute")
    facts = dispute_facts(dispute)
    assert (facts.status, facts.amount) == (dispute["status"], dispute["amount"])


def test_an_existing_subscription_read_for_adoption_from_current_shape():
    """Stripe's example subscription with its customer and the customer's invoice default
    card expanded, as stripe_adopt lists it."""
    subscription = current_object("subscription")
    customer = current_object("customer")
    customer.update(email="Donor@Example.org", name="A Donor")
    customer["invoice_settings"]["default_payment_method"] = current_object("payment_method")
    subscription["customer"] = customer
    facts = subscription_facts(subscription)

    price = subscription["items"]["data"][0]["price"]
    assert (facts.price_id, facts.product_id) == (price["id"], price["product"])
    assert (facts.interval, facts.interval_count, facts.items_count) == ("month", 1, 1)
    assert (facts.customer_email, facts.customer_name) == ("Donor@Example.org", "A Donor")
    card = current_object("payment_method")["card"]
    assert (facts.card_brand, facts.card_last4) == (card["brand"], card["last4"])
    assert facts.created == subscription["start_date"]

    # The subscription's own default payment method comes first.
    subscription["default_payment_method"] = {"card": {"brand": "amex", "last4": "0005"}}
    assert subscription_facts(subscription).card_last4 == "0005"


def test_an_existing_subscription_read_for_adoption_from_2017_shape():
    """localstripe (and integrations older than PaymentMethods): a plan, and the card as
    the customer's default source, its brand named for people."""
    obj = localstripe_object("customer_subscription_created")
    obj["customer"] = {
        "id": "cus_1",
        "email": "old@example.org",
        "default_source": {"object": "card", "brand": "American Express", "last4": "0005"},
        "invoice_settings": {"default_payment_method": None},
    }
    facts = subscription_facts(obj)
    plan = obj["items"]["data"][0]["plan"]
    assert (facts.price_id, facts.interval, facts.interval_count) == (plan["id"], "month", 1)
    assert (facts.card_brand, facts.card_last4) == ("amex", "0005")
    assert facts.customer_email == "old@example.org"


def test_a_paid_invoice_says_when_it_was_paid_in_both_shapes():
    current = current_object("invoice")
    current["status_transitions"]["paid_at"] = 1_700_000_000
    assert invoice_facts(current).paid_at == 1_700_000_000
    old = invoice_facts(localstripe_object("invoice_payment_succeeded"))
    assert old.created > 0
