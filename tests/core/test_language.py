"""The site's language reaches everything that names it: <html lang>, og:locale, JSON-LD,
feeds, emails and the JavaScript catalog (issue 24).

No translations are needed for these: they prove the plumbing, with the language set
the way SITE_LANGUAGE sets it (LANGUAGE_CODE and LANGUAGES).
"""

import json
import re

import pytest
from django.template.loader import render_to_string
from django.utils import translation

from outlet.core.language import language_tag, open_graph_locale, recipient_language
from outlet.newsletters.emails import confirmation_email
from outlet.newsletters.sending.rendering import issue_render
from tests.factories import ArticleFactory, IssueFactory, NewsletterFactory, SubscriberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def site_language(settings):
    """Switch the site's language as SITE_LANGUAGE does at startup."""

    def switch(code: str) -> None:
        settings.LANGUAGE_CODE = code
        settings.LANGUAGES = [(code, code)]

    return switch


def html_lang(text: str) -> str:
    match = re.search(r'<html lang="([^"]+)"', text)
    assert match, "no lang attribute on <html>"
    return match.group(1)


@pytest.mark.parametrize(
    ("code", "tag", "og"),
    [
        ("en", "en", "en_US"),
        ("es", "es", "es_ES"),
        ("pt-br", "pt-BR", "pt_BR"),
        ("fr", "fr", "fr_FR"),
    ],
)
def test_language_names_for_json_ld_and_open_graph(code, tag, og):
    assert language_tag(code) == tag
    assert open_graph_locale(code) == og


@pytest.mark.parametrize(("code", "og"), [("es", "es_ES"), ("pt-br", "pt_BR")])
def test_reader_pages_name_the_site_language_in_html_lang_and_og_locale(
    client, site_language, code, og
):
    site_language(code)
    article = ArticleFactory()

    with translation.override(code):
        home = client.get("/").content.decode()
        page = client.get(article.get_absolute_url()).content.decode()
        missing = client.get("/no-such-page/").content.decode()

    for text in (home, page, missing):
        assert html_lang(text) == code
        assert f'<meta property="og:locale" content="{og}">' in text


def test_english_is_the_default_language(client):
    text = client.get("/").content.decode()

    assert html_lang(text) == "en"
    assert '<meta property="og:locale" content="en_US">' in text


def test_article_json_ld_states_the_language_it_is_written_in(client, site_language):
    site_language("pt-br")
    article = ArticleFactory()

    with translation.override("pt-br"):
        text = client.get(article.get_absolute_url()).content.decode()

    match = re.search(r'<script type="application/ld\+json">(.*?)</script>', text, re.S)
    assert match
    assert json.loads(match.group(1))["inLanguage"] == "pt-BR"


def test_feeds_declare_the_site_language(client, site_language):
    site_language("es")
    ArticleFactory()

    with translation.override("es"):
        rss = client.get("/feed/").content.decode()
        atom = client.get("/feed/atom/").content.decode()

    assert "<language>es</language>" in rss
    assert 'xml:lang="es"' in atom


def test_server_error_page_follows_the_active_language():
    with translation.override("fr"):
        text = render_to_string("500.html")

    assert html_lang(text) == "fr"


def test_emails_are_written_in_the_recipients_language_without_a_request(site_language):
    """A Celery worker has no active language of its own: the email chooses it."""
    site_language("fr")
    subscriber = SubscriberFactory(newsletters=[NewsletterFactory()])

    with translation.override("en"):  # whatever the worker happens to have active
        message = confirmation_email(subscriber)

    assert recipient_language(obj=subscriber) == "fr"
    html = message.alternatives[0][0]
    assert html_lang(html) == "fr"


def test_newsletter_issue_is_rendered_in_its_readers_language(site_language):
    site_language("es")
    issue = IssueFactory()

    with translation.override("en"):
        rendered = issue_render(issue=issue)

    assert html_lang(rendered.html) == "es"


def test_javascript_catalog_is_served_as_a_cacheable_script(client):
    response = client.get("/jsi18n/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert "django.gettext = function" in response.content.decode()
    assert "public" in response["Cache-Control"]
    assert "Set-Cookie" not in response
    again = client.get("/jsi18n/", headers={"if-none-match": response["ETag"]})
    assert again.status_code == 304


def test_every_page_loads_the_javascript_catalog_before_its_scripts(client):
    text = client.get("/").content.decode()

    catalog = text.index('<script src="/jsi18n/"')
    assert catalog < text.index("js/forms.js")


def test_news_sitemap_names_the_publication_language(client, site_language):
    site_language("pt-br")
    ArticleFactory()

    with translation.override("pt-br"):
        text = client.get("/sitemap-news.xml").content.decode()

    assert "<news:language>pt</news:language>" in text


def test_bylines_join_authors_the_languages_way(client, site_language):
    from tests.factories import AuthorFactory

    authors = [AuthorFactory(name=name) for name in ("Ana Ruiz", "Bo Lind", "Cy Okafor")]
    article = ArticleFactory(authors=authors)
    english = client.get(article.get_absolute_url()).content.decode()
    site_language("es")

    with translation.override("es"):
        spanish = client.get(article.get_absolute_url()).content.decode()

    plain = re.compile(r"<[^>]+>")
    assert "Ana Ruiz, Bo Lind and Cy Okafor" in plain.sub("", english)
    assert "Ana Ruiz, Bo Lind y Cy Okafor" in plain.sub("", spanish)
