"""The front page in headless Chromium, as a reader sees it."""

import pytest

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
