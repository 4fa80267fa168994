"""The admin enforces the workflow's roles on the server, and keeps what was typed."""

from datetime import timedelta

import pytest
from django.utils import timezone

from outlet.articles.models import Article, ArticleRevision
from tests.articles.conftest import image_upload
from tests.factories import ArticleFactory, AuthorFactory, SectionFactory

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/articles/article/add/"


def change_url(article: Article) -> str:
    return f"/admin/articles/article/{article.pk}/change/"


def form_data(*, section, authors=(), existing_bylines=(), **fields) -> dict:
    data = {
        "headline": "The map, explained",
        "slug": "the-map-explained",
        "dek": "What the commission did.",
        "section": section.pk,
        "kind": "analysis",
        "body": "<p>Intro.</p><h2>Lines</h2><p>More.</p>",
        "status": "draft",
        "publish_at_0": "",
        "publish_at_1": "",
        "image_alt": "",
        "image_caption": "",
        "image_credit": "",
        "seo_title": "",
        "seo_description": "",
        "appeal": "",
        "bylines-TOTAL_FORMS": str(len(authors) + len(existing_bylines)),
        "bylines-INITIAL_FORMS": str(len(existing_bylines)),
        "bylines-MIN_NUM_FORMS": "0",
        "bylines-MAX_NUM_FORMS": "1000",
        "revisions-TOTAL_FORMS": "0",
        "revisions-INITIAL_FORMS": "0",
        "revisions-MIN_NUM_FORMS": "0",
        "revisions-MAX_NUM_FORMS": "0",
    }
    for i, byline in enumerate(existing_bylines):
        data[f"bylines-{i}-id"] = byline.pk
        data[f"bylines-{i}-article"] = byline.article_id
        data[f"bylines-{i}-author"] = byline.author_id
        data[f"bylines-{i}-position"] = byline.position
    offset = len(existing_bylines)
    for i, author in enumerate(authors, start=offset):
        data[f"bylines-{i}-author"] = author.pk
        data[f"bylines-{i}-position"] = i
    data.update(fields)
    return data


def test_editor_publishes_an_article_with_an_author(client, editor):
    client.force_login(editor)
    section = SectionFactory()

    response = client.post(
        ADD_URL, form_data(section=section, authors=[AuthorFactory()], status="published")
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    article = Article.objects.get(slug="the-map-explained")
    assert article.status == "published" and article.publish_at is not None
    assert article.created_by == editor
    assert client.get(article.get_absolute_url()).status_code == 200


def test_contributor_cannot_publish_even_by_posting_the_status(client, contributor):
    client.force_login(contributor)

    response = client.post(
        ADD_URL, form_data(section=SectionFactory(), authors=[AuthorFactory()], status="published")
    )

    assert response.status_code == 200
    assert "Only editors can schedule, publish or unpublish" in response.content.decode()
    assert not Article.objects.exists()
    # What was typed is still in the form.
    assert "The map, explained" in response.content.decode()


def test_contributor_submits_own_draft_for_review(client, contributor):
    client.force_login(contributor)

    response = client.post(
        ADD_URL, form_data(section=SectionFactory(), authors=[AuthorFactory()], status="review")
    )

    assert response.status_code == 302
    article = Article.objects.get()
    assert article.status == "review" and article.created_by == contributor


def test_contributor_cannot_open_or_change_someone_elses_article(
    client, contributor, other_contributor
):
    article = ArticleFactory(status="draft", created_by=other_contributor, headline="Carl's draft")
    client.force_login(contributor)

    assert client.get(change_url(article)).status_code in (302, 403, 404)
    response = client.post(
        change_url(article),
        form_data(section=article.section, headline="Hijacked", slug=article.slug),
    )
    assert response.status_code in (302, 403, 404)
    article.refresh_from_db()
    assert article.headline == "Carl's draft"
    assert "Carl&#x27;s draft" not in client.get("/admin/articles/article/").content.decode()


def test_contributor_cannot_change_own_article_once_published(client, contributor):
    article = ArticleFactory(created_by=contributor, headline="Live now")
    client.force_login(contributor)

    response = client.post(
        change_url(article),
        form_data(
            section=article.section, headline="Sneaky edit", slug=article.slug, status="review"
        ),
    )

    assert response.status_code == 403
    article.refresh_from_db()
    assert article.headline == "Live now"


def test_publishing_without_an_author_is_refused_with_a_clear_error(client, editor):
    client.force_login(editor)

    response = client.post(ADD_URL, form_data(section=SectionFactory(), status="published"))

    assert response.status_code == 200
    assert "Add at least one author before scheduling or publishing." in response.content.decode()
    assert not Article.objects.exists()


def test_publishing_without_a_headline_is_refused(client, editor):
    client.force_login(editor)

    response = client.post(
        ADD_URL,
        form_data(
            section=SectionFactory(), authors=[AuthorFactory()], status="published", headline=""
        ),
    )

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not Article.objects.exists()


def test_publishing_needs_alt_text_for_featured_and_body_images(client, editor, media_root):
    client.force_login(editor)
    data = form_data(
        section=SectionFactory(),
        authors=[AuthorFactory()],
        status="published",
        body='<p>Text</p><figure><img src="/media/x.jpg"><figcaption>A chart</figcaption></figure>',
    )
    data["featured_image"] = image_upload()

    response = client.post(ADD_URL, data)

    text = response.content.decode()
    assert response.status_code == 200
    assert "Describe the featured image (alt text) before publishing." in text
    assert "1 image(s) in the body have no alt text" in text
    assert not Article.objects.exists()


def test_a_draft_may_be_saved_incomplete(client, editor):
    client.force_login(editor)

    response = client.post(ADD_URL, form_data(section=SectionFactory(), status="draft"))

    assert response.status_code == 302
    assert Article.objects.get().status == "draft"


def test_scheduling_needs_a_time(client, editor):
    client.force_login(editor)

    response = client.post(
        ADD_URL, form_data(section=SectionFactory(), authors=[AuthorFactory()], status="scheduled")
    )

    assert response.status_code == 200
    assert "Choose the date and time this article should go public." in response.content.decode()


def test_slug_collision_is_a_form_error_not_a_crash(client, editor):
    ArticleFactory(slug="the-map-explained")
    client.force_login(editor)

    response = client.post(ADD_URL, form_data(section=SectionFactory(), authors=[AuthorFactory()]))

    assert response.status_code == 200
    assert "Article with this Slug already exists." in response.content.decode()


def test_reserved_slug_is_refused(client, editor):
    client.force_login(editor)

    response = client.post(ADD_URL, form_data(section=SectionFactory(), slug="search"))

    assert response.status_code == 200
    assert "is an address the site already uses" in response.content.decode()


def test_editor_schedules_an_article_that_appears_only_at_its_time(client, editor):
    client.force_login(editor)
    when = timezone.localtime() + timedelta(hours=2)
    data = form_data(
        section=SectionFactory(),
        authors=[AuthorFactory()],
        status="scheduled",
        publish_at_0=when.strftime("%Y-%m-%d"),
        publish_at_1=when.strftime("%H:%M:%S"),
    )

    assert client.post(ADD_URL, data).status_code == 302
    client.logout()

    article = Article.objects.get()
    assert client.get(article.get_absolute_url()).status_code == 404
    Article.objects.filter(pk=article.pk).update(publish_at=timezone.now() - timedelta(seconds=1))
    assert client.get(article.get_absolute_url()).status_code == 200


def test_every_text_change_is_kept_and_can_be_restored(client, editor):
    client.force_login(editor)
    section, author = SectionFactory(), AuthorFactory()
    client.post(ADD_URL, form_data(section=section, authors=[author], body="<p>First version.</p>"))
    article = Article.objects.get()
    byline = article.bylines.get()
    client.post(
        change_url(article),
        form_data(section=section, existing_bylines=[byline], body="<p>Second version.</p>"),
    )
    assert article.revisions.count() == 2
    first = article.revisions.order_by("created_at", "id").first()

    page = client.get(f"/admin/articles/article/{article.pk}/revision/{first.pk}/")
    assert "First version." in page.content.decode()
    response = client.post(f"/admin/articles/article/{article.pk}/revision/{first.pk}/")

    assert response.status_code == 302
    article.refresh_from_db()
    assert article.body == "<p>First version.</p>"
    assert article.revisions.count() == 3
    assert ArticleRevision.objects.filter(note__startswith="Restored").exists()


def test_admin_change_form_loads_the_prose_editor(client, editor):
    client.force_login(editor)
    article = ArticleFactory(status="draft")

    response = client.get(change_url(article))

    text = response.content.decode()
    assert response.status_code == 200
    assert "data-django-prose-editor-configurable" in text
    assert "pull-quote" in text


def test_the_empty_byline_row_offers_the_next_place_in_the_byline(client, editor):
    article = ArticleFactory()  # one author, in the first place
    client.force_login(editor)

    text = client.get(change_url(article)).content.decode()

    assert 'name="bylines-0-position" value="0"' in text
    assert 'name="bylines-1-position" value="1"' in text


def test_an_untouched_empty_byline_row_is_not_an_error(client, editor):
    article = ArticleFactory()
    byline = article.bylines.get()
    client.force_login(editor)
    data = form_data(section=article.section, existing_bylines=[byline], slug=article.slug)
    data.update({"bylines-TOTAL_FORMS": "2", "bylines-1-author": "", "bylines-1-position": "1"})

    response = client.post(change_url(article), data)

    assert response.status_code == 302
    assert article.bylines.count() == 1


def test_a_table_saved_through_the_admin_form_stays_a_table(client, editor):
    """What the editor's Table extension sends: cells holding paragraphs, a header row."""
    client.force_login(editor)
    table = (
        "<table><tbody><tr><th><p>District</p></th><th><p>Turnout</p></th></tr>"
        '<tr><td colspan="2"><p>North: 61%</p></td></tr></tbody></table>'
    )

    response = client.post(
        ADD_URL, form_data(section=SectionFactory(), body=f"<p>Results.</p>{table}")
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    assert Article.objects.get(slug="the-map-explained").body == f"<p>Results.</p>{table}"
