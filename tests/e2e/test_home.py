"""The front page in headless Chromium, as a reader sees it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import ArticleFactory, SectionFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_reader_opens_home_page_and_follows_the_lead_story(live_server, page, screenshot):
    politics = SectionFactory(name="Politics", slug="politics")
    ArticleFactory(headline="How the map was drawn", section=politics)
    ArticleFactory(
        headline="The budget surplus", section=SectionFactory(name="Economy", slug="economy")
    )

    page.goto(live_server.url + "/")
    screenshot("home")

    assert page.locator("h1").count() == 1
    assert (
        page.get_by_role("navigation", name="Sections")
        .get_by_role("link", name="Politics")
        .is_visible()
    )
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"

    page.get_by_role("link", name="How the map was drawn").first.click()
    page.wait_for_url("**/article-*/")
    assert page.locator("h1").inner_text() == "How the map was drawn"
    screenshot("article")


def test_a_featured_article_leads_the_front_above_newer_stories(live_server, page, screenshot):
    politics = SectionFactory(name="Politics", slug="politics")
    last_week = timezone.now() - timedelta(days=7)
    ArticleFactory(headline="The river towns investigation", section=politics, featured=True,
                   publish_at=last_week)  # fmt: skip
    ArticleFactory(headline="How the map was drawn", section=politics, featured=True,
                   publish_at=last_week - timedelta(days=1))  # fmt: skip
    ArticleFactory(headline="This morning at the council", section=politics)

    page.goto(live_server.url + "/")
    screenshot("home-featured")

    lead = page.get_by_role("region", name="Lead story")
    assert lead.locator("h2.card__headline--lead").inner_text() == "The river towns investigation"
    assert lead.get_by_role("link", name="How the map was drawn").is_visible()
    latest = page.get_by_role("region", name="Latest")
    assert latest.get_by_role("link", name="This morning at the council").is_visible()
    assert latest.get_by_role("link", name="The river towns investigation").count() == 0
