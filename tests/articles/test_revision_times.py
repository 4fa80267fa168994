"""The revision history shows every time in the newsroom's own time zone."""

from datetime import UTC, datetime

import pytest

from outlet.articles.models import ArticleRevision
from tests.factories import ArticleFactory

pytestmark = pytest.mark.django_db

SAVED_AT = datetime(2026, 3, 1, 15, 30, tzinfo=UTC)  # 10:30 in New York


@pytest.fixture
def revision(settings):
    settings.TIME_ZONE = "America/New_York"
    article = ArticleFactory(headline="The map, explained")
    return ArticleRevision.objects.create(
        article=article, headline=article.headline, body="<p>Old.</p>", created_at=SAVED_AT
    )


def test_the_revision_page_shows_local_time_only(client, editor, revision):
    client.force_login(editor)

    text = client.get(
        f"/admin/articles/article/{revision.article_id}/revision/{revision.pk}/"
    ).content.decode()

    assert "10:30" in text
    assert "15:30" not in text and "3:30" not in text


def test_the_history_and_a_restore_note_show_local_time(client, editor, revision):
    client.force_login(editor)
    client.post(f"/admin/articles/article/{revision.article_id}/revision/{revision.pk}/")

    text = client.get(f"/admin/articles/article/{revision.article_id}/change/").content.decode()

    assert "10:30" in text
    assert "15:30" not in text and "3:30" not in text
    assert str(revision) == "The map, explained (2026-03-01 10:30)"
