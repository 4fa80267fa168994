"""Deleting an article is an editor's act: a contributor is refused in the admin and by
the service itself, whatever permissions their account was given."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from outlet.articles.models import Article
from outlet.articles.services import article_delete, articles_delete
from tests.factories import ArticleFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def own_draft(contributor) -> Article:
    return ArticleFactory(status=Article.Status.DRAFT, created_by=contributor)


def _delete_through_the_admin(client, article: Article) -> list[int]:
    """The delete page and the changelist's bulk delete, as far as each goes."""
    url = reverse("admin:articles_article_delete", args=[article.pk])
    changelist = reverse("admin:articles_article_changelist")
    return [
        client.get(url).status_code,
        client.post(url, {"post": "yes"}).status_code,
        client.post(
            changelist,
            {"action": "delete_selected", "_selected_action": [article.pk], "post": "yes"},
        ).status_code,
    ]


def test_a_contributor_cannot_delete_their_own_draft_in_the_admin(client, contributor, own_draft):
    client.force_login(contributor)

    statuses = _delete_through_the_admin(client, own_draft)

    assert statuses[:2] == [403, 403]
    assert Article.objects.filter(pk=own_draft.pk).exists()


def test_a_contributor_given_the_delete_permission_still_cannot_delete(
    client, contributor, own_draft
):
    contributor.user_permissions.add(Permission.objects.get(codename="delete_article"))
    client.force_login(contributor)

    statuses = _delete_through_the_admin(client, own_draft)

    assert statuses[:2] == [403, 403]
    assert Article.objects.filter(pk=own_draft.pk).exists()


def test_the_delete_service_refuses_a_contributor(contributor, own_draft):
    contributor.user_permissions.add(Permission.objects.get(codename="delete_article"))

    with pytest.raises(PermissionDenied):
        article_delete(article=own_draft, user=contributor)
    with pytest.raises(PermissionDenied):
        articles_delete(articles=[own_draft], user=contributor)

    assert Article.objects.filter(pk=own_draft.pk).exists()


def test_an_editor_deletes_in_the_admin_and_through_the_service(client, editor):
    first, second = ArticleFactory(), ArticleFactory()
    client.force_login(editor)

    response = client.post(
        reverse("admin:articles_article_delete", args=[first.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert article_delete(article=second, user=editor) == 1
    assert not Article.objects.filter(pk__in=[first.pk, second.pk]).exists()
