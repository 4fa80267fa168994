"""A reader chooses the language of their emails in their account (bilingual sites)."""

from __future__ import annotations

import pytest

from outlet.newsletters.models import Subscriber
from tests.factories import DonorFactory, NewsletterFactory, SubscriberFactory
from tests.readers.conftest import signed_in

pytestmark = pytest.mark.django_db


def test_the_account_changes_the_language_of_subscriber_and_donor(bilingual):
    SubscriberFactory(email="lee@example.com")
    donor = DonorFactory(email="lee@example.com")
    browser = signed_in("lee@example.com")
    page = browser.get("/account/")
    assert 'name="language"' in page.text

    answer = browser.post("/account/language/", {"language": "en"})

    assert answer.status_code == 302
    assert answer["Location"] == "/account/?done=language"
    assert Subscriber.objects.get(email="lee@example.com").language == "en"
    donor.refresh_from_db()
    assert donor.language == "en"
    # The account (private, never cached) shows in the reader's language.
    account = browser.get("/account/")
    assert '<option value="en" lang="en" selected>' in account.text
    assert '<html lang="en" ' in account.text and account["Content-Language"] == "en"


def test_a_language_the_site_does_not_publish_in_is_refused(bilingual):
    SubscriberFactory(email="lee@example.com", language="es")
    browser = signed_in("lee@example.com")
    answer = browser.post("/account/language/", {"language": "de"})
    assert answer.status_code == 400
    assert Subscriber.objects.get(email="lee@example.com").language == "es"


def test_a_single_language_account_offers_no_choice():
    SubscriberFactory(email="lee@example.com")
    assert 'name="language"' not in signed_in("lee@example.com").get("/account/").text


def test_the_signup_box_offers_the_page_languages_newsletters_first(bilingual):
    from django.test import Client

    from tests.factories import ArticleFactory

    NewsletterFactory(name="Boletín", slug="boletin", position=0)
    NewsletterFactory(name="Daily", slug="daily", language="en", position=1)
    spanish = ArticleFactory(slug="es-page")
    english = ArticleFactory(slug="en-page", language="en")

    def box(path: str) -> str:
        html = Client().get(path).text
        return html[html.index("signup-box__choices") :]

    box_es, box_en = box(spanish.get_absolute_url()), box(english.get_absolute_url())
    assert box_es.index("Boletín") < box_es.index("Daily")
    assert box_en.index("Daily") < box_en.index("Boletín")


def test_the_account_follows_the_donor_not_a_strangers_unconfirmed_signup(bilingual):
    # Review: the same order as the emails (core.language._language_of_address).
    from outlet.readers.models import Reader
    from outlet.readers.selectors import reader_account

    DonorFactory(email="donante@example.com", language="es")
    SubscriberFactory(email="donante@example.com", language="en", confirmed_at=None)
    reader = Reader.objects.create(email="donante@example.com")
    assert reader_account(reader=reader).language == "es"
