"""Admin lists count by the planner's estimate when it is large, exactly when small."""

import pytest

from outlet.core import paginators
from outlet.core.paginators import ESTIMATE_ABOVE, EstimatedCountPaginator
from outlet.newsletters.models import Subscriber
from tests.factories import SubscriberFactory

pytestmark = pytest.mark.django_db


def test_past_the_cap_the_estimate_is_used_after_one_capped_count(
    monkeypatch, django_assert_num_queries
):
    SubscriberFactory.create_batch(3)
    monkeypatch.setattr(paginators, "ESTIMATE_ABOVE", 2)
    monkeypatch.setattr(paginators, "queryset_row_estimate", lambda qs: 2_000_000)
    paginator = EstimatedCountPaginator(Subscriber.objects.order_by("pk"), 100)
    with django_assert_num_queries(1) as captured:
        assert paginator.count == 2_000_000
    assert "LIMIT 3" in captured.captured_queries[0]["sql"].upper()
    assert paginator.num_pages == 20_000


def test_a_large_estimate_of_a_small_list_is_not_trusted(monkeypatch):
    """Statistics go stale (a mass unsubscribe before autovacuum): five rows say five."""
    SubscriberFactory.create_batch(3)
    monkeypatch.setattr(paginators, "queryset_row_estimate", lambda qs: 2_000_000)
    assert EstimatedCountPaginator(Subscriber.objects.order_by("pk"), 100).count == 3


def test_a_small_estimate_is_checked_by_an_exact_count(monkeypatch):
    SubscriberFactory.create_batch(3)
    monkeypatch.setattr(paginators, "queryset_row_estimate", lambda qs: ESTIMATE_ABOVE)
    assert EstimatedCountPaginator(Subscriber.objects.order_by("pk"), 100).count == 3


def test_without_postgresql_the_count_is_exact(db):
    SubscriberFactory.create_batch(2)
    if paginators.queryset_row_estimate(Subscriber.objects.all()) is None:
        assert EstimatedCountPaginator(Subscriber.objects.order_by("pk"), 100).count == 2
