"""The editors' admin pages at a million subscribers: time and queries per page.

    make bench-admin            # builds the data set once (several minutes), then measures
    make bench-admin SUBSCRIBERS=100000

PostgreSQL database outlet_bench_admin_<run> (benchmarks/resources.py; kept between
runs; dropped and rebuilt when it holds a different size) loaded by
`manage.py demo_load --dataset N`: N subscribers, N/5 donors with a paid donation,
5 sent issues of the daily to every active subscriber. Each page is fetched through
Django's test client as a superuser, once to warm up and then REPEAT times; the median
is reported with the page's query count. Every page must answer in under 500 ms. The last line:

    admin: n=… pages=… slowest_ms=… (page) max_queries=… under_500ms=yes|no
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import resources

BASE_DIR = Path(__file__).resolve().parent.parent
DB_NAME = resources.database_name("admin")  # kept between runs: the data set is reused
PG = resources.PG
REPEAT = 5
LIMIT_MS = 500

ENV = {
    "DEBUG": "1",
    "DATABASE_URL": f"{PG}/{DB_NAME}",
    "CELERY_BROKER_URL": "memory://",
    "OUTLET_VAR_DIR": str(BASE_DIR / "var" / "bench-admin"),
    "LOG_LEVEL": "WARNING",
}


def log(message: str) -> None:
    print(message, flush=True)


def psql(sql: str, database: str = "postgres") -> str:
    return subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-tAc", sql],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def dataset_ensure(subscribers: int) -> None:
    """Build the data set unless the database already holds one of this size."""
    exists = psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'") == "1"  # noqa: S608
    if exists:
        held = psql(
            "SELECT count(*) FROM newsletters_subscriber WHERE email LIKE '%@dataset.outlet.test'",
            DB_NAME,
        )
        if held == str(subscribers):
            log(f"data set: {DB_NAME} already holds {held} subscribers")
            return
        psql(f"DROP DATABASE {DB_NAME}")
    psql(f"CREATE DATABASE {DB_NAME}")
    env = {**os.environ, **ENV}
    manage = [sys.executable, str(BASE_DIR / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True)
    started = time.monotonic()
    subprocess.run([*manage, "demo_load", "--dataset", str(subscribers)], env=env, check=True)
    log(f"data set: built in {time.monotonic() - started:.0f} s")


def measure(subscribers: int) -> list[tuple[str, float, int]]:
    os.environ.update(ENV)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outlet.settings")
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    from outlet.newsletters.models import Issue, Newsletter, Subscriber
    from outlet.newsletters.selectors import newsletter_subscriber_counts_refresh

    setup_test_environment()
    user, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    newsletter_subscriber_counts_refresh()  # what beat keeps warm
    daily = Newsletter.objects.get(slug="daily-briefing")
    issue = Issue.objects.filter(status=Issue.Status.SENT).order_by("-sent_at").first()
    middle = subscribers // 2
    subscriber = Subscriber.objects.get(email=f"reader{middle}@dataset.outlet.test")
    pages = [
        ("subscribers", "/admin/newsletters/subscriber/"),
        ("subscribers status=active", "/admin/newsletters/subscriber/?status__exact=active"),
        ("subscribers status=bounced", "/admin/newsletters/subscriber/?status__exact=bounced"),
        ("subscribers source=admin", "/admin/newsletters/subscriber/?source__exact=admin"),
        (
            "subscribers newsletter=daily",
            f"/admin/newsletters/subscriber/?subscriptions__newsletter__id__exact={daily.pk}",
        ),
        ("subscribers donors", "/admin/newsletters/subscriber/?donor=yes"),
        ("subscribers lapsed donors", "/admin/newsletters/subscriber/?donor=lapsed"),
        ("subscribers page 50", "/admin/newsletters/subscriber/?p=50"),
        ("subscribers search address", f"/admin/newsletters/subscriber/?q=reader{middle}%40"),
        ("subscribers search part", "/admin/newsletters/subscriber/?q=reader12345"),
        ("subscriber page", f"/admin/newsletters/subscriber/{subscriber.pk}/change/"),
        ("donations", "/admin/donations/donation/"),
        ("donations paid monthly",
         "/admin/donations/donation/?status__exact=paid&frequency__exact=month"),
        ("donations search", f"/admin/donations/donation/?q=reader{middle - middle % 5}%40"),
        ("issue page", f"/admin/newsletters/issue/{issue.pk}/change/"),
        ("issue progress", f"/admin/newsletters/issue/{issue.pk}/progress/"),
        ("issues", "/admin/newsletters/issue/"),
        ("newsletters", "/admin/newsletters/newsletter/"),
    ]  # fmt: skip
    results = []
    for name, url in pages:
        response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"{name}: {url} answered {response.status_code}")
        times = []
        for _ in range(REPEAT):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                client.get(url)
                times.append((time.perf_counter() - started) * 1000)
        median = statistics.median(times)
        results.append((name, median, len(queries)))
        log(f"  {name:32} {median:7.1f} ms  {len(queries):3d} queries  {url}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    args = parser.parse_args()
    ENV["CACHE_URL"] = resources.redis_urls(resources.redis_claim("admin"), "admin")["CACHE_URL"]
    dataset_ensure(args.subscribers)
    results = measure(args.subscribers)
    slowest = max(results, key=lambda row: row[1])
    under = all(ms < LIMIT_MS for _, ms, _ in results)
    log(
        f"admin: n={args.subscribers} pages={len(results)} slowest_ms={slowest[1]:.0f} "
        f"({slowest[0]}) max_queries={max(q for _, _, q in results)} "
        f"under_500ms={'yes' if under else 'no'}"
    )


if __name__ == "__main__":
    main()
