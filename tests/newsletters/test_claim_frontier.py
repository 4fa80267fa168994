"""Claims look past the rows this process already claimed, and still find the rows
behind them that went back to pending or whose worker died."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from outlet.newsletters.issues import issue_send_now
from outlet.newsletters.models import Delivery
from outlet.newsletters.sending import claims, deliveries_claim, deliveries_plan
from tests.factories import IssueFactory, SubscriberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def planned(daily, monkeypatch):
    monkeypatch.setattr(claims, "_claimed_up_to", {})
    SubscriberFactory.create_batch(12, newsletters=[daily])
    issue = IssueFactory(newsletter=daily)
    issue_send_now(issue=issue)
    deliveries_plan(issue=issue)
    return issue


def sent(claimed) -> None:
    Delivery.objects.filter(pk__in=[d.pk for d in claimed]).update(
        status=Delivery.Status.SENT, lease_token=None, leased_until=None
    )


def test_the_next_claim_starts_after_the_rows_this_process_claimed(planned):
    """Without it, on PostgreSQL the lookup walked every row already sent (the planner
    takes the primary key from the issue's first row): 200 ms a claim 700,000 rows
    into a send, the send slowing as it went."""
    _, first, _ = deliveries_claim(issue_id=planned.pk, size=5)
    sent(first)
    with CaptureQueriesContext(connection) as queries:
        _, second, _ = deliveries_claim(issue_id=planned.pk, size=5)

    lookups = [q["sql"] for q in queries.captured_queries if "newsletters_delivery" in q["sql"]]
    frontier = max(d.pk for d in first)
    assert any(f'"id" > {frontier}' in sql for sql in lookups)
    assert not any(f'"id" <= {frontier}' in sql for sql in lookups)  # none walked behind
    assert min(d.pk for d in second) > frontier


def test_rows_behind_the_frontier_back_in_pending_are_claimed_when_none_are_left_ahead(planned):
    _, first, _ = deliveries_claim(issue_id=planned.pk, size=5)
    sent(first[:3])
    released = [d.pk for d in first[3:]]
    Delivery.objects.filter(pk__in=released).update(  # a paused batch handed back
        status=Delivery.Status.PENDING, lease_token=None, leased_until=None
    )

    _, second, _ = deliveries_claim(issue_id=planned.pk, size=7)  # the 7 ahead
    _, third, _ = deliveries_claim(issue_id=planned.pk, size=7)

    assert {d.pk for d in second}.isdisjoint(released)
    assert sorted(d.pk for d in third) == released
    assert deliveries_claim(issue_id=planned.pk, size=7)[1] == []


def test_rows_of_a_dead_worker_behind_the_frontier_are_claimed_again(planned):
    _, dead_workers, _ = deliveries_claim(issue_id=planned.pk, size=4)
    _, rest, _ = deliveries_claim(issue_id=planned.pk, size=8)
    sent(rest)
    Delivery.objects.filter(pk__in=[d.pk for d in dead_workers]).update(
        leased_until=timezone.now() - timedelta(seconds=1)
    )

    _, again, _ = deliveries_claim(issue_id=planned.pk, size=8)

    assert sorted(d.pk for d in again) == sorted(d.pk for d in dead_workers)
