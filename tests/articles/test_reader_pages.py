"""What readers see: article pages, listings, archive, search, previews and share links."""

from datetime import datetime, timedelta

import pytest
from django.core import signing
from django.utils import timezone

from outlet.articles.sharing import SALT, article_share_path
from tests.factories import AppealFactory, ArticleFactory, AuthorFactory, SectionFactory, TagFactory

pytestmark = pytest.mark.django_db


def test_article_page_shows_byline_dates_reading_time_tags_related_and_appeal(client, settings):
    settings.TIME_ZONE = "America/New_York"
    maren = AuthorFactory(name="Maren Holt", slug="maren-holt")
    tag = TagFactory(name="Redistricting", slug="redistricting")
    section = SectionFactory(name="Politics", slug="politics")
    published = datetime(2026, 3, 6, 23, 30, tzinfo=timezone.UTC)
    article = ArticleFactory(
        authors=[maren],
        section=section,
        publish_at=published,
        revised_at=published + timedelta(days=1),
        body="<p>" + "word " * 700 + "</p>",
        appeal=AppealFactory(heading="Keep us independent"),
    )
    article.tags.add(tag)
    neighbour = ArticleFactory(headline="Another map story", section=section)
    neighbour.tags.add(tag)

    text = client.get(article.get_absolute_url()).content.decode()

    assert '<a href="/author/maren-holt/" rel="author">Maren Holt</a>' in text
    # 23:30 UTC on March 6 is 6:30 pm in New York (EST).
    assert "March 6, 2026, 6:30 p.m. EST" in text
    assert "Updated" in text and "March 7, 2026" in text
    assert "4 min read" in text
    assert '<a href="/tag/redistricting/">Redistricting</a>' in text
    assert "Another map story" in text
    assert "Keep us independent" in text
    assert f'href="/donate/?source={article.slug}"' in text


@pytest.mark.parametrize("status", ["draft", "review", "unpublished"])
def test_unpublished_articles_are_404_without_a_trace(client, status):
    article = ArticleFactory(status=status, headline="Hidden work")

    assert client.get(article.get_absolute_url()).status_code == 404
    for page in [
        "/",
        "/feed/",
        "/sitemap.xml",
        "/search/?q=Hidden",
        f"/section/{article.section.slug}/",
    ]:
        assert "Hidden work" not in client.get(page).content.decode()
        assert article.slug not in client.get(page).content.decode()


def test_scheduled_article_is_404_until_its_time(client):
    article = ArticleFactory(
        status="scheduled",
        headline="Tomorrow's story",
        publish_at=timezone.now() + timedelta(minutes=5),
    )

    assert client.get(article.get_absolute_url()).status_code == 404
    assert "Tomorrow" not in client.get("/").content.decode()


def test_home_page_has_per_section_rails(client):
    politics = SectionFactory(name="Politics", slug="politics")
    economy = SectionFactory(name="Economy", slug="economy")
    ArticleFactory(section=politics, headline="Lead story")
    ArticleFactory(
        section=economy, headline="Budget story", publish_at=timezone.now() - timedelta(days=1)
    )

    text = client.get("/").content.decode()

    assert 'id="rail-economy"' in text
    assert "Budget story" in text


def test_tag_page_lists_its_articles(client):
    tag = TagFactory(name="Elections", slug="elections")
    tagged = ArticleFactory(headline="Tagged story")
    tagged.tags.add(tag)
    ArticleFactory(headline="Untagged story")

    text = client.get("/tag/elections/").content.decode()

    assert "Tagged story" in text and "Untagged story" not in text


def test_archive_lists_months_and_a_month_lists_its_articles(client, settings):
    settings.TIME_ZONE = "America/New_York"
    # 02:00 UTC on April 1 is still March 31 in New York.
    ArticleFactory(
        headline="Late March story", publish_at=datetime(2026, 4, 1, 2, 0, tzinfo=timezone.UTC)
    )
    ArticleFactory(
        headline="April story", publish_at=datetime(2026, 4, 10, 12, 0, tzinfo=timezone.UTC)
    )

    index = client.get("/archive/").content.decode()
    march = client.get("/archive/2026/3/").content.decode()

    assert 'href="/archive/2026/3/"' in index and 'href="/archive/2026/4/"' in index
    assert "Late March story" in march and "April story" not in march
    assert client.get("/archive/2026/13/").status_code == 404


def test_search_finds_published_articles_and_marks_the_words(client):
    ArticleFactory(headline="The redistricting commission", dek="Lines on a map.")
    ArticleFactory(headline="Budget surplus", dek="Money.")

    text = client.get("/search/?q=redistricting").content.decode()

    assert "The <mark>redistricting</mark> commission" in text
    assert "Budget surplus" not in text
    assert "1 result" in text


@pytest.mark.parametrize(
    "query",
    [
        "",
        "   ",
        "'",
        '"unbalanced',
        "a & b | !c",
        "<script>alert(1)</script>",
        "x" * 5000,
        "%00\x00",
        "-- ;",
    ],
)
def test_malformed_search_queries_get_a_normal_page(client, query):
    ArticleFactory(headline="Something")

    response = client.get("/search/", {"q": query})

    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in response.content.decode()


@pytest.mark.parametrize("page", ["abc", "-1", "0", "99999", "1e9", "9" * 40, ""])
def test_malformed_page_numbers_get_a_normal_page(client, page):
    section = SectionFactory(slug="politics")
    ArticleFactory.create_batch(3, section=section)

    response = client.get("/section/politics/", {"page": page})

    assert response.status_code == 200


def test_staff_preview_shows_a_draft_on_the_real_template(client, editor):
    draft = ArticleFactory(status="draft", headline="Work in progress")
    client.force_login(editor)

    response = client.get(f"/preview/{draft.pk}/")

    text = response.content.decode()
    assert response.status_code == 200
    assert "Work in progress" in text and 'class="story__headline"' in text
    assert 'name="robots" content="noindex' in text


def test_readers_cannot_use_the_preview(client):
    draft = ArticleFactory(status="draft")

    assert client.get(f"/preview/{draft.pk}/").status_code == 404


def test_contributor_previews_only_own_articles(client, contributor, other_contributor):
    own = ArticleFactory(status="draft", created_by=contributor)
    other = ArticleFactory(status="draft", created_by=other_contributor)
    client.force_login(contributor)

    assert client.get(f"/preview/{own.pk}/").status_code == 200
    assert client.get(f"/preview/{other.pk}/").status_code == 403


def test_share_link_lets_anyone_read_one_draft(client):
    draft = ArticleFactory(status="draft", headline="Shared draft")

    response = client.get(article_share_path(article=draft))

    assert response.status_code == 200
    assert "Shared draft" in response.content.decode()
    assert response["Cache-Control"].startswith("max-age=0")


def test_tampered_share_link_is_a_403_that_says_why(client):
    draft = ArticleFactory(status="draft")
    path = article_share_path(article=draft)
    other = ArticleFactory(status="draft")
    tampered = path.replace(f"/share/{draft.pk}:", f"/share/{other.pk}:")

    response = client.get(tampered)

    assert response.status_code == 403
    assert "This preview link is not valid" in response.content.decode()


def test_expired_share_link_is_a_403_that_says_why(client):
    draft = ArticleFactory(status="draft")
    signer = signing.TimestampSigner(salt=SALT)
    old = timezone.now() - timedelta(days=8)
    token = signer.sign(str(draft.pk))
    signer.timestamp = lambda: signing.b62_encode(int(old.timestamp()))  # type: ignore[method-assign]
    token = signer.sign(str(draft.pk))

    response = client.get(f"/share/{token}/")

    assert response.status_code == 403
    assert "This preview link has expired" in response.content.decode()


def test_postgresql_search_ranks_headlines_first_and_highlights_the_body():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("full-text search runs on PostgreSQL; SQLite uses the simple fallback")
    ArticleFactory(
        headline="Water board elections",
        body="<p>Nobody mentions gerrymandering here at all, except once.</p>",
        publish_at=timezone.now() - timedelta(hours=1),
    )
    ArticleFactory(headline="Gerrymandering, explained", body="<p>Lines and maps.</p>")

    from django.test import Client

    text = Client().get("/search/", {"q": "gerrymandering"}).content.decode()

    assert text.index("<mark>Gerrymandering</mark>, explained") < text.index("Water board")
    assert "<mark>gerrymandering</mark>" in text
    assert "<p>" not in text.split("search-count")[1].split("site-footer")[0]
