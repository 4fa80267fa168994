"""How each cost grows with the list: the whole path at 10k, 100k and a million.

    make bench-scale                    # NS=10000,100000,1000000 (the 1M step takes minutes)
    make bench-scale NS=10000,100000    # a quick run

For each N, on a fresh PostgreSQL database (outlet_bench_scale_<run>), a claimed Redis db
(broker, cache) and Postfix's smtp-sink (free ports; see send_machinery.py):

1. the audience of `demo_load --dataset N` (outlet/core/demo_dataset.py): N
   subscribers of the daily, a fifth donors, a tenth lapsed, a few unsubscribed,
   pending or bounced and suppressed;
2. segments: how long choosing the donors and the lapsed donors takes at send time
   (the planner's query, counted);
3. the send: `issue_send_now` to every recipient with two worker processes, timed
   until "sent", against plain smtplib over as many connections on the same sink
   (before and after, averaged, on up to 50,000 messages); planning time; the
   workers' peak RSS; every recipient received exactly one copy (Message-ID per
   delivery, from the sink);
4. the database's size per subscriber and per delivery (pg_total_relation_size);
5. export: the subscribers CSV streamed (the admin's selector) to nowhere;
6. import: a CSV of N new addresses through `subscriber_import_run`, in a child
   process whose peak RSS is read from /proc (VmHWM).

The last line:

    scale: n=… send_mps=… ratio=… plan_s=… rss_mb=… import_s=… per_message_growth=…

`per_message_growth` is seconds per message at the largest N over that at the smallest.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import resources
from send_machinery import (
    BASE_DIR,
    Sink,
    bench_issue_create,
    issue_send_watched,
    log,
    measure_ceiling,
    postfix_sink_binary,
    start_workers,
    wait_workers_ready,
    workers_stop,
)

VAR = BASE_DIR / "var" / "bench-scale"
DB_NAME = resources.database_name("scale")
PG = resources.PG
SINK_PORTS = (resources.free_port(), resources.free_port())
WORKERS = 2
#: The ceiling is a rate, the same at any N: measured on at most this many messages.
CEILING_MESSAGES = 50_000

ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "bench-" + "q4Rw9TzK" * 8,
    "SITE_URL": "http://127.0.0.1:8016",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "STRIPE_API_BASE": "http://127.0.0.1:18303",
    "STRIPE_SECRET_KEY": "sk_test_bench",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_bench",
    "STRIPE_WEBHOOK_SECRET": "whsec_bench",
    "OUTLET_POSTAL_ADDRESS": "The Outlet, 100 Example Street, Springfield, ST 00000, USA",
    "OUTLET_VAR_DIR": str(VAR),
    "DATABASE_URL": f"{PG}/{DB_NAME}",
    "EMAIL_URL": "dummymail://",  # the workers get the sink's URL
    "LOG_LEVEL": "WARNING",
}


def database_recreate() -> None:
    from django.db import connections

    connections.close_all()  # ours to the previous step's database, before it is dropped
    for sql in (f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)", f"CREATE DATABASE {DB_NAME}"):
        subprocess.run(["psql", f"{PG}/postgres", "-qc", sql], check=True)
    resources.redis_flush(resources.redis_claim("scale"), "scale")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=BASE_DIR, env=os.environ, check=True
    )


def segments_measure() -> tuple[float, int, int]:
    """Seconds to count the donors' and the lapsed donors' segments of the daily."""
    from outlet.newsletters.models import Newsletter, Segment
    from outlet.newsletters.selectors import newsletter_recipients

    daily = Newsletter.objects.get(slug="daily-briefing")
    started = time.perf_counter()
    donors = newsletter_recipients(daily, Segment.DONORS).count()
    lapsed = newsletter_recipients(daily, Segment.LAPSED_DONORS).count()
    return time.perf_counter() - started, donors, lapsed


def database_sizes() -> tuple[float, float]:
    """Bytes per subscriber (subscriber, subscription, consent, suppression tables) and
    per delivery, tables with their indexes."""
    from django.db import connection

    from outlet.newsletters.models import (
        ConsentRecord,
        Delivery,
        Subscriber,
        Subscription,
        Suppression,
    )

    def size(*models) -> int:
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
            total = 0
            for model in models:
                cursor.execute("SELECT pg_total_relation_size(%s)", [model._meta.db_table])
                total += cursor.fetchone()[0]
            return total

    subscribers = Subscriber.objects.count()
    deliveries = Delivery.objects.count()
    per_subscriber = size(Subscriber, Subscription, ConsentRecord, Suppression) / subscribers
    return per_subscriber, size(Delivery) / max(deliveries, 1)


CHILD = """
import os, sys, time
sys.path.insert(0, {base!r})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outlet.settings")
import django
django.setup()
{body}
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
print("RESULT", elapsed, int(hwm) / 1024, extra)
"""

EXPORT = """
from outlet.core.csv_export import csv_stream_response
from outlet.newsletters.models import Subscriber
from outlet.newsletters.selectors import subscriber_csv_rows
started = time.perf_counter()
rows = subscriber_csv_rows(queryset=Subscriber.objects.all())
response = csv_stream_response(rows, filename="x.csv")
extra = sum(len(chunk) for chunk in response.streaming_content)
elapsed = time.perf_counter() - started
"""

IMPORT = """
from outlet.newsletters.audience.importing import subscriber_import_create, subscriber_import_run
from outlet.newsletters.models import Newsletter
started = time.perf_counter()
with open({path!r}, "rb") as upload:  # as the admin hands it over: a file, read in chunks
    job = subscriber_import_create(
        data=upload, filename="scale.csv",
        newsletters=[Newsletter.objects.get(slug="weekly-analysis")],
        consent_confirmed=True, consent_text="Signed up at our stand (benchmark).",
    )
stored = time.perf_counter() - started  # what the admin's upload request takes
job = subscriber_import_run(job=job)
elapsed = time.perf_counter() - started
extra = "%d,%.1f" % (job.imported_rows, stored)
"""


def child_run(body: str) -> tuple[float, float, str]:
    """Run `body` in a fresh Python: (seconds, peak RSS MB, its `extra`)."""
    code = CHILD.format(base=str(BASE_DIR), body=body)
    out = subprocess.run(
        [sys.executable, "-c", code], env=os.environ, capture_output=True, text=True, check=False
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT")]
    if out.returncode or not lines:
        raise SystemExit(f"child failed:\n{out.stdout}\n{out.stderr}")
    _, elapsed, rss, extra = lines[-1].split()
    return float(elapsed), float(rss), extra


def import_file(n: int) -> Path:
    path = VAR / f"import-{n}.csv"
    with open(path, "w") as handle:
        handle.write("email,name\n")
        for index in range(n):
            handle.write(f"imported{index}@import.outlet.test,Imported {index}\n")
    return path


def step(n: int, binary: Path | None) -> dict[str, float]:
    from outlet.core.demo_dataset import demo_dataset_load
    from outlet.newsletters.models import Newsletter, Segment
    from outlet.newsletters.selectors import newsletter_recipients

    log(f"[{n}] database, {n} subscribers (a fifth donors, a tenth lapsed)")
    database_recreate()
    started = time.monotonic()
    demo_dataset_load(subscribers=n, issues=0)
    log(f"[{n}] data set in {time.monotonic() - started:.1f} s")
    segment_s, donors, lapsed = segments_measure()
    log(f"[{n}] segments: {donors} donors, {lapsed} lapsed, chosen in {segment_s:.2f} s")
    daily = Newsletter.objects.get(slug="daily-briefing")
    recipients = newsletter_recipients(daily, Segment.ALL).count()
    issue_id = bench_issue_create(daily)
    ceiling_n = min(recipients, CEILING_MESSAGES)

    outlet_sink = Sink(SINK_PORTS[0], VAR / "outlet-sink.dump", binary)
    ceiling_sink = Sink(SINK_PORTS[1], VAR / "ceiling-sink.dump", binary)
    workers = start_workers(WORKERS, 1, SINK_PORTS[0], VAR)
    ceilings = []
    try:
        wait_workers_ready(WORKERS)
        ceilings.append(measure_ceiling(issue_id, ceiling_n, WORKERS, SINK_PORTS[1]))
        log(f"[{n}] ceiling before: {ceilings[0]:.0f} msg/s; sending to {recipients}")
        seconds, plan_s, rss = issue_send_watched(issue_id, workers)
    finally:
        workers_stop(workers)
        time.sleep(0.5)
        outlet_sink.stop()
    try:
        ceilings.append(measure_ceiling(issue_id, ceiling_n, WORKERS, SINK_PORTS[1]))
    finally:
        ceiling_sink.stop()
    delivered, duplicates = outlet_sink.counts()
    for dump in (outlet_sink.dump, ceiling_sink.dump):
        dump.unlink(missing_ok=True)
    ceiling = sum(ceilings) / len(ceilings)
    mps = recipients / seconds
    log(
        f"[{n}] send: {recipients} in {seconds:.1f} s = {mps:.0f} msg/s, ceiling "
        f"{ceilings[0]:.0f}/{ceilings[1]:.0f}, ratio {mps / ceiling:.2f}, planning "
        f"{plan_s:.1f} s, worker peak RSS {rss:.0f} MB, delivered {delivered}, "
        f"duplicates {duplicates}"
    )
    if delivered != recipients or duplicates:
        raise SystemExit(f"[{n}] not everyone mailed exactly once")
    per_subscriber, per_delivery = database_sizes()
    log(f"[{n}] database: {per_subscriber:.0f} B per subscriber, {per_delivery:.0f} B per delivery")
    export_s, export_rss, export_bytes = child_run(EXPORT)
    log(
        f"[{n}] export: {int(export_bytes) / 1e6:.1f} MB in {export_s:.1f} s, "
        f"peak RSS {export_rss:.0f} MB"
    )
    path = import_file(n)
    import_s, import_rss, extra = child_run(IMPORT.format(path=str(path)))
    path.unlink()
    imported, stored_s = int(extra.split(",")[0]), float(extra.split(",")[1])
    log(
        f"[{n}] import: {imported} rows in {import_s:.1f} s (the upload read and stored in "
        f"{stored_s:.1f} s), peak RSS {import_rss:.0f} MB"
    )
    if imported != n:
        raise SystemExit(f"[{n}] the import took {imported} of {n} rows")
    return {
        "mps": mps,
        "ratio": mps / ceiling,
        "plan_s": plan_s,
        "rss": rss,
        "import_s": import_s,
        "import_rss": import_rss,
        "per_message": seconds / recipients,
        "segment_s": segment_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ns", default="10000,100000,1000000")
    args = parser.parse_args()
    ns = [int(n) for n in args.ns.split(",")]

    VAR.mkdir(parents=True, exist_ok=True)
    VAR.chmod(0o777)  # smtp-sink drops to nobody before writing its dump
    os.environ.update({**ENV, **resources.redis_urls(resources.redis_claim("scale"), "scale")})
    os.environ["NEWSLETTER_SEND_LANES"] = str(WORKERS * 2)
    os.environ["DJANGO_SETTINGS_MODULE"] = "outlet.settings"
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()
    binary = postfix_sink_binary(VAR)
    log(
        f"receiver: {'postfix smtp-sink' if binary else 'asyncio sink'}; "
        f"load {os.getloadavg()[0]:.2f}"
    )
    results = [step(n, binary) for n in ns]

    def column(key: str, digits: int) -> str:
        return ",".join(f"{r[key]:.{digits}f}" for r in results)

    growth = results[-1]["per_message"] / results[0]["per_message"]
    log(f"segment_s={column('segment_s', 2)} import_rss_mb={column('import_rss', 0)}")
    log(
        f"scale: n={','.join(map(str, ns))} send_mps={column('mps', 0)} "
        f"ratio={column('ratio', 2)} plan_s={column('plan_s', 1)} rss_mb={column('rss', 0)} "
        f"import_s={column('import_s', 1)} per_message_growth={growth:.2f}"
    )


if __name__ == "__main__":
    main()
