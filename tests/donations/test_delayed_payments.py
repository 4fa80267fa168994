"""Bank debits (SEPA Direct Debit, ACH, Bacs) settle days later: a donation is processing
until Stripe says succeeded (then the receipt) or payment_failed (then a short note with a
link to give again). Events are signed, real-shaped payloads in both dialects, posted in
every order and more than once."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core import mail
from django.template.loader import render_to_string
from django.utils import timezone

from outlet.donations import selectors, services, stripe_gateway
from outlet.donations.models import Campaign, Donation, DonorEmail, Gift
from tests.donations import stripe_events as se
from tests.donations import test_stripe_contract
from tests.factories import DonationFactory, GiftFactory

pytestmark = pytest.mark.django_db
stub = test_stripe_contract.stub  # current Stripe, answered by the contract stub


@pytest.fixture(autouse=True)
def _locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SITE_URL = "https://news.example"


def owed(donation, kind: str) -> int:
    return DonorEmail.objects.filter(kind=kind, donation=donation).count()


def send_owed() -> None:
    """What the mail worker does with every email owed (run twice: sent once)."""
    for email_id in DonorEmail.objects.values_list("pk", flat=True):
        services.donor_email_send(donor_email_id=email_id)
        services.donor_email_send(donor_email_id=email_id)


def status(donation) -> str:
    return Donation.objects.get(pk=donation.pk).status


def processing_event(donation, shape: str) -> dict:
    if shape == "2017":
        return se.payment_intent_processing_2017(donation)
    charge = se.sepa_charge_current(
        payment_intent_id=donation.stripe_payment_intent_id,
        amount=donation.amount,
        currency=donation.currency,
    )
    return se.payment_intent_processing_current(donation, charge=charge)


def failed_event(donation, shape: str) -> dict:
    if shape == "2017":
        return se.payment_intent_failed_2017(donation)
    return se.payment_intent_debit_failed_current(donation)


def succeeded_event(donation, shape: str) -> dict:
    if shape == "2017":
        return se.payment_intent_succeeded_2017(donation)
    return se.payment_intent_succeeded_current(donation)


@pytest.mark.parametrize("shape", ["2017", "current"])
def test_processing_marks_the_donation_processing_and_owes_no_receipt(client, shape):
    donation = DonationFactory(card_brand="", card_last4="")

    response = se.post_event(client, processing_event(donation, shape))

    assert response.status_code == 200
    assert status(donation) == Donation.Status.PROCESSING
    assert not DonorEmail.objects.exists()


@pytest.mark.parametrize("shape", ["2017", "current"])
def test_the_receipt_goes_out_only_once_the_debit_succeeds(client, shape):
    donation = DonationFactory(card_brand="", card_last4="")
    se.post_event(client, processing_event(donation, shape))
    se.post_event(client, processing_event(donation, shape))  # a repeat, new event id
    assert owed(donation, DonorEmail.Kind.RECEIPT) == 0

    se.post_event(client, succeeded_event(donation, shape))
    se.post_event(client, succeeded_event(donation, shape))

    assert status(donation) == Donation.Status.PAID
    assert owed(donation, DonorEmail.Kind.RECEIPT) == 1
    send_owed()
    assert len(mail.outbox) == 1


@pytest.mark.parametrize("shape", ["2017", "current"])
def test_processing_after_succeeded_changes_nothing(client, shape):
    donation = DonationFactory()
    se.post_event(client, succeeded_event(donation, shape))
    paid_at = Donation.objects.get().paid_at

    response = se.post_event(client, processing_event(donation, shape))

    assert response.status_code == 200
    donation.refresh_from_db()
    assert donation.status == Donation.Status.PAID and donation.paid_at == paid_at
    assert owed(donation, DonorEmail.Kind.RECEIPT) == 1


@pytest.mark.parametrize("shape", ["2017", "current"])
def test_a_debit_that_fails_after_processing_sends_one_note_with_a_link_to_try_again(client, shape):
    donation = DonationFactory(amount=2500, frequency="once", card_brand="", card_last4="")
    se.post_event(client, processing_event(donation, shape))

    se.post_event(client, failed_event(donation, shape))
    se.post_event(client, failed_event(donation, shape))  # Stripe repeats itself
    se.post_event(client, processing_event(donation, shape))  # a late processing

    donation.refresh_from_db()
    assert donation.status == Donation.Status.FAILED
    assert donation.failure_message == services.BANK_FAILURE_MESSAGE
    assert owed(donation, DonorEmail.Kind.PAYMENT_FAILED) == 1
    assert owed(donation, DonorEmail.Kind.RECEIPT) == 0
    send_owed()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [donation.donor.email]
    assert message.subject == "Your gift to outlet did not go through".replace(
        "outlet", settings.OUTLET_NAME
    )
    link = "https://news.example/donate/?amount=25.00&frequency=once"
    assert link in message.body
    html = message.alternatives[0][0]
    assert link.replace("&", "&amp;") in html
    # Nothing in the note lets someone else act on the gift or the donor.
    for secret in (donation.stripe_payment_intent_id, donation.stripe_customer_id, "token"):
        assert secret not in message.body and secret not in html


def test_a_card_declined_while_the_reader_watches_gets_no_note(client):
    donation = DonationFactory()

    se.post_event(client, se.payment_intent_failed_current(donation))

    donation.refresh_from_db()
    assert donation.status == Donation.Status.FAILED
    assert donation.failure_message == services.DECLINE_MESSAGE
    assert not DonorEmail.objects.exists()


def test_a_failure_note_not_sent_before_a_retry_paid_the_gift_is_skipped(client):
    donation = DonationFactory(card_brand="", card_last4="")
    se.post_event(client, processing_event(donation, "current"))
    se.post_event(client, failed_event(donation, "current"))
    # The reader confirmed the same PaymentIntent again with another account: it succeeded.
    se.post_event(client, succeeded_event(donation, "current"))

    send_owed()

    assert status(donation) == Donation.Status.PAID
    assert len(mail.outbox) == 1 and mail.outbox[0].subject.startswith("Your receipt")
    assert DonorEmail.objects.get(kind=DonorEmail.Kind.PAYMENT_FAILED).status == "skipped"


def test_the_sepa_receipt_names_the_mandate_read_from_the_charge(client, monkeypatch):
    donation = DonationFactory(card_brand="", card_last4="")
    charge = se.sepa_charge_current(
        payment_intent_id=donation.stripe_payment_intent_id,
        amount=donation.amount,
        currency=donation.currency,
        mandate="mandate_1Reader42",
    )
    # The webhook names the charge by id; its details are read with the PaymentIntent.
    evt = se.payment_intent_processing_current(donation, charge=charge["id"])
    expanded = se.payment_intent_processing_current(donation, charge=charge)["data"]["object"]
    asked = []

    def retrieve_with_charge(*, payment_intent_id):
        asked.append(payment_intent_id)
        return expanded

    monkeypatch.setattr(stripe_gateway, "payment_intent_retrieve_with_charge", retrieve_with_charge)
    se.post_event(client, evt)
    se.post_event(client, evt)  # a repeat does not ask Stripe again
    se.post_event(client, se.payment_intent_succeeded_current(donation))
    send_owed()

    assert asked == [donation.stripe_payment_intent_id]
    donation.refresh_from_db()
    assert donation.payment_method_type == "sepa_debit"
    assert donation.mandate_reference == "mandate_1Reader42"
    receipt = mail.outbox[0]
    assert "Mandate reference: mandate_1Reader42" in receipt.body
    assert "SEPA Direct Debit, account ending 3000" in receipt.body
    assert "Card:" not in receipt.body
    assert "mandate_1Reader42" in receipt.alternatives[0][0]


def test_a_card_receipt_mentions_no_mandate(client):
    donation = DonationFactory()
    se.post_event(client, se.payment_intent_succeeded_current(donation))
    send_owed()

    assert "Card: Visa ending 4242" in mail.outbox[0].body
    assert "Mandate" not in mail.outbox[0].body


def test_processing_while_stripe_is_down_is_delivered_again_later(client, monkeypatch):
    donation = DonationFactory(card_brand="", card_last4="")

    def down(**kwargs):
        raise stripe_gateway.StripeError("Stripe is unreachable")

    monkeypatch.setattr(stripe_gateway, "payment_intent_retrieve_with_charge", down)
    evt = se.payment_intent_processing_current(donation, charge="ch_notexpanded")

    assert se.post_event(client, evt).status_code == 503
    assert status(donation) == Donation.Status.PENDING

    monkeypatch.undo()
    monkeypatch.setattr(
        stripe_gateway,
        "payment_intent_retrieve_with_charge",
        lambda **kwargs: processing_event(donation, "current")["data"]["object"],
    )
    assert se.post_event(client, evt).status_code == 200
    assert status(donation) == Donation.Status.PROCESSING


# --- Totals count a processing gift only once it succeeds ---------------------------


def test_totals_and_campaign_progress_count_a_debit_only_once_it_succeeds(client, settings):
    settings.DONATION_CURRENCY = "usd"
    campaign = Campaign.objects.create(name="Fund", slug="fund", goal_amount=100_000)
    donation = DonationFactory(amount=4000, campaign=campaign, card_brand="", card_last4="")
    se.post_event(client, processing_event(donation, "current"))

    assert selectors.campaign_raised(campaign=campaign) == 0
    totals = selectors.donation_totals()
    assert totals.all_time == totals.this_month == 0

    se.post_event(client, succeeded_event(donation, "current"))

    assert selectors.campaign_raised(campaign=campaign) == 4000
    totals = selectors.donation_totals()
    assert totals.all_time == totals.this_month == 4000


def test_recurring_revenue_counts_a_gift_whose_first_debit_is_processing_once_it_succeeds(
    client, settings
):
    settings.DONATION_CURRENCY = "usd"
    # Stripe may call the subscription active while its first debit is processing.
    gift = GiftFactory(status=Gift.Status.ACTIVE, amount=1500, currency="usd")
    first = DonationFactory(
        gift=gift, donor=gift.donor, frequency="month", amount=1500, stripe_invoice_id="in_first1"
    )
    se.post_event(client, processing_event(first, "current"))
    assert status(first) == Donation.Status.PROCESSING

    assert selectors.donation_totals().monthly_recurring == 0

    Donation.objects.filter(pk=first.pk).update(status=Donation.Status.PAID, paid_at=timezone.now())
    assert selectors.donation_totals().monthly_recurring == 1500


def test_a_gift_whose_first_debit_fails_gets_the_note_not_a_renewal_notice(client):
    gift = GiftFactory(status=Gift.Status.ACTIVE)
    first = DonationFactory(
        gift=gift,
        donor=gift.donor,
        frequency="month",
        amount=gift.amount,
        stripe_invoice_id="in_firstdebit",
    )
    se.post_event(client, processing_event(first, "current"))

    se.post_event(client, se.invoice_2017(gift, invoice_id="in_firstdebit", paid=False))

    assert status(first) == Donation.Status.FAILED
    assert owed(first, DonorEmail.Kind.PAYMENT_FAILED) == 1
    assert not DonorEmail.objects.filter(kind=DonorEmail.Kind.PAST_DUE).exists()
    send_owed()
    assert "frequency=month" in mail.outbox[0].body


# --- What the return page shows ------------------------------------------------------


@pytest.mark.parametrize(
    ("donation_status", "outcome"),
    [
        ("paid", "succeeded"),
        ("refunded", "succeeded"),
        ("processing", "processing"),
        ("pending", "processing"),
        ("failed", "failed"),
        ("abandoned", "failed"),
    ],
)
def test_donation_outcome(donation_status, outcome):
    donation = DonationFactory(status=donation_status)
    assert selectors.donation_outcome(donation=donation) == outcome


def test_the_outcome_include_says_a_processing_gift_is_being_processed():
    donation = DonationFactory(status=Donation.Status.PROCESSING, amount=2500)

    html = render_to_string("donations/_outcome.html", {"donation": donation})

    assert "Your gift is being processed…" in html
    assert "$25.00" in html
    assert 'data-outcome="processing"' in html
    assert donation.donor.email not in html  # no address on a page


def test_the_outcome_include_offers_a_failed_gift_a_prefilled_try_again_link():
    donation = DonationFactory(
        status=Donation.Status.FAILED, amount=2650, fee_amount=150, frequency="month"
    )

    html = render_to_string("donations/_outcome.html", {"donation": donation})

    assert "This payment did not go through" in html
    # The fee it covered is offered again on the page, not folded into the amount.
    assert 'href="/donate/?amount=25.00&amp;frequency=month"' in html
    assert donation.stripe_payment_intent_id not in html


@pytest.mark.parametrize(
    ("query", "choice", "custom", "frequency"),
    [
        ("?amount=25.00&frequency=month", "2500", None, "month"),
        ("?amount=12.34&frequency=year", "other", "12.34", "year"),
        ("?amount=lots&frequency=weekly", None, None, "once"),
    ],
)
def test_the_donate_page_is_prefilled_from_a_try_again_link(
    client, settings, query, choice, custom, frequency
):
    settings.DONATION_PRESETS = [1000, 2500, 5000]
    settings.DONATION_CURRENCY = "usd"

    response = client.get("/donate/" + query)

    assert response.status_code == 200
    form = response.context["form"]
    assert form.initial["frequency"] == frequency
    if choice:
        assert form.initial["amount_choice"] == choice
    else:
        assert form.initial["amount_choice"] == "2500"  # the page's usual preset
    assert form.initial.get("custom_amount") == custom


def test_a_monthly_gifts_open_invoice_with_a_processing_debit_marks_it_processing():
    """What the return page applies for a monthly gift: the first invoice is still open and
    its PaymentIntent (read with the invoice's payments) is processing."""
    from outlet.donations.stripe_objects import invoice_facts

    gift = GiftFactory(status=Gift.Status.INCOMPLETE)
    first = DonationFactory(
        gift=gift, donor=gift.donor, frequency="month", amount=gift.amount, card_last4=""
    )
    invoice = se.invoice_current(gift, invoice_id="in_open1", paid=False)["data"]["object"]
    payment_intent = se.payment_intent_processing_current(first, charge=None)["data"]["object"]
    invoice["payments"] = {
        "object": "list",
        "data": [
            {
                "status": "open",
                "payment": {"type": "payment_intent", "payment_intent": payment_intent},
            }
        ],
    }

    outcome = services.invoice_apply(facts=invoice_facts(invoice), paid=None)

    assert outcome == "processing"
    assert status(first) == Donation.Status.PROCESSING
    assert not DonorEmail.objects.exists()


def test_processing_of_a_renewal_by_debit_marks_its_donation_processing(client):
    gift = GiftFactory(status=Gift.Status.ACTIVE)
    renewal = DonationFactory(
        gift=gift, donor=gift.donor, frequency="month", stripe_invoice_id="in_renewal7"
    )

    se.post_event(client, processing_event(renewal, "current"))

    assert status(renewal) == Donation.Status.PROCESSING
    assert selectors.donation_outcome(donation=Donation.objects.get(pk=renewal.pk)) == "processing"


def test_the_thank_you_page_never_calls_a_processing_debit_failed(client):
    from outlet.donations.tokens import checkout_token_make

    donation = DonationFactory(status=Donation.Status.PROCESSING)

    page = client.get(f"/donate/thanks/{checkout_token_make(donation_id=donation.pk)}/")

    text = page.content.decode()
    assert page.status_code == 200
    assert "did not go through" not in text
    assert "Your gift is being processed…" in text and "few working days" in text


def test_the_return_page_never_calls_a_processing_debit_failed(client, stub):
    """A bank debit that came back through a bank's page is processing at Stripe: the
    return page says so (it said "did not go through, nothing was charged", inviting a
    second gift) and the donation is processing, not failed."""
    from outlet.donations.tokens import checkout_token_make

    step = services.checkout_intent_create(
        email="reader@example.org", name="A Reader", amount=2500, cover_fee=False,
        frequency="once", ip="203.0.113.9", checkout_key="debit-return-1",
    )  # fmt: skip
    payment_intent_id = step.client_secret.split("_secret_")[0]
    stub.objects[payment_intent_id]["status"] = "processing"  # confirmed with a debit

    page = client.get(
        "/donate/return/",
        {
            "token": checkout_token_make(donation_id=step.donation.pk),
            "payment_intent": payment_intent_id,
        },
    )

    text = page.content.decode()
    assert page.status_code == 200
    assert "did not go through" not in text
    assert "Your gift is being processed…" in text
    assert Donation.objects.get(pk=step.donation.pk).status == Donation.Status.PROCESSING
    assert not DonorEmail.objects.exists()


def test_a_renewal_by_debit_that_fails_says_the_bank_not_the_card(client):
    gift = GiftFactory(status=Gift.Status.ACTIVE)
    DonationFactory(gift=gift, donor=gift.donor, frequency="month", status="paid")
    renewal = DonationFactory(
        gift=gift, donor=gift.donor, frequency="month", stripe_invoice_id="in_renewal9"
    )
    se.post_event(client, processing_event(renewal, "current"))

    se.post_event(client, se.invoice_2017(gift, invoice_id="in_renewal9", paid=False))
    send_owed()

    assert status(renewal) == Donation.Status.FAILED
    assert not DonorEmail.objects.filter(kind=DonorEmail.Kind.PAYMENT_FAILED).exists()
    [notice] = mail.outbox
    assert "SEPA Direct Debit from the account ending 3000" in notice.body
    assert "card" not in notice.body.split("\n")[0]
