"""On a bilingual site every email goes out in its recipient's language: a subscriber's
or donor's (taken from the page they signed up or gave on), an issue in its newsletter's.
Django's own translations (month names) and the address prefix show the language."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.core import mail
from django.test import Client

from outlet.core.language import recipient_language
from outlet.donations.emails import donor_email_message
from outlet.donations.models import Donation, DonorEmail
from outlet.newsletters.emails import confirmation_email
from outlet.newsletters.models import Subscriber
from outlet.newsletters.sending import issue_render
from outlet.readers.emails import sign_in_email
from outlet.readers.models import Reader
from tests.factories import (
    DonationFactory,
    DonorFactory,
    IssueFactory,
    NewsletterFactory,
    SubscriberFactory,
)

pytestmark = pytest.mark.django_db


def html_of(message) -> str:
    return message.alternatives[0][0]


def html_lang(message) -> str:
    return re.search(r'<html lang="([^"]+)"', html_of(message)).group(1)


def paid_receipt(*, language: str) -> DonorEmail:
    donation = DonationFactory(
        donor=DonorFactory(language=language),
        status=Donation.Status.PAID,
        paid_at=datetime(2026, 3, 14, 12, tzinfo=UTC),
    )
    return DonorEmail.objects.create(kind="receipt", donor=donation.donor, donation=donation)


def test_a_receipt_is_in_the_donors_language(bilingual):
    english = donor_email_message(paid_receipt(language="en"))
    spanish = donor_email_message(paid_receipt(language=""))  # blank: the site's default
    assert (english.extra_headers["Content-Language"], html_lang(english)) == ("en", "en")
    assert (spanish.extra_headers["Content-Language"], html_lang(spanish)) == ("es", "es")
    # Dates and money in each language's conventions (Django's own month names, Babel).
    assert "March 14, 2026" in english.body and "$25.00" in english.body
    assert "14 de marzo de 2026" in spanish.body and "25,00\xa0US$" in spanish.body


def test_a_confirmation_goes_out_in_the_language_of_the_signup_page(bilingual):
    newsletter = NewsletterFactory()
    browser = Client()
    browser.post(
        "/en/newsletter/",
        {"email": "lector@example.com", "newsletters": [newsletter.pk], "form_name": "x"},
    )
    subscriber = Subscriber.objects.get(email="lector@example.com")
    assert subscriber.language == "en"
    message = confirmation_email(subscriber)
    assert (message.extra_headers["Content-Language"], html_lang(message)) == ("en", "en")
    assert "/en/newsletter/confirm/" in message.body

    Client().post(
        "/newsletter/",
        {"email": "otra@example.com", "newsletters": [newsletter.pk], "form_name": "x"},
    )
    spanish = confirmation_email(Subscriber.objects.get(email="otra@example.com"))
    assert (spanish.extra_headers["Content-Language"], html_lang(spanish)) == ("es", "es")
    assert "/newsletter/confirm/" in spanish.body and "/en/" not in spanish.body


def test_a_new_donor_gets_the_language_and_an_existing_one_keeps_theirs(bilingual, monkeypatch):
    from outlet.donations.services import checkout

    monkeypatch.setattr(checkout, "payment_attempt_register", lambda **kwargs: None)
    common = {"name": "D", "amount": 2500, "cover_fee": False, "frequency": "once"}
    checkout.checkout_donation_record(email="new@example.com", language="en", **common)
    DonorFactory(email="old@example.com", language="es")
    checkout.checkout_donation_record(email="old@example.com", language="en", **common)
    from outlet.donations.models import Donor

    assert Donor.objects.get(email="new@example.com").language == "en"
    assert Donor.objects.get(email="old@example.com").language == "es"


def test_an_issue_is_rendered_in_its_newsletters_language(bilingual):
    english = issue_render(issue=IssueFactory(newsletter=NewsletterFactory(language="en")))
    spanish = issue_render(issue=IssueFactory(newsletter=NewsletterFactory(slug="es-n")))
    assert '<html lang="en">' in english.html
    assert '<html lang="es">' in spanish.html


def test_a_sign_in_link_goes_out_in_the_readers_language(bilingual):
    SubscriberFactory(email="reader@example.com", language="en")
    message = sign_in_email(reader=Reader.objects.create(email="reader@example.com"), token="t")
    assert (message.extra_headers["Content-Language"], html_lang(message)) == ("en", "en")
    assert "/account/sign-in/t/" in message.body
    stranger = sign_in_email(reader=Reader.objects.create(email="new@example.com"), token="t")
    assert stranger.extra_headers["Content-Language"] == "es"


def test_a_language_no_longer_published_falls_back_to_the_default(bilingual):
    assert recipient_language(obj=SubscriberFactory(language="fr")) == "es"
    assert recipient_language(obj=None) == "es"


def test_a_single_language_site_sends_everything_in_its_language():
    message = confirmation_email(SubscriberFactory(language="fr"))
    assert message.extra_headers["Content-Language"] == "en"
    assert html_lang(message) == "en"
    assert len(mail.outbox) == 0


def test_an_issues_unsubscribe_link_opens_the_page_in_its_language(bilingual):
    from outlet.newsletters.sending.skeleton import MessageSkeleton

    issue = IssueFactory(newsletter=NewsletterFactory(language="en"))
    copy = MessageSkeleton.build(issue=issue).personalise(
        delivery_id=1, subscriber=SubscriberFactory(), build_data=False
    )
    assert "/en/newsletter/unsubscribe/" in copy.headers["List-Unsubscribe"]


def test_a_stranger_signing_up_an_address_does_not_change_a_confirmed_readers_language(
    bilingual,
):
    # Review: anyone can type any address into the sign-up box. A reader who once proved
    # their mailbox (and may have chosen a language in their account) and has since
    # unsubscribed keeps the language of their emails (sign-in links follow it).
    newsletter = NewsletterFactory()
    SubscriberFactory(
        email="lectora@example.com",
        language="es",
        status=Subscriber.Status.UNSUBSCRIBED,
        confirmed_at=datetime(2026, 1, 5, tzinfo=UTC),
    )
    Client().post(
        "/en/newsletter/",
        {"email": "lectora@example.com", "newsletters": [newsletter.pk], "form_name": "x"},
    )
    assert Subscriber.objects.get(email="lectora@example.com").language == "es"
    assert recipient_language(obj=Reader(email="lectora@example.com")) == "es"


def test_a_never_confirmed_address_takes_the_language_of_its_latest_signup(bilingual):
    newsletter = NewsletterFactory()
    SubscriberFactory(
        email="nuevo@example.com",
        language="es",
        status=Subscriber.Status.PENDING,
        confirmed_at=None,
    )
    Client().post(
        "/en/newsletter/",
        {"email": "nuevo@example.com", "newsletters": [newsletter.pk], "form_name": "x"},
    )
    assert Subscriber.objects.get(email="nuevo@example.com").language == "en"


def test_a_strangers_unconfirmed_signup_does_not_choose_a_donors_sign_in_language(bilingual):
    # Review: a stranger signs up a donor's address on /en/; the pending subscriber row
    # (never confirmed) must not outrank the donor's own language for sign-in emails.
    DonorFactory(email="donante@example.com", language="es")
    Client().post(
        "/en/newsletter/",
        {"email": "donante@example.com", "newsletters": [NewsletterFactory().pk], "form_name": "x"},
    )
    assert Subscriber.objects.get(email="donante@example.com").confirmed_at is None
    assert recipient_language(obj=Reader(email="donante@example.com")) == "es"
    # Someone who only signed up (no gift) still gets the language of their sign-up page.
    SubscriberFactory(email="solo@example.com", language="en", confirmed_at=None)
    assert recipient_language(obj=Reader(email="solo@example.com")) == "en"
