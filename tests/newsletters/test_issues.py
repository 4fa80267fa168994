"""Editors and issues: what may be sent, the state machine, the admin's buttons,
the preview, test sends, scheduling and the public archive."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from outlet.newsletters.issues import (
    issue_cancel,
    issue_pause,
    issue_plan,
    issue_resume,
    issue_schedule,
    issue_send_now,
    issue_sending_check,
    issue_test_addresses_parse,
    issues_tick,
)
from outlet.newsletters.models import Issue
from outlet.newsletters.sending import batch_send
from outlet.newsletters.tasks import issue_test_send_task, issues_tick_task
from tests.factories import AppealFactory, ArticleFactory, IssueFactory, SubscriberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def editor(admin_client):
    return admin_client


def send_out(issue: Issue) -> Issue:
    issue_send_now(issue=issue)
    issue_plan(issue=Issue.objects.get(pk=issue.pk))
    while batch_send(issue_id=issue.pk).claimed:
        pass
    issue_sending_check(issue_id=issue.pk)
    return Issue.objects.get(pk=issue.pk)


# --- What may be sent ---------------------------------------------------------------


def test_issue_without_subject_cannot_be_sent(daily):
    SubscriberFactory(newsletters=[daily])
    issue = IssueFactory(newsletter=daily, subject="")

    with pytest.raises(ValidationError, match="no subject"):
        issue_send_now(issue=issue)
    assert Issue.objects.get(pk=issue.pk).status == Issue.Status.DRAFT


def test_issue_without_content_cannot_be_sent(daily):
    SubscriberFactory(newsletters=[daily])
    issue = IssueFactory(newsletter=daily, intro="", body="")

    with pytest.raises(ValidationError, match="no content"):
        issue_send_now(issue=issue)


def test_issue_without_recipients_cannot_be_sent(daily):
    issue = IssueFactory(newsletter=daily)

    with pytest.raises(ValidationError, match="No active subscriber"):
        issue_send_now(issue=issue)


def test_issue_with_an_unpublished_article_cannot_be_sent(daily):
    SubscriberFactory(newsletters=[daily])
    draft = ArticleFactory(headline="Not yet", status="draft")
    issue = IssueFactory(newsletter=daily, articles=[draft])

    with pytest.raises(ValidationError, match="Not published yet: Not yet"):
        issue_send_now(issue=issue)


def test_second_send_is_refused_and_plans_nothing_more(daily, django_capture_on_commit_callbacks):
    SubscriberFactory.create_batch(2, newsletters=[daily])
    issue = send_out(IssueFactory(newsletter=daily))
    deliveries = issue.deliveries.count()

    with (
        django_capture_on_commit_callbacks() as queued,
        pytest.raises(ValidationError, match="cannot be sent again"),
    ):
        issue_send_now(issue=issue)

    assert queued == []
    assert issue.deliveries.count() == deliveries == 2
    assert len(mail.outbox) == 2


def test_sending_issue_cannot_be_sent_again(daily):
    SubscriberFactory(newsletters=[daily])
    issue = IssueFactory(newsletter=daily)
    issue_send_now(issue=issue)

    with pytest.raises(ValidationError):
        issue_send_now(issue=issue)


def test_pause_resume_and_cancel_follow_the_state_machine(daily):
    SubscriberFactory(newsletters=[daily])
    issue = IssueFactory(newsletter=daily)
    with pytest.raises(ValidationError):
        issue_pause(issue=issue)
    issue_send_now(issue=issue)
    issue_plan(issue=Issue.objects.get(pk=issue.pk))

    assert issue_pause(issue=issue).status == Issue.Status.PAUSED
    assert issue_resume(issue=issue).status == Issue.Status.SENDING
    assert issue_cancel(issue=issue).status == Issue.Status.CANCELLED
    assert batch_send(issue_id=issue.pk).claimed == 0
    with pytest.raises(ValidationError):
        issue_resume(issue=issue)
    assert mail.outbox == []


def test_html_stays_under_gmail_clipping_with_many_articles(daily):
    SubscriberFactory(newsletters=[daily])
    articles = ArticleFactory.create_batch(12, dek="A fairly long dek. " * 10)
    issue = send_out(IssueFactory(newsletter=daily, articles=articles))

    assert len(issue.rendered_html.encode()) < 100 * 1024
    assert issue.status == Issue.Status.SENT


# --- Scheduling -----------------------------------------------------------------------


def test_schedule_in_the_past_is_refused(daily):
    SubscriberFactory(newsletters=[daily])
    issue = IssueFactory(newsletter=daily)

    with pytest.raises(ValidationError, match="future"):
        issue_schedule(issue=issue, send_at=timezone.now() - timedelta(minutes=1))


def test_tick_starts_a_due_scheduled_issue_once(daily):
    SubscriberFactory(newsletters=[daily])
    issue = IssueFactory(newsletter=daily)
    issue_schedule(issue=issue, send_at=timezone.now() + timedelta(minutes=5))

    assert issues_tick()["started"] == 0
    later = timezone.now() + timedelta(minutes=6)
    assert issues_tick(now=later)["started"] == 1
    assert issues_tick(now=later)["started"] == 0
    assert Issue.objects.get(pk=issue.pk).status == Issue.Status.SENDING


def test_tick_says_what_it_did_and_nothing_when_idle(daily, caplog):
    """Its task lines are at DEBUG when idle (core.log_filters): the work is said here."""
    SubscriberFactory(newsletters=[daily])
    issue = IssueFactory(newsletter=daily)
    issue_schedule(issue=issue, send_at=timezone.now() + timedelta(minutes=5))
    with caplog.at_level("INFO", logger="outlet.newsletters.issues"):
        issues_tick()
        assert not [r for r in caplog.records if r.name == "outlet.newsletters.issues"]
        issues_tick(now=timezone.now() + timedelta(minutes=6))
    said = [r.getMessage() for r in caplog.records if r.name == "outlet.newsletters.issues"]
    assert len(said) == 1 and said[0].startswith("issues tick: started=1")


def test_tick_task_run_twice_starts_the_issue_once(daily):
    SubscriberFactory(newsletters=[daily])
    issue = IssueFactory(newsletter=daily)
    issue_schedule(issue=issue, send_at=timezone.now() + timedelta(seconds=30))
    Issue.objects.filter(pk=issue.pk).update(scheduled_at=timezone.now() - timedelta(seconds=1))

    issues_tick_task()
    issues_tick_task()

    issue.refresh_from_db()
    assert issue.status == Issue.Status.SENDING


def test_scheduled_issue_that_lost_its_recipients_returns_to_draft_with_a_reason(daily):
    reader = SubscriberFactory(newsletters=[daily])
    issue = IssueFactory(newsletter=daily)
    issue_schedule(issue=issue, send_at=timezone.now() + timedelta(minutes=1))
    reader.status = "unsubscribed"
    reader.save()

    issues_tick(now=timezone.now() + timedelta(minutes=2))

    issue.refresh_from_db()
    assert issue.status == Issue.Status.DRAFT
    assert "No active subscriber" in issue.pause_reason


def test_stalled_send_is_revived_by_the_tick(daily, settings):
    SubscriberFactory(newsletters=[daily])
    issue = IssueFactory(newsletter=daily)
    issue_send_now(issue=issue)
    issue_plan(issue=Issue.objects.get(pk=issue.pk))
    later = timezone.now() + timedelta(seconds=settings.NEWSLETTER_LEASE_SECONDS + 5)

    assert issues_tick(now=later)["revived"] == 1
    assert issues_tick(now=later)["revived"] == 0  # not again until another lease passes


# --- Test sends ------------------------------------------------------------------------


def test_test_send_refuses_a_malformed_address():
    with pytest.raises(ValidationError, match="“not-an-address” is not a valid email"):
        issue_test_addresses_parse("editor@example.org, not-an-address")


def test_test_send_task_run_twice_mails_once(daily):
    issue = IssueFactory(newsletter=daily, subject="Draft edition")

    issue_test_send_task(issue.pk, ["editor@example.org"], "request-1")
    issue_test_send_task(issue.pk, ["editor@example.org"], "request-1")

    (message,) = mail.outbox
    assert message.subject == "[Test] Draft edition"
    assert message.to == ["editor@example.org"]


# --- The admin ---------------------------------------------------------------------------


def test_admin_send_now_then_a_second_send_is_refused_with_a_message(editor, daily):
    SubscriberFactory(newsletters=[daily])
    issue = IssueFactory(newsletter=daily)
    url = f"/admin/newsletters/issue/{issue.pk}/do/send/"

    first = editor.post(url, {"confirmed": "yes"}, follow=True)
    second = editor.post(url, {"confirmed": "yes"}, follow=True)

    assert "Sending has started" in first.content.decode()
    assert "cannot be sent again" in second.content.decode()
    assert Issue.objects.get(pk=issue.pk).status == Issue.Status.SENDING


def test_admin_send_without_the_confirmation_sends_nothing(editor, daily):
    SubscriberFactory(newsletters=[daily])
    issue = IssueFactory(newsletter=daily)

    response = editor.post(f"/admin/newsletters/issue/{issue.pk}/do/send/", follow=True)

    assert "Confirm the send" in response.content.decode()
    assert Issue.objects.get(pk=issue.pk).status == Issue.Status.DRAFT


def test_admin_send_confirmation_names_newsletter_count_and_subject(editor, daily):
    SubscriberFactory.create_batch(2, newsletters=[daily])
    issue = IssueFactory(newsletter=daily, subject="Maps and money")

    text = editor.get(f"/admin/newsletters/issue/{issue.pk}/send/").content.decode()

    assert daily.name in text and "2 subscribers" in text and "Maps and money" in text
    assert Issue.objects.get(pk=issue.pk).status == Issue.Status.DRAFT


def test_admin_refuses_to_send_an_issue_without_subject(editor, daily):
    SubscriberFactory(newsletters=[daily])
    issue = IssueFactory(newsletter=daily, subject="")

    response = editor.post(
        f"/admin/newsletters/issue/{issue.pk}/do/send/", {"confirmed": "yes"}, follow=True
    )

    assert "The issue has no subject." in response.content.decode()
    assert Issue.objects.get(pk=issue.pk).status == Issue.Status.DRAFT


def test_admin_test_send_to_a_malformed_address_shows_a_message(editor, daily):
    issue = IssueFactory(newsletter=daily)

    response = editor.post(
        f"/admin/newsletters/issue/{issue.pk}/do/test/", {"to": "nobody@"}, follow=True
    )

    assert "“nobody@” is not a valid email address." in response.content.decode()
    assert mail.outbox == []


def test_admin_preview_frames_the_email_at_two_widths(editor, daily):
    issue = IssueFactory(newsletter=daily, articles=[ArticleFactory(headline="The map")])

    page = editor.get(f"/admin/newsletters/issue/{issue.pk}/preview/")
    email = editor.get(f"/admin/newsletters/issue/{issue.pk}/preview/email/")

    assert page.content.decode().count("<iframe") == 2
    assert 'width="375"' in page.content.decode()
    assert "The map" in email.content.decode()
    assert email["X-Frame-Options"] == "SAMEORIGIN"
    assert "script-src" not in email["Content-Security-Policy"]
    assert "default-src 'none'" in email["Content-Security-Policy"]


def test_admin_progress_reports_counts(editor, daily):
    SubscriberFactory.create_batch(3, newsletters=[daily])
    issue = send_out(IssueFactory(newsletter=daily))

    body = editor.get(f"/admin/newsletters/issue/{issue.pk}/progress/").json()

    assert body["status"] == "sent"
    assert (body["planned"], body["sent"], body["remaining"]) == (3, 3, 0)


def test_admin_shows_a_sent_issue_frozen_with_its_text_rendered(editor, daily):
    SubscriberFactory(newsletters=[daily])
    issue = send_out(IssueFactory(newsletter=daily, intro="<p>Good&nbsp;morning.</p>"))

    html = editor.get(f"/admin/newsletters/issue/{issue.pk}/change/").content.decode()

    assert 'name="subject"' not in html
    assert "<p>Good&nbsp;morning.</p>" in html  # shown as text, not as escaped markup


def test_admin_change_page_loads_the_progress_script_without_inline_code(editor, daily):
    SubscriberFactory(newsletters=[daily])
    issue = IssueFactory(newsletter=daily)
    issue_send_now(issue=issue)

    html = editor.get(f"/admin/newsletters/issue/{issue.pk}/change/").content.decode()

    assert "js/issue-progress.js" in html
    assert "data-progress-url" in html


# --- The public archive ------------------------------------------------------------------


def test_archive_shows_sent_issues_only_and_the_feed_lists_them(client, daily):
    SubscriberFactory(newsletters=[daily])
    sent = send_out(IssueFactory(newsletter=daily, subject="Maps and money"))
    IssueFactory(newsletter=daily, subject="Secret draft")

    archive = client.get(f"/newsletter/{daily.slug}/archive/").content.decode()
    page = client.get(sent.get_absolute_url())
    feed = client.get(f"/newsletter/{daily.slug}/archive/feed/").content.decode()

    assert "Maps and money" in archive and "Secret draft" not in archive
    assert page.status_code == 200 and "Maps and money" in page.content.decode()
    assert "<title>Maps and money</title>" in feed


def test_unsent_issue_page_is_not_found(client, daily):
    issue = IssueFactory(newsletter=daily)

    assert client.get(f"/newsletter/{daily.slug}/archive/{issue.pk}/").status_code == 404


def test_appeal_appears_in_the_email(daily):
    SubscriberFactory(newsletters=[daily])
    appeal = AppealFactory(heading="Keep us independent", button_label="Give now")
    send_out(IssueFactory(newsletter=daily, appeal=appeal))

    (message,) = mail.outbox
    html = message.alternatives[0].content
    assert "Keep us independent" in html and "Give now" in html


def test_issue_text_written_outside_the_admin_is_cleaned_in_the_email_and_the_archive(
    client, daily
):
    SubscriberFactory(newsletters=[daily])
    hostile = (
        '<p onclick="steal()">Dear reader <a href="javascript:steal()">read on</a></p>'
        '<script>steal()</script><p style="background:url(x)">Kept text.</p>'
    )
    # Saved straight to the model, as a shell or a data migration would: no form cleans it.
    issue = IssueFactory(newsletter=daily, subject="Cleaned", intro=hostile, body=hostile)
    assert "<script>" in Issue.objects.get(pk=issue.pk).intro

    sent = send_out(issue)
    email = mail.outbox[-1]
    html = email.alternatives[0][0]
    archive = client.get(sent.get_absolute_url()).content.decode()

    for text in (html, email.body, archive):
        assert "steal()" not in text
        assert "onclick" not in text and "javascript:" not in text
    assert "Dear reader" in html and "Kept text." in html and "Kept text." in archive
