"""An article taken down while an issue carrying it is being sent: the issue stops.

A sent issue's text is frozen when sending starts, so taking the article off the site
does not take it out of the copies still to go: the issue pauses for the editor, who
cancels it (or resumes knowingly), and says why.
"""

from __future__ import annotations

import pytest

from outlet.articles.services import article_save, article_unpublish, articles_delete
from outlet.newsletters.issues import issue_pause, issue_send_now
from outlet.newsletters.models import Issue
from tests.factories import ArticleFactory, IssueFactory, SubscriberFactory

pytestmark = pytest.mark.django_db

HEADLINE = "Quarry report, withdrawn"


def sending_issue(article, newsletter) -> Issue:
    SubscriberFactory(newsletters=[newsletter])
    issue = IssueFactory(newsletter=newsletter, articles=[article])
    issue_send_now(issue=issue)
    return Issue.objects.get(pk=issue.pk)


@pytest.mark.parametrize("takedown", ["delete", "unpublish", "status to draft"])
def test_taking_down_an_article_pauses_the_issue_sending_it(daily, takedown):
    article = ArticleFactory(headline=HEADLINE)
    other = ArticleFactory(headline="A story that stays")
    issue = sending_issue(article, daily)
    bystander = sending_issue(other, daily)

    if takedown == "delete":
        articles_delete(articles=[article])
    elif takedown == "unpublish":
        article_unpublish(article=article)
    else:
        article.status = article.Status.DRAFT
        article_save(article=article)

    issue.refresh_from_db()
    assert issue.status == Issue.Status.PAUSED
    assert HEADLINE in issue.pause_reason and "taken down" in issue.pause_reason
    assert issue.auto_resume_at is None
    assert Issue.objects.get(pk=bystander.pk).status == Issue.Status.SENDING


def test_a_paused_issue_carrying_it_no_longer_resumes_by_itself(daily):
    article = ArticleFactory(headline=HEADLINE)
    issue = sending_issue(article, daily)
    issue_pause(issue=issue, reason="Mail server down", retry_after=60)

    article_unpublish(article=article)

    issue.refresh_from_db()
    assert issue.status == Issue.Status.PAUSED and issue.auto_resume_at is None
    assert HEADLINE in issue.pause_reason


def test_an_edit_of_a_public_article_does_not_pause_anything(daily):
    article = ArticleFactory(headline=HEADLINE)
    issue = sending_issue(article, daily)

    article.dek = "A corrected dek."
    article_save(article=article)

    assert Issue.objects.get(pk=issue.pk).status == Issue.Status.SENDING
