"""The clicks' way to the database: each process's batch, the Redis list, the flush.
Redis down or slow costs a reader nothing, and no flush loses another's lines."""

from __future__ import annotations

import os

import pytest

from outlet.newsletters.measuring import recording
from outlet.newsletters.measuring.links import delivery_slot, link_prefix
from outlet.newsletters.models import Click, Delivery, IssueLink
from tests.factories import IssueFactory, SubscriberFactory
from tests.newsletters.conftest import BUFFER_PREFIX

pytestmark = pytest.mark.django_db


class _DownRedis:
    def __init__(self, failures: int = 10**9) -> None:
        self.failures, self.pushed = failures, []

    def rpush(self, key, *lines):
        if self.failures > 0:
            self.failures -= 1
            import redis

            raise redis.ConnectionError("Redis is down")
        self.pushed.extend(lines)


@pytest.fixture
def fresh_batch(monkeypatch):
    batch = recording._ProcessBatch()
    batch.pid = os.getpid()  # no push thread in the test: pushes happen where we say
    monkeypatch.setattr(recording, "_batch", batch)
    return batch


def test_a_click_redirects_while_redis_is_down_and_the_request_never_pushes(
    daily, client, monkeypatch, fresh_batch
):
    down = _DownRedis()
    monkeypatch.setattr(recording, "_redis", lambda: down)
    issue = IssueFactory(newsletter=daily)
    IssueLink.objects.create(issue=issue, position=0, url="https://example.org/story")
    token = f"{link_prefix(issue.pk, 0)}.{delivery_slot(issue.pk, 4242)}"

    for _ in range(recording._ProcessBatch.BATCH_LINES + 1):
        response = client.get(f"/n/c/{token}/")
        assert response.status_code == 302
        assert response["Location"] == "https://example.org/story"
    assert down.failures == 10**9  # no request tried Redis: the push thread was woken
    assert fresh_batch.wake.is_set()


def test_lines_survive_a_short_redis_outage(monkeypatch, fresh_batch):
    blip = _DownRedis(failures=1)
    monkeypatch.setattr(recording, "_redis", lambda: blip)
    for n in range(5):
        fresh_batch.add(blip, f"c 1 {n} 0 0.0 {n}")
    with pytest.raises(Exception):  # noqa: B017 (what the push thread swallows and logs)
        fresh_batch.push()
    fresh_batch.add(blip, "c 1 5 0 0.0 5")
    fresh_batch.push()  # Redis is back 20 ms later
    assert blip.pushed == [f"c 1 {n} 0 0.0 {n}" for n in range(6)]  # in order, none lost


def test_push_now_returns_only_once_lines_already_on_their_way_are_in_redis(fresh_batch):
    """The push thread takes the pending lines and is still sending them when the
    process (or a test) asks to push now, as at exit: that push must wait for the one
    in flight, or the process exits before those lines reach Redis."""
    import threading
    import time

    class _SlowRedis:
        def __init__(self) -> None:
            self.pushed: list[str] = []

        def rpush(self, key, *lines):
            time.sleep(0.3)
            self.pushed.extend(lines)

    slow = _SlowRedis()
    fresh_batch.add(slow, "c 1 0 0 0.0 0")
    in_flight = threading.Thread(target=fresh_batch.push, args=(slow,))
    in_flight.start()
    time.sleep(0.05)  # the thread has taken the line and waits on Redis
    fresh_batch.push(slow)  # nothing is pending here any more
    assert slow.pushed == ["c 1 0 0 0.0 0"]
    in_flight.join()


def test_a_long_outage_keeps_the_newest_lines_and_counts_those_dropped(
    monkeypatch, fresh_batch, caplog
):
    down = _DownRedis()
    monkeypatch.setattr(recording, "_redis", lambda: down)
    monkeypatch.setattr(fresh_batch, "KEPT_LINES", 3)
    for n in range(5):
        fresh_batch.add(down, f"line {n}")
    with pytest.raises(Exception):  # noqa: B017
        fresh_batch.push()
    assert fresh_batch.lines == ["line 2", "line 3", "line 4"]
    assert fresh_batch.dropped == 2
    assert "dropped 2 oldest lines" in caplog.text


def test_overlapping_flushes_never_lose_lines(daily, redis_buffer, monkeypatch):
    issue = IssueFactory(newsletter=daily)
    link = IssueLink.objects.create(issue=issue, position=0, url="https://example.org/x")
    reader = SubscriberFactory(newsletters=[daily])
    delivery = Delivery.objects.create(issue=issue, subscriber=reader, status="sent")
    buffer = f"{BUFFER_PREFIX}:{recording.BUFFER_KEY}"
    taken = f"{buffer}:flushing"

    first = recording.click_line(issue_id=issue.pk, position=0, delivery_id=delivery.pk)
    late = recording.click_line(issue_id=issue.pk, position=0, delivery_id=delivery.pk)
    # A flush died having renamed the buffer aside (the name flushes used to share).
    redis_buffer.rpush(buffer, first)
    redis_buffer.rename(buffer, taken)

    real_write = recording.tracking_lines_write

    def slow_write(*, lines):
        real_write(lines=lines)
        # Meanwhile, another flusher (its lock long expired) deletes the shared name, a
        # click arrives and is renamed aside under that name, and that flusher dies.
        redis_buffer.delete(taken)
        redis_buffer.rpush(buffer, late)
        redis_buffer.renamenx(buffer, taken)

    monkeypatch.setattr(recording, "tracking_lines_write", slow_write)
    recording.tracking_flush()
    monkeypatch.setattr(recording, "tracking_lines_write", real_write)
    recording.tracking_flush()  # the next flush takes what was left

    assert Click.objects.filter(link=link, nonce=int(late.split(" ")[5])).exists()
    assert Click.objects.filter(link=link, nonce=int(first.split(" ")[5])).exists()


def test_a_second_flush_waits_while_one_holds_the_lock(daily, redis_buffer):
    redis_buffer.set(f"{BUFFER_PREFIX}:{recording.BUFFER_KEY}:flush-lock", "someone else")
    redis_buffer.rpush(f"{BUFFER_PREFIX}:{recording.BUFFER_KEY}", "c 1 1 0 0.0 1")
    assert recording.tracking_flush() == 0
    assert redis_buffer.llen(f"{BUFFER_PREFIX}:{recording.BUFFER_KEY}") == 1
    assert redis_buffer.get(f"{BUFFER_PREFIX}:{recording.BUFFER_KEY}:flush-lock") == b"someone else"


def test_the_flush_takes_a_large_backlog_in_chunks(daily, redis_buffer, monkeypatch):
    issue = IssueFactory(newsletter=daily)
    IssueLink.objects.create(issue=issue, position=0, url="https://example.org/x")
    reader = SubscriberFactory(newsletters=[daily])
    delivery = Delivery.objects.create(issue=issue, subscriber=reader, status="sent")
    lines = [
        recording.click_line(issue_id=issue.pk, position=0, delivery_id=delivery.pk)
        for _ in range(25)
    ]
    redis_buffer.rpush(f"{BUFFER_PREFIX}:{recording.BUFFER_KEY}", *lines)
    sizes: list[int] = []
    real_write = recording.tracking_lines_write

    def counting_write(*, lines):
        sizes.append(len(lines))
        real_write(lines=lines)

    monkeypatch.setattr(recording, "tracking_lines_write", counting_write)
    assert recording.tracking_flush(chunk=10) == 25
    assert sizes == [10, 10, 5]
    assert Click.objects.filter(issue=issue).count() == 25
    assert not list(redis_buffer.scan_iter(f"{BUFFER_PREFIX}:{recording.BUFFER_KEY}:flushing*"))


def test_an_issues_figures_are_counted_again_at_most_once_a_minute(daily, redis_buffer, settings):
    from outlet.newsletters.models import IssueStats

    settings.NEWSLETTER_STATS_REFRESH_SECONDS = 60
    issue = IssueFactory(newsletter=daily)
    IssueLink.objects.create(issue=issue, position=0, url="https://example.org/x")
    reader = SubscriberFactory(newsletters=[daily])
    delivery = Delivery.objects.create(issue=issue, subscriber=reader, status="sent")
    buffer = f"{BUFFER_PREFIX}:{recording.BUFFER_KEY}"

    def clicks_flushed() -> int:
        line = recording.click_line(issue_id=issue.pk, position=0, delivery_id=delivery.pk)
        redis_buffer.rpush(buffer, line)
        recording.tracking_flush()
        recording.issues_stats_refresh_marked()
        return IssueStats.objects.get(issue=issue).clicks

    assert clicks_flushed() == 1
    assert clicks_flushed() == 1  # within the minute: written, counted later
    assert Click.objects.filter(issue=issue).count() == 2
    redis_buffer.delete(f"{buffer}:refreshed:{issue.pk}")  # a minute later
    recording.issues_stats_refresh_marked()
    assert IssueStats.objects.get(issue=issue).clicks == 2


@pytest.mark.django_db(transaction=True)
def test_a_line_left_for_a_deleted_issue_is_dropped_and_the_rest_are_written(daily):
    """A click buffered for an issue deleted since must neither write counters for it
    nor fail the flush (the lines would stay, and every later flush would fail)."""
    from django.utils import timezone

    from outlet.newsletters.models import IssueStats, Open

    reader = SubscriberFactory(newsletters=[daily])
    issue = IssueFactory(newsletter=daily)
    delivery = Delivery.objects.create(issue=issue, subscriber=reader, sent_at=timezone.now())
    gone = IssueFactory(newsletter=daily)
    gone_delivery = Delivery.objects.create(issue=gone, subscriber=reader)
    gone_id = gone.pk
    stale = f"o {gone_id} {gone_delivery.pk} 0 {timezone.now().timestamp() + 60} 1"
    gone.delete()

    fresh = f"o {issue.pk} {delivery.pk} 0 {timezone.now().timestamp() + 60} 2"
    recording.tracking_lines_write(lines=[stale, fresh])

    assert list(Open.objects.values_list("delivery_id", flat=True)) == [delivery.pk]
    assert not IssueStats.objects.filter(issue_id=gone_id).exists()
