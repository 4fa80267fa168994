"""A bilingual site (SITE_LANGUAGES=es,en): the default language unprefixed, English under
/en/, the language taken from the address only, articles linked to their translations."""

from __future__ import annotations

import re
import uuid
from xml.etree import ElementTree

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from outlet.articles.models import Article
from outlet.articles.services import article_translation_create
from outlet.pages.models import Page
from tests.factories import ArticleFactory, SectionFactory

pytestmark = pytest.mark.django_db

SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
XHTML = "{http://www.w3.org/1999/xhtml}"


@pytest.fixture(autouse=True)
def _site_url(settings):
    settings.SITE_URL = "http://testserver"


@pytest.fixture
def pair(bilingual):
    """A Spanish article (language blank: the default) and its English translation."""
    group = uuid.uuid4()
    section = SectionFactory(slug="politica")
    spanish = ArticleFactory(
        slug="el-mapa", headline="Cómo se trazó el mapa", section=section, translation_group=group
    )
    english = ArticleFactory(
        slug="the-map",
        headline="How the map was drawn",
        section=section,
        language="en",
        translation_group=group,
    )
    return spanish, english


def alternates(html: str) -> dict[str, str]:
    return dict(re.findall(r'<link rel="alternate" hreflang="([^"]+)" href="([^"]+)">', html))


def test_each_language_has_its_address_and_the_default_has_no_prefix(pair):
    spanish, english = pair
    assert spanish.get_absolute_url() == "/el-mapa/"
    assert english.get_absolute_url() == "/en/the-map/"
    page = Client().get("/en/the-map/")
    assert page.status_code == 200
    assert '<html lang="en" ' in page.text
    assert page["Content-Language"] == "en"
    assert '<html lang="es" ' in Client().get("/el-mapa/").text


def test_hreflang_alternates_are_reciprocal_with_an_x_default(pair):
    spanish_page = Client().get("/el-mapa/").text
    english_page = Client().get("/en/the-map/").text
    expected = {
        "es": "http://testserver/el-mapa/",
        "en": "http://testserver/en/the-map/",
        "x-default": "http://testserver/el-mapa/",
    }
    assert alternates(spanish_page) == expected
    assert alternates(english_page) == expected


def test_an_article_without_translation_declares_no_alternates(bilingual):
    ArticleFactory(slug="solo")
    assert alternates(Client().get("/solo/").text) == {}


def test_the_switcher_goes_to_the_translation_or_else_to_that_languages_home(pair):
    ArticleFactory(slug="solo")
    translated = Client().get("/el-mapa/").text
    assert '<a href="/en/the-map/" hreflang="en" lang="en">English</a>' in translated
    untranslated = Client().get("/solo/").text
    assert '<a href="/en/" hreflang="en" lang="en">English</a>' in untranslated


def test_an_article_is_served_under_its_own_language_only(pair):
    # The other language's address leads to the article's own, permanently.
    wrong = Client().get("/en/el-mapa/")
    assert (wrong.status_code, wrong["Location"]) == (301, "/el-mapa/")
    wrong = Client().get("/the-map/")
    assert (wrong.status_code, wrong["Location"]) == (301, "/en/the-map/")


@pytest.mark.parametrize("path", ["/de/", "/de/feed/", "/fr/el-mapa/", "/es/el-mapa/", "/es/"])
def test_a_language_the_site_does_not_publish_in_answers_404(pair, path):
    assert Client().get(path).status_code == 404


def test_lists_show_only_the_page_languages_articles(pair):
    spanish, english = pair
    home_es, home_en = Client().get("/").text, Client().get("/en/").text
    assert spanish.headline in home_es and english.headline not in home_es
    assert english.headline in home_en and spanish.headline not in home_en
    section_en = Client().get("/en/section/politica/").text
    assert english.headline in section_en and spanish.headline not in section_en


def test_feeds_are_per_language(pair):
    spanish, english = pair
    feed_es = Client().get("/feed/").text
    feed_en = Client().get("/en/feed/").text
    assert "<language>es</language>" in feed_es and "<language>en</language>" in feed_en
    assert spanish.headline in feed_es and english.headline not in feed_es
    assert english.headline in feed_en and spanish.headline not in feed_en
    assert "<link>http://testserver/en/</link>" in feed_en


def test_search_is_limited_to_the_pages_language(pair):
    # A word both articles hold, whatever the language's stemming (PostgreSQL's search
    # follows the page's language; SQLite matches substrings).
    Article.objects.filter(pk__in=[a.pk for a in pair]).update(body="<p>Springfield</p>")
    found_en = Client().get("/en/search/", {"q": "Springfield"}).text
    found_es = Client().get("/search/", {"q": "Springfield"}).text
    # Each page finds its own language's article only.
    assert 'href="/en/the-map/"' in found_en and 'href="/el-mapa/"' not in found_en
    assert 'href="/el-mapa/"' in found_es and 'href="/en/the-map/"' not in found_es


def test_the_sitemap_lists_each_translation_with_its_alternates(pair):
    sitemap = Client().get("/sitemap.xml")
    root = ElementTree.fromstring(sitemap.content)  # noqa: S314 (our own output)
    entries = {
        url.findtext(f"{SITEMAP}loc"): {
            link.get("hreflang"): link.get("href") for link in url.findall(f"{XHTML}link")
        }
        for url in root.findall(f"{SITEMAP}url")
    }
    expected = {
        "es": "http://testserver/el-mapa/",
        "en": "http://testserver/en/the-map/",
        "x-default": "http://testserver/el-mapa/",
    }
    assert entries["http://testserver/el-mapa/"] == expected
    assert entries["http://testserver/en/the-map/"] == expected
    # A section exists in every language: an entry each, naming the other.
    assert entries["http://testserver/en/section/politica/"]["es"] == (
        "http://testserver/section/politica/"
    )


def test_both_languages_get_the_same_cache_headers_and_no_vary_on_language(pair, settings):
    settings.EDGE_CACHE_SECONDS = 600
    settings.EDGE_PURGER = "outlet.core.purgers.Purger"
    spanish = Client(HTTP_ACCEPT_LANGUAGE="en").get("/el-mapa/")
    english = Client(HTTP_ACCEPT_LANGUAGE="es").get("/en/the-map/")
    assert spanish["Cache-Control"] == english["Cache-Control"]
    assert "s-maxage=600" in english["Cache-Control"]
    for page in (spanish, english):
        assert "accept-language" not in page.get("Vary", "").lower()
    # Neither a cookie nor Accept-Language changes the language of an address.
    cookie_browser = Client(HTTP_ACCEPT_LANGUAGE="en")
    cookie_browser.cookies["django_language"] = "en"
    assert '<html lang="es" ' in cookie_browser.get("/").text


def test_the_page_cache_keeps_each_language_apart(pair, settings):
    settings.CACHE_MIDDLEWARE_SECONDS = 300
    settings.DEBUG = True  # the page cache needs a shared cache; DEBUG counts as one
    first = Client().get("/en/")
    assert '<html lang="en" ' in first.text
    assert '<html lang="es" ' in Client().get("/").text
    assert '<html lang="en" ' in Client().get("/en/").text


def test_adding_a_translation_links_a_draft_copy_once_per_language(bilingual, editor):
    original = ArticleFactory(slug="el-mapa", headline="Cómo se trazó el mapa")
    copy = article_translation_create(article=original, language="en", user=editor)
    original.refresh_from_db()
    assert copy.status == Article.Status.DRAFT
    assert copy.language == "en" and copy.slug == "el-mapa-en"
    assert copy.translation_group == original.translation_group is not None
    assert [a.pk for a in copy.authors.all()] == [a.pk for a in original.authors.all()]
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        article_translation_create(article=original, language="en", user=editor)
    with pytest.raises(ValidationError):  # blank is Spanish, the default
        article_translation_create(article=copy, language="es", user=editor)
    with pytest.raises(ValidationError):
        article_translation_create(article=original, language="de", user=editor)


def test_the_admin_adds_a_translation_and_lists_it(bilingual, editor):
    original = ArticleFactory(slug="el-mapa")
    browser = Client()
    browser.force_login(editor)
    listing = reverse("admin:articles_article_changelist")
    answer = browser.post(
        listing, {"action": "translation_add", "_selected_action": [original.pk]}, follow=True
    )
    assert answer.status_code == 200
    copy = Article.objects.get(slug="el-mapa-en")
    change = browser.get(reverse("admin:articles_article_change", args=[original.pk])).text
    assert reverse("admin:articles_article_change", args=[copy.pk]) in change
    assert 'name="language"' in change


def test_the_admin_refuses_a_second_article_in_one_language_of_a_group(pair, editor):
    spanish, english = pair
    browser = Client()
    browser.force_login(editor)
    page = browser.get(reverse("admin:articles_article_change", args=[english.pk]))
    form = page.context["adminform"].form
    data = {
        **{name: form[name].value() or "" for name in form.fields if name != "featured_image"},
        "language": "es",
        "bylines-TOTAL_FORMS": "0",
        "bylines-INITIAL_FORMS": "0",
        "revisions-TOTAL_FORMS": "0",
        "revisions-INITIAL_FORMS": "0",
    }
    data["tags"] = []
    answer = browser.post(page.request["PATH_INFO"], data)
    assert answer.status_code == 200
    with translation.override("es"):  # the admin speaks the site's default language
        refusal = translation.gettext(
            "Another translation of this article is already in this language."
        )
    assert refusal in answer.text
    english.refresh_from_db()
    assert english.language == "en"


def test_a_page_has_its_language_and_translations_too(bilingual):
    group = uuid.uuid4()
    Page.objects.create(
        title="Quiénes somos", slug="quienes-somos", status="published", translation_group=group
    )
    english = Page.objects.create(
        title="About us", slug="about", status="published", language="en", translation_group=group
    )
    assert english.get_absolute_url() == "/en/page/about/"
    page = Client().get("/en/page/about/")
    assert alternates(page.text)["es"] == "http://testserver/page/quienes-somos/"
    assert Client().get("/page/about/")["Location"] == "/en/page/about/"


def test_a_single_language_site_has_no_prefix_switcher_or_alternates(settings):
    assert settings.LANGUAGES == [("en", "English")]
    article = ArticleFactory(slug="plain", translation_group=uuid.uuid4())
    ArticleFactory(slug="other", language="fr", translation_group=article.translation_group)
    assert article.get_absolute_url() == "/plain/"
    page = Client().get("/plain/")
    assert page.status_code == 200
    assert "hreflang" not in page.text and "language-switcher" not in page.text
    assert Client().get("/en/").status_code == 404
    assert Client().get("/feed/").status_code == 200


def test_the_donate_page_under_a_prefix_keeps_its_campaign_parameters(bilingual):
    page = Client().get("/en/donate/?source=the-map&utm_source=newsletter")
    assert page.status_code == 200 and '<html lang="en" ' in page.text
    assert 'value="newsletter"' in page.text


def test_the_page_admin_refuses_a_second_page_in_one_language_of_a_group(bilingual, admin_client):
    group = uuid.uuid4()
    Page.objects.create(title="Quiénes somos", slug="quienes-somos", translation_group=group)
    english = Page.objects.create(
        title="About us", slug="about", language="en", translation_group=group
    )
    answer = admin_client.post(
        reverse("admin:pages_page_change", args=[english.pk]),
        {"title": "About us", "slug": "about", "status": "draft", "language": ""},
    )
    assert answer.status_code == 200
    with translation.override("es"):  # the admin speaks the site's default language
        refusal = translation.gettext(
            "Another translation of this page is already in this language."
        )
    assert refusal in answer.text
    english.refresh_from_db()
    assert english.language == "en"


def test_an_article_page_keeps_its_language_whatever_address_was_asked_first(pair, settings):
    # Review: the article's data is kept under the content version (content_cached); a
    # visit to the other language's address first must not leave that language's related
    # cards, author links and inLanguage in the data the article's own page is built from.
    from outlet.articles.caching import content_version_bump

    settings.DEBUG = True  # content_cached keeps data only with a cache workers share
    spanish, english = pair
    ArticleFactory(slug="otro", headline="Otra nota en español", section=spanish.section)
    ArticleFactory(
        slug="other", headline="Another English story", section=spanish.section, language="en"
    )
    content_version_bump()
    assert Client().get("/en/el-mapa/").status_code == 301
    page = Client().get("/el-mapa/").text
    assert "Otra nota en español" in page
    assert "Another English story" not in page
    assert '"inLanguage": "es"' in page


def test_the_redirect_to_an_articles_own_language_is_purged_with_the_article(pair, settings):
    # Review: a shared cache (Varnish) holds the 301; when an editor changes the article's
    # language, purging the article's key must drop it, or the two addresses redirect to
    # each other until it expires.
    spanish, _english = pair
    wrong = Client().get("/en/el-mapa/")
    assert wrong.status_code == 301
    assert f"article-{spanish.pk}" in wrong[settings.EDGE_KEY_HEADER].split()


def test_the_news_sitemap_gives_each_article_its_own_language(pair, django_assert_max_num_queries):
    # Review: robots.txt names /sitemap-news.xml only, and it lists every language's
    # articles; each must carry its own <news:language>, not the page's, and reading
    # each article's language must not cost a query per article.
    for number in range(5):
        ArticleFactory(slug=f"nota-{number}", language="en")
    news = "{http://www.google.com/schemas/sitemap-news/0.9}"
    with django_assert_max_num_queries(3):
        sitemap = Client().get("/sitemap-news.xml")
    root = ElementTree.fromstring(sitemap.content)  # noqa: S314 (our own output)
    languages = {
        url.findtext(f"{SITEMAP}loc"): url.findtext(f"{news}news/{news}publication/{news}language")
        for url in root.findall(f"{SITEMAP}url")
    }
    assert languages["http://testserver/el-mapa/"] == "es"
    assert languages["http://testserver/en/the-map/"] == "en"
    assert languages["http://testserver/en/nota-0/"] == "en"


def test_a_language_dropped_from_the_site_is_not_served_from_the_page_cache(pair, settings):
    # Review: the page key named only the default language, so after a restart with
    # SITE_LANGUAGES=es (English dropped), the shared cache (Redis) still answered /en/
    # pages until an editor's save, where the site now answers 404.
    from django.urls import clear_url_caches

    settings.CACHE_MIDDLEWARE_SECONDS = 300
    settings.DEBUG = True  # the page cache needs a shared cache; DEBUG counts as one
    assert Client().get("/en/the-map/").status_code == 200
    settings.LANGUAGES = [("es", "español")]
    clear_url_caches()
    assert Client().get("/en/the-map/").status_code == 404
