"""The ESP path's one-address-per-call fallback (a call refused whole with 400), against
what an adversarial review found in its first version: each test failed on it.

A stub of anymail's test backend refuses a whole call with a real AnymailAPIError
(status 400) when it names an address in `invalid`, as Mailgun does.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import requests
from anymail.backends.test import EmailBackend as AnymailTestBackend
from anymail.exceptions import AnymailAPIError
from django.utils import timezone

from outlet.articles.services import article_unpublish
from outlet.newsletters import issues as issues_module
from outlet.newsletters.issues import (
    issue_pause,
    issue_plan,
    issue_resume,
    issue_send_now,
    issues_tick,
)
from outlet.newsletters.models import Delivery, Issue
from outlet.newsletters.sending import batch_send, deliveries_claim
from outlet.newsletters.sending.batch import MailServerRefusing
from outlet.newsletters.services import subscriber_unsubscribe
from tests.factories import ArticleFactory, IssueFactory, SubscriberFactory

pytestmark = pytest.mark.django_db

MERGE_FORMAT = "{{{{{}}}}}"


class RefusingEsp(AnymailTestBackend):
    """anymail's test backend; a call naming an address in `invalid` is refused whole
    with 400 (as Mailgun does); `before_call(addresses)` runs in the worker first."""

    invalid: set[str] = set()
    refuse_all = False
    before_call = None
    accepted: list[str] = []

    def post_to_esp(self, payload, message):
        addresses = [str(a) for a in message.to]
        if RefusingEsp.before_call is not None:
            RefusingEsp.before_call(addresses)
        if RefusingEsp.refuse_all or set(addresses) & RefusingEsp.invalid:
            response = requests.Response()
            response.status_code, response.reason = 400, "Bad Request"
            response._content = b'{"message": "\'to\' parameter is not a valid address"}'
            raise AnymailAPIError(
                "'to' parameter is not a valid address", status_code=400, response=response
            )
        RefusingEsp.accepted.extend(addresses)
        return super().post_to_esp(payload, message)


@pytest.fixture(autouse=True)
def esp(settings):
    settings.EMAIL_BACKEND = "tests.newsletters.test_esp_one_by_one.RefusingEsp"
    settings.NEWSLETTER_ESP_MERGE_FIELD_FORMAT = MERGE_FORMAT
    settings.NEWSLETTER_RATE_LIMIT_PER_SECOND = 0
    RefusingEsp.invalid, RefusingEsp.refuse_all = set(), False
    RefusingEsp.before_call, RefusingEsp.accepted = None, []
    yield
    RefusingEsp.invalid, RefusingEsp.refuse_all = set(), False
    RefusingEsp.before_call, RefusingEsp.accepted = None, []


def start(issue: Issue) -> Issue:
    issue_send_now(issue=issue)
    issue.refresh_from_db()
    issue_plan(issue=issue)
    return issue


def test_one_call_per_address_keeps_the_lease_of_every_row_the_batch_holds(daily, settings):
    """A slow run of single calls crosses the lease fence: the renewal covers the rows
    of later chunks too, so no other lane can take them over and mail them again."""
    settings.NEWSLETTER_LEASE_SECONDS = 10  # fence (lease_span) = 9 s
    settings.NEWSLETTER_ESP_BATCH_SIZE = 2
    odd = SubscriberFactory(email="odd@example.com", newsletters=[daily])
    first = SubscriberFactory(newsletters=[daily])
    later = SubscriberFactory.create_batch(2, newsletters=[daily])
    RefusingEsp.invalid = {odd.email}
    issue = start(IssueFactory(newsletter=daily))
    other_lane = {}

    def slow(addresses):
        if addresses == [odd.email]:
            time.sleep(9.3)  # past the fence, still inside the lease: renewal succeeds
        elif addresses == [first.email]:
            time.sleep(1.0)  # past the claim's lease, had the later rows not been renewed
        elif sorted(addresses) == sorted(r.email for r in later):
            other_lane["claim"] = deliveries_claim(issue_id=issue.pk, size=10, newsletter=daily)

    RefusingEsp.before_call = slow
    batch_send(issue_id=issue.pk)

    token, claimed, started = other_lane["claim"]
    assert claimed == []  # every row still leased to the first lane
    for reader in later + [first]:
        assert RefusingEsp.accepted.count(reader.email) == 1


def test_after_one_acceptance_a_service_refusing_everyone_with_400_fails_the_whole_rest(
    daily, settings
):
    """Once anything in the batch was accepted, every later 400 fails its row (no
    count of refusals in a row, unlike SMTP's Refusals): a sender or domain the service
    stops accepting mid-batch fails the rest of the batch instead of pausing."""
    settings.NEWSLETTER_ESP_BATCH_SIZE = 2
    readers = SubscriberFactory.create_batch(10, newsletters=[daily])
    issue = start(IssueFactory(newsletter=daily))

    def sender_revoked_after_first_call(addresses):
        if RefusingEsp.accepted:
            RefusingEsp.refuse_all = True

    RefusingEsp.before_call = sender_revoked_after_first_call
    with pytest.raises(MailServerRefusing):  # the task pauses the issue for the editor
        batch_send(issue_id=issue.pk)

    assert sorted(RefusingEsp.accepted) == sorted(r.email for r in readers[:2])
    assert not Delivery.objects.filter(issue=issue, status=Delivery.Status.FAILED).exists()
    assert Delivery.objects.filter(issue=issue, status=Delivery.Status.PENDING).count() == 8


def test_a_marked_row_fails_on_a_400_although_the_service_took_nothing(daily, settings):
    """A row that tripped the pause fails at once on its next 400 even when the
    service still accepts nobody (resume without the fix): it is lost for the issue,
    where `_outcomes_record` and SMTP's Refusals retry it keeping the mark."""
    settings.NEWSLETTER_RETRY_SECONDS = 0
    settings.NEWSLETTER_ESP_BATCH_SIZE = 4
    SubscriberFactory.create_batch(9, newsletters=[daily])
    RefusingEsp.refuse_all = True  # e.g. the sender address the service refuses
    issue = start(IssueFactory(newsletter=daily))
    from outlet.newsletters.tasks import issue_batch_send_task

    issue_batch_send_task(issue.pk)
    issue.refresh_from_db()
    assert issue.status == Issue.Status.PAUSED
    issue_resume(issue=issue)  # resumed before the setting was really fixed
    issue_batch_send_task(issue.pk)

    assert RefusingEsp.accepted == []
    assert not Delivery.objects.filter(issue=issue, status=Delivery.Status.FAILED).exists()


@pytest.mark.parametrize("event", ["unsubscribe", "pause"])
def test_one_by_one_never_checks_for_unsubscribes_or_a_pause(daily, settings, event):
    """The one-per-call loop sends the whole chunk without `stop_reason`: a reader
    who unsubscribes, or an issue paused (takedown, editor), during it is still mailed."""
    settings.NEWSLETTER_ESP_BATCH_SIZE = 6
    odd = SubscriberFactory(email="odd@example.com", newsletters=[daily])
    readers = SubscriberFactory.create_batch(5, newsletters=[daily])
    RefusingEsp.invalid = {odd.email}
    issue = start(IssueFactory(newsletter=daily))
    leaving = readers[3]
    done = []

    def during(addresses):
        if addresses == [readers[0].email] and not done:
            done.append(1)
            if event == "unsubscribe":
                subscriber_unsubscribe(subscriber=leaving)
            else:
                issue_pause(issue=Issue.objects.get(pk=issue.pk), reason="taken down")

    RefusingEsp.before_call = during
    batch_send(issue_id=issue.pk)

    if event == "unsubscribe":
        assert leaving.email not in RefusingEsp.accepted
    else:
        assert RefusingEsp.accepted[:1] == [readers[0].email]
        assert len(RefusingEsp.accepted) <= 2, RefusingEsp.accepted


def test_the_tick_resumes_an_issue_a_takedown_paused_meanwhile(daily, monkeypatch):
    """issues_tick reads the due auto-resumes, then issue_resume only checks PAUSED:
    a takedown committed in between is undone and the frozen article goes on out."""
    article = ArticleFactory(headline="Withdrawn story")
    SubscriberFactory(newsletters=[daily])
    issue = start(IssueFactory(newsletter=daily, articles=[article]))
    issue_pause(issue=issue, reason="Mail server down", retry_after=0)
    Issue.objects.filter(pk=issue.pk).update(auto_resume_at=timezone.now() - timedelta(1))
    monkeypatch.setattr(issues_module, "mail_server_available", lambda: True)
    original = issues_module.issue_resume

    def takedown_then_resume(*, issue, **kwargs):
        article_unpublish(article=article)  # commits between the read and the resume
        return original(issue=issue, **kwargs)

    monkeypatch.setattr(issues_module, "issue_resume", takedown_then_resume)
    monkeypatch.setattr(issues_module, "_lanes_start", lambda *a, **k: None)
    issues_tick()

    issue.refresh_from_db()
    assert issue.status == Issue.Status.PAUSED, "the takedown's pause was undone"
