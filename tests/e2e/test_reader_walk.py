"""A reader's walk on a phone, with a screenshot at each stop (var/screenshots/walk-*.png):
the front page, an article with a featured image and a pull quote, a search, the donate
form and the account."""

from __future__ import annotations

import pytest

from outlet.articles.models import Article
from outlet.articles.services import article_save
from outlet.readers.tokens import reader_token_make
from tests.articles.conftest import image_upload
from tests.e2e import test_reader_layout
from tests.e2e.conftest import SCREENSHOTS

pytestmark = pytest.mark.django_db(transaction=True)

reader_site = test_reader_layout.reader_site  # one of each reader page, long content included

PHONE = {"width": 390, "height": 844}


def box(page, selector: str) -> dict:
    return page.locator(selector).first.evaluate(
        "e => { const r = e.getBoundingClientRect(); return {left: r.left, right: r.right}; }"
    )


def test_a_reader_walks_the_site_on_a_phone(reader_site, browser):
    url, anonymous, _signed_in, reader = reader_site
    article = Article.objects.get(slug=anonymous["article"].strip("/"))
    article.featured_image = image_upload(size=(1600, 900))
    article.image_alt = "The council chamber"
    article_save(article=article)
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    page = context.new_page()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def screenshot(name: str, *, full_page: bool = False) -> None:
        page.screenshot(path=str(SCREENSHOTS / f"walk-{name}.png"), full_page=full_page)

    page.goto(url + "/")
    screenshot("1-home")
    page.get_by_role("link", name=article.headline).first.click()
    page.wait_for_url(f"**{anonymous['article']}")
    featured = page.locator(".story__figure img")
    assert featured.evaluate("img => img.complete && img.naturalWidth > 0")
    assert featured.evaluate("img => img.currentSrc").endswith(".avif")  # Chromium takes AVIF
    screenshot("2-article")
    page.locator(".pull-quote").scroll_into_view_if_needed()
    quote = box(page, ".pull-quote")
    assert quote["left"] >= 0 and quote["right"] <= PHONE["width"], quote
    screenshot("3-pull-quote")

    page.goto(url + "/search/")
    page.get_by_role("searchbox", name="Search our journalism").fill("district")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**/search/?q=district")
    headline = page.locator(".card__headline mark").first
    assert headline.inner_text().lower().startswith("district")
    screenshot("4-search")

    page.goto(url + "/donate/")
    page.wait_for_selector("#donate-submit:not([disabled])")
    assert page.get_by_label("Full name").is_visible()
    screenshot("5-donate", full_page=True)

    page.goto(url + f"/account/sign-in/{reader_token_make(purpose='sign-in', reader=reader)}/")
    screenshot("6-sign-in")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/account/?done=signed-in")
    assert page.get_by_text("$10.00").first.is_visible()
    screenshot("7-account", full_page=True)
    context.close()
