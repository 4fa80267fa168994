"""A send whose plan runs longer than its lanes: nobody is left to beat's revival."""

import pytest
from django.utils import timezone

from outlet.newsletters.models import Delivery, Issue
from outlet.newsletters.sending.plan import PLAN_WAIT_SECONDS, next_wake_seconds
from tests.factories import IssueFactory, SubscriberFactory

pytestmark = pytest.mark.django_db


def test_a_lane_that_caught_up_with_a_running_plan_comes_back(daily):
    issue = IssueFactory(newsletter=daily, status=Issue.Status.SENDING)
    subscriber = SubscriberFactory(newsletters=[daily])
    Delivery.objects.create(issue=issue, subscriber=subscriber, status=Delivery.Status.SENT)

    assert next_wake_seconds(issue_id=issue.pk) == PLAN_WAIT_SECONDS

    Issue.objects.filter(pk=issue.pk).update(planned_at=timezone.now())
    assert next_wake_seconds(issue_id=issue.pk) is None


def test_recipients_after_an_id_are_the_rest_of_the_list(daily, weekly):
    from outlet.newsletters.selectors import newsletter_recipients

    subscribers = [SubscriberFactory(newsletters=[daily]) for _ in range(4)]
    SubscriberFactory(newsletters=[weekly])
    middle = subscribers[1].pk

    rest = list(newsletter_recipients(daily, after_id=middle).values_list("pk", flat=True))

    assert rest == [s.pk for s in subscribers[2:]]
