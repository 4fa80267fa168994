"""A reader subscribes from an article in headless Chromium: double opt-in through the
captured mail, newsletters changed from the reader account, and RFC 8058 one-click
unsubscribe."""

from __future__ import annotations

import re
import time
import urllib.request

import pytest

from outlet.newsletters.models import Subscriber
from outlet.newsletters.tokens import list_unsubscribe_headers
from tests.conftest import WorkerProcess
from tests.factories import AppealFactory, ArticleFactory, NewsletterFactory

pytestmark = pytest.mark.django_db(transaction=True)

READER = "reader.e2e@example.com"


@pytest.fixture
def newsletter_site(live_server, smtp_sink, settings):
    """The live site with a real worker on the "mail" queue sending to the SMTP sink."""
    settings.SITE_URL = live_server.url
    worker = WorkerProcess(
        queues="mail", extra_env={"EMAIL_URL": smtp_sink.url, "SITE_URL": live_server.url}
    )
    try:
        worker.wait_ready()
        yield live_server.url
    finally:
        worker.stop()


def wait_for_mail(sink, address: str, count: int, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = sink.to(address)
        if len(messages) >= count:
            return messages[count - 1]
        time.sleep(0.2)
    raise AssertionError(f"no message #{count} for the reader within {timeout}s")


def link_in(message, kind: str) -> str:
    text = message.get_body(preferencelist=("plain",)).get_content()
    return re.search(rf"https?://\S+/newsletter/{kind}/\S+/", text).group(0)


def test_reader_subscribes_confirms_changes_preferences_and_unsubscribes_in_one_click(
    newsletter_site, smtp_sink, page, screenshot
):
    daily = NewsletterFactory(
        name="The Daily Briefing",
        slug="daily-briefing",
        description="The day's politics in five minutes, every weekday at 7 a.m.",
        position=1,
    )
    weekly = NewsletterFactory(
        name="The Weekly Analysis",
        slug="weekly-analysis",
        description="One long read on Saturday: what the week meant.",
        position=2,
    )
    AppealFactory(is_default=True)
    article = ArticleFactory(headline="How the district map was drawn")

    # Subscribe from the article's sign-up box, to both newsletters.
    page.goto(newsletter_site + article.get_absolute_url())
    box = page.get_by_role("complementary", name="Get our analysis by email")
    box.scroll_into_view_if_needed()
    screenshot("newsletter-article-signup-box")
    box.get_by_label("The Weekly Analysis").check()
    box.get_by_label("Email address").fill(READER)
    box.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/newsletter/thanks/")
    assert page.locator("h1").inner_text() == "Check your inbox"
    screenshot("newsletter-thanks")
    subscriber = Subscriber.objects.get(email=READER)
    assert subscriber.status == Subscriber.Status.PENDING
    assert subscriber.consent_records.get().page_url.endswith(article.get_absolute_url())

    # The confirmation email, as delivered by the worker.
    confirmation = wait_for_mail(smtp_sink, READER, 1)
    assert confirmation.get_body(preferencelist=("html",)) is not None
    confirm_url = link_in(confirmation, "confirm")
    assert READER not in confirm_url
    page.goto(confirm_url)
    screenshot("newsletter-confirm")
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.PENDING  # opening the link is not enough
    page.get_by_role("button", name="Confirm my subscription").click()
    assert page.locator("h1").inner_text() == "You're subscribed"
    screenshot("newsletter-confirmed")
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE
    assert {s.newsletter for s in subscriber.subscriptions.all()} == {daily, weekly}

    # Newsletters from the reader account, signed in by an emailed link: drop the daily.
    page.goto(newsletter_site + "/account/")
    page.get_by_label("Email address").fill(READER)
    page.get_by_role("button", name="Email me a sign-in link").click()
    page.get_by_text("a sign-in link is on its way").wait_for()
    sign_in_mail = wait_for_mail(smtp_sink, READER, 2)
    text = sign_in_mail.get_body(preferencelist=("plain",)).get_content()
    page.goto(re.search(r"https?://\S+/account/sign-in/\S+/", text).group(0))
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Unsubscribe from The Daily Briefing").click()
    page.get_by_text("You are unsubscribed from that newsletter").wait_for()
    screenshot("newsletter-account")
    assert [s.newsletter for s in subscriber.subscriptions.all()] == [weekly]
    assert page.get_by_role("button", name="Subscribe to The Daily Briefing").is_visible()

    # The List-Unsubscribe URL a newsletter issue carries.
    headers = list_unsubscribe_headers(subscriber, weekly)
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe_url = re.search(r"<(https?://[^>]+)>", headers["List-Unsubscribe"]).group(1)

    # A GET (a link scanner, or the reader's browser) changes nothing.
    page.goto(unsubscribe_url)
    assert page.get_by_role("button", name="Unsubscribe").is_visible()
    screenshot("newsletter-unsubscribe-get")
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE
    assert subscriber.subscriptions.count() == 1

    # The mailbox provider's one-click POST: no cookie, no CSRF token.
    request = urllib.request.Request(
        unsubscribe_url,
        data=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
    assert not subscriber.subscriptions.exists()

    # A tampered link gets a clear page that offers a new one.
    page.goto(unsubscribe_url[:-4] + "xyz/")
    assert "This link doesn" in page.locator("h1").inner_text()
    screenshot("newsletter-link-invalid")
    page.goto(newsletter_site + "/newsletter/")
    screenshot("newsletter-index")
