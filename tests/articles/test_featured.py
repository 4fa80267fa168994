"""Featured articles lead the home page, and featuring one changes the cached front at once."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from outlet.articles.models import Article
from outlet.articles.services import article_save, articles_feature
from tests.articles.test_admin_workflow import ADD_URL, form_data
from tests.factories import ArticleFactory, SectionFactory

pytestmark = pytest.mark.django_db


def lead_story(text: str) -> str:
    start = text.index('aria-label="Lead story"')
    return text[start : text.index("</section>", start)]


def test_the_newest_featured_article_leads_the_home_page(client):
    week_ago = timezone.now() - timedelta(days=7)
    ArticleFactory(headline="A featured investigation", featured=True, publish_at=week_ago)
    ArticleFactory(
        headline="An older featured piece", featured=True, publish_at=week_ago.replace(year=2020)
    )
    ArticleFactory(headline="The morning brief")

    text = client.get("/").content.decode()

    lead = lead_story(text)
    assert "A featured investigation" in lead
    assert "An older featured piece" in lead
    assert lead.index("A featured investigation") < lead.index("An older featured piece")
    assert "The morning brief" not in lead
    assert "The morning brief" in text  # still in the latest list
    assert text.count("A featured investigation</a>") == 1


def test_without_featured_articles_the_newest_leads(client):
    ArticleFactory(headline="The story before", publish_at=timezone.now() - timedelta(days=1))
    ArticleFactory(headline="The morning story")

    assert "The morning story" in lead_story(client.get("/").content.decode())


def test_a_featured_draft_does_not_lead(client):
    ArticleFactory(headline="Unfinished feature", featured=True, status="draft")
    ArticleFactory(headline="The morning story")

    text = client.get("/").content.decode()

    assert "Unfinished feature" not in text
    assert "The morning story" in lead_story(text)


def test_featuring_an_article_in_the_admin_changes_the_cached_home_page(
    client, editor, django_capture_on_commit_callbacks
):
    ArticleFactory(headline="The morning story")
    older = ArticleFactory(headline="The long read", publish_at=timezone.now() - timedelta(days=3))
    assert "The long read" not in lead_story(client.get("/").content.decode())  # now cached
    client.force_login(editor)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/articles/article/",
            {"action": "feature", "_selected_action": [older.pk]},
        )
    assert response.status_code == 302
    client.logout()

    older.refresh_from_db()
    assert older.featured
    assert "The long read" in lead_story(client.get("/").content.decode())

    with django_capture_on_commit_callbacks(execute=True):
        client.force_login(editor)
        client.post(
            "/admin/articles/article/",
            {"action": "unfeature", "_selected_action": [older.pk]},
        )
        client.logout()
    assert not Article.objects.get(pk=older.pk).featured
    assert "The long read" not in lead_story(client.get("/").content.decode())


def test_contributors_cannot_feature_articles(client, contributor):
    article = ArticleFactory(headline="Mine", created_by=contributor, status="draft")
    client.force_login(contributor)

    client.post("/admin/articles/article/", {"action": "feature", "_selected_action": [article.pk]})

    article.refresh_from_db()
    assert not article.featured


def test_a_contributor_cannot_feature_their_draft_by_posting_the_field(client, contributor):
    client.force_login(contributor)

    response = client.post(ADD_URL, form_data(section=SectionFactory(), featured="on"))

    assert response.status_code == 302
    assert Article.objects.get(slug="the-map-explained").featured is False


def test_saving_a_featured_article_through_the_workflow_needs_an_editor(contributor):
    article = ArticleFactory.build(status="draft", featured=True)
    article.section.save()

    with pytest.raises(ValidationError) as raised:
        article_save(article=article, user=contributor)
    assert "featured" in raised.value.message_dict


def test_featuring_twice_changes_it_once(editor):
    article = ArticleFactory()

    assert articles_feature(articles=[article], featured=True, user=editor) == 1
    assert articles_feature(articles=[article], featured=True, user=editor) == 0
    assert Article.objects.get(pk=article.pk).featured


def test_only_the_lead_story_is_set_as_the_lead(client):
    """The view's `lead` once leaked into every card on the front: each headline an h2."""
    ArticleFactory(headline="A featured investigation", featured=True)
    ArticleFactory(headline="Another feature", featured=True)
    ArticleFactory.create_batch(3)

    text = client.get("/").content.decode()

    assert text.count("card--lead") == 1
    assert text.count('<h2 class="card__headline') == 1
