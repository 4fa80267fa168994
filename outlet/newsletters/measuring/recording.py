"""Recording what readers did: clicks and opens in batches, events at once, the counters.

Clicks and opens must not slow their answer (a redirect, a pixel), so the view
only appends one line to a Redis list (`tracking_buffer_push`, one round trip);
`tracking_flush` (a beat task, NEWSLETTER_TRACKING_FLUSH_SECONDS) renames the list
aside, writes its lines with `bulk_create`, then deletes it. A flush that dies
half-way leaves the renamed list, which the next flush takes first; each line
carries a random `nonce` under a unique constraint, so a line written twice is
recorded once. Without a Redis cache (development, the SQLite suite) lines are
written at once, through the same code.

Bounces, complaints and unsubscribes are rare and arrive by webhook or form, so
they are written at once, to the delivery they followed (`delivery_event_record`).
"""

from __future__ import annotations

import atexit
import ipaddress
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count

from outlet.core.metrics.instruments import tracking_lines_record
from outlet.newsletters.measuring.breakdown import breakdown_add, issue_breakdown
from outlet.newsletters.models import (
    Click,
    Delivery,
    DeliveryEvent,
    Issue,
    IssueLink,
    IssueStats,
    Open,
    Subscriber,
)

logger = logging.getLogger(__name__)

BUFFER_KEY = "newsletters:tracking"
#: Opens fetched by a mail client's proxy rather than a reader's device.
MACHINE_AGENTS = ("GoogleImageProxy", "YahooMailProxy", "Apple-Mail-Privacy", "ggpht.com")
#: Apple Mail Privacy Protection fetches from Apple's own network.
MACHINE_NETWORKS = (ipaddress.ip_network("17.0.0.0/8"),)
#: A fetch this soon after the message was handed over is a prefetch, not a reader.
MACHINE_SECONDS = 10


#: Seconds the tracking client waits for Redis: a slow or absent Redis must hold up
#: neither the push thread for long nor a flush forever.
REDIS_CONNECT_TIMEOUT, REDIS_SOCKET_TIMEOUT = 1.0, 5.0
_clients: dict[tuple[int, str], object] = {}


def _redis():
    """A Redis client on the cache's server (short timeouts), or None when the cache
    is not Redis."""
    inner = getattr(cache, "_cache", None)
    if inner is None or not hasattr(inner, "get_client"):
        return None
    location = settings.CACHES["default"]["LOCATION"]
    if not isinstance(location, str):
        location = location[0]
    location = location.split(",")[0]
    key = (os.getpid(), location)
    client = _clients.get(key)
    if client is None:
        import redis

        client = _clients[key] = redis.Redis.from_url(
            location,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
            socket_timeout=REDIS_SOCKET_TIMEOUT,
            health_check_interval=30,
        )
    return client


def _key(name: str) -> str:
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    return f"{prefix}:{name}" if prefix else name


def is_machine_fetch(*, user_agent: str, ip: str | None) -> bool:
    if any(agent in user_agent for agent in MACHINE_AGENTS):
        return True
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return False
    return any(address in network for network in MACHINE_NETWORKS)


def click_line(*, issue_id: int, position: int, delivery_id: int) -> str:
    return f"c {issue_id} {delivery_id} {position} {time.time():.3f} {secrets.randbits(62)}"


def open_line(*, issue_id: int, delivery_id: int, machine: bool) -> str:
    kind = "m" if machine else "o"
    return f"{kind} {issue_id} {delivery_id} 0 {time.time():.3f} {secrets.randbits(62)}"


class _ProcessBatch:
    """This process's clicks and opens on their way to the Redis list: appended in
    memory (a click's answer waits for no round trip, and never for Redis) and pushed
    in one RPUSH by a thread of this process every PUSH_SECONDS, sooner when a request
    fills BATCH_LINES (it wakes the thread; it never pushes itself), and when the
    process exits.

    What is lost: a process killed outright (SIGKILL, OOM) loses what it had not
    pushed, at most PUSH_SECONDS of its clicks. While Redis is down or slow the lines
    wait in memory, up to KEPT_LINES per process; beyond that the oldest are dropped,
    counted in `dropped` and logged. Readers are redirected all along."""

    PUSH_SECONDS = 0.02
    BATCH_LINES = 200
    KEPT_LINES = 200_000  # about 10 MB of lines per process

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.lock = threading.Lock()
        # One push at a time: a push returns only once lines taken by one already in
        # flight are in Redis too (the exit push must not race the thread's).
        self.pushing = threading.Lock()
        self.wake = threading.Event()
        self.pid = 0
        self.dropped = 0

    def add(self, client, line: str) -> None:
        if self.pid != os.getpid():
            self._start()
        with self.lock:
            self.lines.append(line)
            full = len(self.lines) >= self.BATCH_LINES
        tracking_lines_record(outcome="buffered")
        if full:
            self.wake.set()

    def push(self, client=None) -> None:
        """RPUSH the pending lines; on failure they go back in front of newer ones
        (capped at KEPT_LINES, the oldest dropped) and the error is raised."""
        with self.pushing:
            self._push_taken(client)

    def _push_taken(self, client) -> None:
        with self.lock:
            lines, self.lines = self.lines, []
        if not lines:
            return
        try:
            (client or _redis()).rpush(_key(BUFFER_KEY), *lines)
        except Exception:
            with self.lock:
                self.lines = lines + self.lines
                excess = len(self.lines) - self.KEPT_LINES
                if excess > 0:
                    del self.lines[:excess]
                    self.dropped += excess
                    tracking_lines_record(outcome="dropped", count=excess)
            if excess > 0:
                logger.error(
                    "newsletter tracking: Redis unreachable, dropped %d oldest lines "
                    "(%d in all in this process)",
                    excess,
                    self.dropped,
                )
            raise

    def _start(self) -> None:
        """A thread per process (a forked worker gets its own), pushing on a timer."""
        self.pid = os.getpid()
        self.lines = []
        self.wake = threading.Event()
        # A fork may have copied either lock held by a thread it did not copy.
        self.lock, self.pushing = threading.Lock(), threading.Lock()
        threading.Thread(target=self._run, name="tracking-push", daemon=True).start()
        atexit.register(self._push_logged)

    def _push_logged(self) -> bool:
        try:
            self.push()
        except Exception:  # noqa: BLE001 (Redis away: the lines wait, the thread lives)
            logger.exception("newsletter tracking: could not push clicks to Redis")
            return False
        return True

    def _run(self) -> None:
        pause = self.PUSH_SECONDS
        while True:
            self.wake.wait(pause)
            self.wake.clear()
            # While Redis is away, try again each second rather than 50 times a second.
            pause = self.PUSH_SECONDS if self._push_logged() else 1.0


_batch = _ProcessBatch()


def tracking_process_push() -> None:
    """Push this process's pending lines to Redis now (the timer would within 20 ms)."""
    _batch.push()


def tracking_buffer_push(line: str) -> None:
    """Keep one click or open for the next flush (or write it now without Redis)."""
    client = _redis()
    if client is None:
        tracking_lines_write(lines=[line])
        tracking_lines_record(outcome="written")
        return
    _batch.add(client, line)


def tracking_buffer_waiting() -> int | None:
    """Lines in Redis waiting for a flush (the buffer and lists a flush set aside), for
    /metrics; None without a Redis buffer."""
    client = _redis()
    if client is None:
        return None
    asides = [raw.decode() for raw in client.smembers(_key(BUFFER_KEY + ":asides"))]
    keys = [_key(BUFFER_KEY), _key(BUFFER_KEY + ":flushing"), *asides]
    pipeline = client.pipeline(transaction=False)
    for key in keys:
        pipeline.llen(key)
    return sum(pipeline.execute())


#: How long a flush may hold the flush lock without renewing it (each chunk renews).
FLUSH_LOCK_SECONDS = 120
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('expire', KEYS[1], ARGV[2]) end return 0"
)


def tracking_flush(*, chunk: int = 5000) -> int:
    """Write the buffered clicks and opens; returns how many lines were taken.

    One flush at a time (a lock with an owner token: SET NX EX, renewed and released
    only by its owner). The flush renames the buffer to an aside list of its own
    (a unique name, noted in a set) and writes it a chunk at a time, trimming each
    chunk once written; lists a dead flush left aside are taken over the same way,
    first. No flush ever deletes a list another flush is reading."""
    client = _redis()
    if client is None:
        return 0
    try:
        _batch.push(client)  # this process's own, if it answered clicks too (make run, tests)
    except Exception:  # noqa: BLE001 (the lines wait for the next push)
        logger.exception("newsletter tracking: could not push clicks to Redis")
    lock, owner = _key(BUFFER_KEY + ":flush-lock"), secrets.token_hex(16)
    if not client.set(lock, owner, nx=True, ex=FLUSH_LOCK_SECONDS):
        return 0  # another flush is at work
    try:
        asides = _key(BUFFER_KEY + ":asides")
        legacy = _key(BUFFER_KEY + ":flushing")
        sources = [legacy, *(raw.decode() for raw in client.smembers(asides)), _key(BUFFER_KEY)]
        total = 0
        for n, source in enumerate(sources):
            mine = f"{legacy}:{owner}:{n}"
            if _aside_claim(client, source=source, mine=mine, asides=asides):
                total += _aside_write(client, mine, chunk=chunk, lock=lock, owner=owner)
        return total
    finally:
        client.eval(_RELEASE, 1, lock, owner)


def _aside_claim(client, *, source: str, mine: str, asides: str) -> bool:
    """Rename `source` to this flush's own aside list; False if it is gone or empty."""
    import redis

    client.sadd(asides, mine)  # noted before the rename: a crash leaves nothing unnamed
    try:
        client.rename(source, mine)
    except redis.ResponseError:  # no such key: empty, or another flush took it
        client.srem(asides, mine)
        return False
    client.srem(asides, source)
    return True


def _aside_write(client, mine: str, *, chunk: int, lock: str, owner: str) -> int:
    written = 0
    while True:
        raw = client.lrange(mine, 0, chunk - 1)
        if not raw:
            break
        tracking_lines_write(lines=[line.decode() for line in raw])
        client.ltrim(mine, len(raw), -1)  # written (a repeat is dropped by its nonce)
        written += len(raw)
        tracking_lines_record(outcome="written", count=len(raw))
        client.eval(_RENEW, 1, lock, owner, FLUSH_LOCK_SECONDS)
    client.delete(mine)
    client.srem(_key(BUFFER_KEY + ":asides"), mine)
    return written


def tracking_lines_write(*, lines: Iterable[str]) -> None:
    """Write buffered lines (`<kind> <issue> <delivery> <position> <time> <nonce>`) and
    refresh the counters of the issues they concern. Lines already written (same
    nonce) and lines for deliveries since erased are dropped."""
    parsed: list[tuple[str, int, int, int, float, int]] = []
    for line in lines:
        fields = line.split(" ")
        parsed.append(
            (fields[0], int(fields[1]), int(fields[2]), int(fields[3]), float(fields[4]),
             int(fields[5]))
        )  # fmt: skip
    if not parsed:
        return
    deliveries = dict(
        Delivery.objects.filter(id__in={row[2] for row in parsed}).values_list("id", "sent_at")
    )
    links = {
        (issue_id, position): link_id
        for link_id, issue_id, position in IssueLink.objects.filter(
            issue_id__in={row[1] for row in parsed if row[0] == "c"}
        ).values_list("id", "issue_id", "position")
    }
    clicks, opens = [], []
    for kind, issue_id, delivery_id, position, at, nonce in parsed:
        if delivery_id not in deliveries:
            continue
        when = datetime.fromtimestamp(at, tz=UTC)
        if kind == "c" and (issue_id, position) in links:
            clicks.append(
                Click(
                    issue_id=issue_id,
                    link_id=links[(issue_id, position)],
                    delivery_id=delivery_id,
                    clicked_at=when,
                    nonce=nonce,
                )
            )
        elif kind in ("o", "m"):
            sent_at = deliveries[delivery_id]
            early = sent_at is not None and when - sent_at < timedelta(seconds=MACHINE_SECONDS)
            opens.append(
                Open(
                    issue_id=issue_id,
                    delivery_id=delivery_id,
                    opened_at=when,
                    machine=kind == "m" or early,
                    nonce=nonce,
                )
            )
    with transaction.atomic():
        Click.objects.bulk_create(clicks, ignore_conflicts=True)
        Open.objects.bulk_create(opens, ignore_conflicts=True)
    # Only issues whose deliveries still exist: a line left for an issue deleted since
    # (or a reader erased) must not write counters for it, nor fail every later flush.
    for touched in {row[1] for row in parsed if row[2] in deliveries}:
        _stats_refresh_throttled(touched)


def _stats_refresh_throttled(issue_id: int) -> None:
    """Refresh an issue's counters at most once per NEWSLETTER_STATS_REFRESH_SECONDS
    (counting a large issue's rows is seconds of database work; a send's first hours
    flush every few seconds). A refresh not made now is marked for a later flush."""
    client = _redis()
    seconds = int(settings.NEWSLETTER_STATS_REFRESH_SECONDS)
    if client is None or seconds <= 0:
        issue_stats_refresh(issue_id=issue_id)
        return
    if client.set(_key(f"{BUFFER_KEY}:refreshed:{issue_id}"), 1, nx=True, ex=seconds):
        issue_stats_refresh(issue_id=issue_id)
    else:
        client.sadd(_key(BUFFER_KEY + ":issues"), issue_id)


def issue_stats_refresh(*, issue_id: int) -> IssueStats:
    """Count an issue's figures again from its indexed rows and store them."""
    events = dict(
        DeliveryEvent.objects.filter(issue_id=issue_id)
        .values_list("kind")
        .annotate(n=Count("id"))
        .values_list("kind", "n")
    )
    opens = Open.objects.filter(issue_id=issue_id).values("delivery_id").distinct()
    human_opens = opens.filter(machine=False)
    clicks = Click.objects.filter(issue_id=issue_id)
    figures = {
        "sent": Delivery.objects.filter(issue_id=issue_id, status=Delivery.Status.SENT).count(),
        "bounced": events.get(DeliveryEvent.Kind.BOUNCE, 0),
        "complaints": events.get(DeliveryEvent.Kind.COMPLAINT, 0),
        "unsubscribed": events.get(DeliveryEvent.Kind.UNSUBSCRIBE, 0),
        "opened": opens.count(),
        "clicks": clicks.count(),
        "clicked": clicks.values("delivery_id").distinct().count(),
    }
    # A delivery only a proxy opened, and nobody clicked: its "open" was a machine.
    figures["opened_machine"] = (
        opens.exclude(delivery_id__in=human_opens.values("delivery_id"))
        .exclude(delivery_id__in=clicks.values("delivery_id"))
        .count()
    )
    with transaction.atomic():
        stats, _ = IssueStats.objects.select_for_update().get_or_create(issue_id=issue_id)
        for name, value in figures.items():
            setattr(stats, name, value + int(stats.erased.get(name, 0)))  # counts kept
        stats.breakdown = breakdown_add(
            issue_breakdown(issue_id=issue_id), stats.erased.get("breakdown", {})
        )
        stats.updated_at = datetime.now(tz=UTC)
        stats.save()
    return stats


# --- Bounces, complaints and unsubscribes ----------------------------------------------


#: An unsubscribe or complaint later than this after the last issue is not its doing.
ATTRIBUTION_DAYS = 30


def delivery_followed(
    *,
    subscriber_id: int | None = None,
    email_hash: str = "",
    newsletter_id: int | None = None,
    delivery_id: int | None = None,
) -> Delivery | None:
    """The delivery a bounce, complaint or unsubscribe followed: the one the provider
    named (`delivery_id` from the message's metadata) if it was this subscriber's,
    else the most recent one sent to them (of `newsletter_id`, if given) in the last
    ATTRIBUTION_DAYS."""
    if subscriber_id is None:
        subscriber_id = (
            Subscriber.objects.filter(email_hash=email_hash).values_list("pk", flat=True).first()
        )
        if subscriber_id is None:
            return None
    if delivery_id is not None:
        named = Delivery.objects.filter(pk=delivery_id, subscriber_id=subscriber_id).first()
        if named is not None:
            return named
    since = datetime.now(tz=UTC) - timedelta(days=ATTRIBUTION_DAYS)
    deliveries = Delivery.objects.filter(
        subscriber_id=subscriber_id, status=Delivery.Status.SENT, sent_at__gte=since
    )
    if newsletter_id is not None:
        deliveries = deliveries.filter(issue__newsletter_id=newsletter_id)
    return deliveries.order_by("-sent_at", "-id").first()


def delivery_event_record(*, delivery: Delivery | None, kind: str) -> bool:
    """Attribute a bounce, complaint or unsubscribe to the delivery's issue, once.
    Returns whether it was new."""
    if delivery is None:
        return False
    _, created = DeliveryEvent.objects.get_or_create(
        delivery_id=delivery.pk, kind=kind, defaults={"issue_id": delivery.issue_id}
    )
    if created:
        _stats_refresh_soon(delivery.issue_id)
    return created


def _stats_refresh_soon(issue_id: int) -> None:
    """Without a Redis buffer the counters are refreshed now; with one, the issue is
    marked (once the event is committed) for the next flush to refresh."""
    client = _redis()
    if client is None:
        issue_stats_refresh(issue_id=issue_id)
    else:
        key = _key(BUFFER_KEY + ":issues")
        transaction.on_commit(lambda: client.sadd(key, issue_id))


def issues_stats_refresh_marked() -> None:
    """Refresh the counters of issues that had an event or lines since their last
    refresh (each at most once per NEWSLETTER_STATS_REFRESH_SECONDS)."""
    client = _redis()
    if client is None:
        return
    key = _key(BUFFER_KEY + ":issues")
    for raw in client.smembers(key):
        client.srem(key, raw)
        if Issue.objects.filter(pk=int(raw)).exists():
            _stats_refresh_throttled(int(raw))  # refreshed recently: stays marked
