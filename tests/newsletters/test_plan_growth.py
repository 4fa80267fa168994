"""A send whose plan runs longer than its lanes: nobody is left to beat's revival."""

from datetime import timedelta

import pytest
from django.utils import timezone

from outlet.newsletters.models import Delivery, Issue
from outlet.newsletters.sending.plan import (
    PLAN_WAIT_SECONDS,
    deliveries_plan,
    next_wake_seconds,
)
from tests.factories import IssueFactory, SubscriberFactory

pytestmark = pytest.mark.django_db


def test_a_lane_that_caught_up_with_a_running_plan_comes_back(daily):
    issue = IssueFactory(newsletter=daily, status=Issue.Status.SENDING)
    Issue.objects.filter(pk=issue.pk).update(heartbeat_at=timezone.now())  # the plan's chunk
    subscriber = SubscriberFactory(newsletters=[daily])
    Delivery.objects.create(issue=issue, subscriber=subscriber, status=Delivery.Status.SENT)

    assert next_wake_seconds(issue_id=issue.pk) == PLAN_WAIT_SECONDS

    Issue.objects.filter(pk=issue.pk).update(planned_at=timezone.now())
    assert next_wake_seconds(issue_id=issue.pk) is None


def test_a_lane_stops_waiting_for_a_plan_that_died(daily, settings):
    """The plan task crashed (worker killed, database error in ANALYZE): planned_at
    stays NULL and nothing touches the heartbeat. The lane ends; beat's revival plans."""
    long_ago = timezone.now() - timedelta(seconds=settings.NEWSLETTER_LEASE_SECONDS * 10)
    issue = IssueFactory(newsletter=daily, status=Issue.Status.SENDING)
    Issue.objects.filter(pk=issue.pk).update(heartbeat_at=long_ago, started_at=long_ago)
    subscriber = SubscriberFactory(newsletters=[daily])
    Delivery.objects.create(issue=issue, subscriber=subscriber, status=Delivery.Status.SENT)

    assert next_wake_seconds(issue_id=issue.pk) is None


def test_each_chunk_of_the_plan_stamps_the_heartbeat(daily, monkeypatch):
    long_ago = timezone.now() - timedelta(days=1)
    issue = IssueFactory(newsletter=daily, status=Issue.Status.SENDING)
    Issue.objects.filter(pk=issue.pk).update(heartbeat_at=long_ago)
    SubscriberFactory.create_batch(3, newsletters=[daily])
    seen = []

    def first_chunk():
        seen.append(Issue.objects.values_list("heartbeat_at", flat=True).get(pk=issue.pk))

    issue.refresh_from_db()
    deliveries_plan(issue=issue, on_first_chunk=first_chunk)
    assert seen and seen[0] > long_ago


def test_an_eager_send_does_not_recurse_while_planning(
    daily, settings, eager_tasks, django_capture_on_commit_callbacks, monkeypatch
):
    """With task_always_eager the lanes ran inside the plan's first chunk, found it
    unfinished and re-queued themselves, which ran them again at once (RecursionError)."""
    from outlet.newsletters import sending
    from outlet.newsletters.issues import issue_send_now

    runs = []
    real = sending.batch_send
    monkeypatch.setattr(sending, "batch_send", lambda **kw: runs.append(1) or real(**kw))

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.NEWSLETTER_SEND_LANES = 1
    SubscriberFactory.create_batch(2, newsletters=[daily])
    issue = IssueFactory(newsletter=daily)
    with django_capture_on_commit_callbacks(execute=True):
        issue_send_now(issue=issue)
    assert len(runs) < 20
    issue.refresh_from_db()
    assert issue.status == Issue.Status.SENT
    assert Delivery.objects.filter(issue=issue, status=Delivery.Status.SENT).count() == 2


def test_recipients_after_an_id_are_the_rest_of_the_list(daily, weekly):
    from outlet.newsletters.selectors import newsletter_recipients

    subscribers = [SubscriberFactory(newsletters=[daily]) for _ in range(4)]
    SubscriberFactory(newsletters=[weekly])
    middle = subscribers[1].pk

    rest = list(newsletter_recipients(daily, after_id=middle).values_list("pk", flat=True))

    assert rest == [s.pk for s in subscribers[2:]]
