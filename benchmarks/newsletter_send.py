"""How fast outlet fans a newsletter issue out, against what the SMTP link itself allows.

    make bench-send N=100000

PostgreSQL (database outlet_bench_send_<run>, recreated), a claimed Redis db (broker, cache),
two real Celery worker processes on the "bulk" queue, and Postfix's smtp-sink
as the receiver: unpacked from Debian's postfix .deb into var/bench-send/postfix
if it is not there yet (`apt-get download postfix`, `dpkg-deb -x`), or, when that
is impossible, an asyncio sink in a separate process (the script says which).

1. outlet: `issue_send_now` on an issue of N subscribers, timed until the issue
   is "sent" (planning included). The workers' resident memory is sampled.
2. ceiling: the same pre-rendered messages (built once by outlet's own
   skeleton, before the clock starts) sent with plain smtplib over the same
   number of connections, one process per connection; measured just before
   and just after the send, averaged, since the machine's load drifts.

Delivered and duplicates are counted from what the sink wrote to disk (one
Message-ID per delivery). The last line is the result:

    send: n=… outlet_mps=… ceiling_mps=… ratio=… worker_max_rss_mb=… delivered=… duplicates=…

With `--dkim` (or DKIM=1, DKIM=ed25519 in the environment: `make bench-send DKIM=1`) every
message is DKIM-signed with a key made for the run (the ceiling sends the same signed
bytes), and the first 500 messages the sink received are verified with dkimpy; the line
then ends with `dkim=rsa dkim_pass=500/500`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import resources
from send_machinery import (
    Sink,
    bench_issue_create,
    issue_send_watched,
    log,
    measure_ceiling,
    postfix_sink_binary,
    prebuilt_messages,
    start_workers,
    wait_workers_ready,
    workers_cpu_seconds,
    workers_stop,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR = BASE_DIR / "var" / "bench-send"
DB_NAME = resources.database_name("send")
PG = resources.PG
SINK_PORTS = (resources.free_port(), resources.free_port())

ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "bench-" + "x7Gq2LpZ" * 8,
    "SITE_URL": "http://127.0.0.1:8040",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "STRIPE_API_BASE": "http://127.0.0.1:8441",
    "STRIPE_SECRET_KEY": "sk_test_bench",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_bench",
    "STRIPE_WEBHOOK_SECRET": "whsec_bench",
    "OUTLET_POSTAL_ADDRESS": "The Outlet, 100 Example Street, Springfield, ST 00000, USA",
    "OUTLET_VAR_DIR": str(VAR),
    "DATABASE_URL": f"{PG}/{DB_NAME}",
    "EMAIL_URL": "dummymail://",  # the workers get the sink's URL
    "LOG_LEVEL": "WARNING",
}


# --- Setup ---------------------------------------------------------------------------


def prepare_database(n: int) -> int:
    """Recreate the database, migrate, and add N subscribers and a ready issue."""
    subprocess.run(
        ["psql", f"{PG}/postgres", "-qc", f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)"],
        check=True,
    )
    subprocess.run(["psql", f"{PG}/postgres", "-qc", f"CREATE DATABASE {DB_NAME}"], check=True)
    resources.redis_flush(resources.redis_claim("send"), "send")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=BASE_DIR, env=os.environ, check=True
    )
    from django.utils import timezone

    from outlet.newsletters.models import (
        Newsletter,
        Subscriber,
        Subscription,
        email_digest,
    )

    newsletter = Newsletter.objects.create(
        name="The Daily Briefing",
        slug="daily",
        from_name="The Daily Briefing",
        from_email="daily@outlet.test",
        reply_to="letters@outlet.test",
    )
    now = timezone.now()
    chunk = 5000
    for start in range(0, n, chunk):
        emails = [f"reader{i}@bench.example" for i in range(start, min(n, start + chunk))]
        created = Subscriber.objects.bulk_create(
            [
                Subscriber(
                    email=email,
                    email_hash=email_digest(email),
                    name=f"Reader {i}",
                    status=Subscriber.Status.ACTIVE,
                    confirmed_at=now,
                )
                for i, email in enumerate(emails)
            ]
        )
        Subscription.objects.bulk_create(
            [Subscription(subscriber=s, newsletter=newsletter, confirmed_at=now) for s in created]
        )
    return bench_issue_create(newsletter)


# --- DKIM (--dkim / DKIM=1) -----------------------------------------------------------------


def dkim_enable(*, ed25519: bool) -> bytes:
    """A fresh key for this run, in the environment the workers inherit; its DNS TXT value."""
    from outlet.core.dkim import dkim_key_generate

    path = VAR / "dkim-bench.pem"
    path.unlink(missing_ok=True)
    key = dkim_key_generate(selector="bench", domain="outlet.test", path=path, ed25519_key=ed25519)
    os.environ.update(
        {"DKIM_SELECTOR": "bench", "DKIM_DOMAIN": "outlet.test", "DKIM_PRIVATE_KEY_FILE": str(path)}
    )
    return key.dns_value().encode("ascii")


def dump_dkim_verify(dump: Path, record: bytes, *, sample: int) -> tuple[int, int]:
    """(verified, checked) over the first `sample` messages smtp-sink wrote to its dump,
    each checked by dkimpy against the record as DNS would return it."""
    import dkim

    passed = checked = 0
    if not dump.exists():
        return 0, 0
    with open(dump, "rb") as handle:
        content = handle.read(sample * 64 * 1024)
    for entry in content.split(b"X-Client-Addr: ")[1 : sample + 1]:
        # smtp-sink's own lines (X-…, Received) come first; its dump ends lines with LF.
        message = entry.split(b"\nReceived: ", 1)[-1]
        message = b"Received: " + message.replace(b"\n", b"\r\n")
        checked += 1
        passed += bool(dkim.verify(message, dnsfunc=lambda name, timeout=5: record))
    return passed, checked


# --- Main ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=1, help="processes per worker")
    parser.add_argument(
        "--batch", type=int, default=None, help="NEWSLETTER_BATCH_SIZE (default: the setting's)"
    )
    parser.add_argument(
        "--dkim",
        choices=("rsa", "1", "ed25519"),
        default=os.environ.get("DKIM") or None,
        help="sign every message with a fresh key (RSA-2048, or Ed25519); default: $DKIM",
    )
    args = parser.parse_args()

    VAR.mkdir(parents=True, exist_ok=True)
    VAR.chmod(0o777)  # smtp-sink drops to nobody before writing its dump
    connections = args.workers * args.concurrency
    os.environ.update({**ENV, **resources.redis_urls(resources.redis_claim("send"), "send")})
    if args.batch:
        os.environ["NEWSLETTER_BATCH_SIZE"] = str(args.batch)
    os.environ["NEWSLETTER_SEND_LANES"] = str(connections * 2)
    os.environ["DJANGO_SETTINGS_MODULE"] = "outlet.settings"
    dkim_record = dkim_enable(ed25519=args.dkim == "ed25519") if args.dkim else None
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()

    load_before = os.getloadavg()[0]
    log(f"preparing {args.n} subscribers in {DB_NAME} (load average {load_before:.2f})")
    issue_id = prepare_database(args.n)
    binary = postfix_sink_binary(VAR)
    outlet_sink = Sink(SINK_PORTS[0], VAR / "outlet-sink.dump", binary)
    log(f"receiver: {outlet_sink.kind}")
    ceiling_sink = Sink(SINK_PORTS[1], VAR / "ceiling-sink.dump", binary)
    workers = start_workers(args.workers, args.concurrency, SINK_PORTS[0], VAR)
    ceilings = []
    try:
        wait_workers_ready(args.workers)
        # The ceiling is measured before and after the send and averaged: on a shared
        # machine the load drifts, and one side of the ratio should not get the quiet minute.
        ceilings.append(measure_ceiling(issue_id, args.n, connections, SINK_PORTS[1]))
        cpu_before = workers_cpu_seconds(workers)
        outlet_seconds, _planning, max_rss = issue_send_watched(issue_id, workers)
        # Less sensitive than the rates to what else the machine runs: the workers' own
        # CPU per message (what DKIM signing, for one, adds).
        cpu_per_message_us = (workers_cpu_seconds(workers) - cpu_before) / args.n * 1e6
    finally:
        workers_stop(workers)
        time.sleep(0.5)
        outlet_sink.stop()
    delivered, duplicates = outlet_sink.counts()
    signed = ""
    if dkim_record is not None:
        passed, checked = dump_dkim_verify(outlet_sink.dump, dkim_record, sample=500)
        kind = "rsa" if args.dkim in ("1", "rsa") else args.dkim
        signed = f" dkim={kind} dkim_pass={passed}/{checked}"
    outlet_mps = args.n / outlet_seconds
    log(
        f"outlet: {args.n} in {outlet_seconds:.1f}s over {connections} connections; "
        f"workers' CPU {cpu_per_message_us:.0f} µs per message"
    )

    try:
        ceilings.append(measure_ceiling(issue_id, args.n, connections, SINK_PORTS[1]))
    finally:
        ceiling_sink.stop()
    ceiling_mps = sum(ceilings) / len(ceilings)
    size = len(prebuilt_messages(issue_id, 1)[0][2])
    log(
        f"ceiling: plain smtplib, {connections} connections, before/after the send "
        f"{ceilings[0]:.0f}/{ceilings[-1]:.0f} msg/s; message size {size} bytes; "
        f"load average now {os.getloadavg()[0]:.2f}"
    )
    for dump in (outlet_sink.dump, ceiling_sink.dump):
        dump.unlink(missing_ok=True)
    shutil.rmtree(VAR / "broker", ignore_errors=True)
    log(
        f"send: n={args.n} outlet_mps={outlet_mps:.0f} ceiling_mps={ceiling_mps:.0f} "
        f"ratio={outlet_mps / ceiling_mps:.2f} worker_max_rss_mb={max_rss:.0f} "
        f"delivered={delivered} duplicates={duplicates}{signed}"
    )


if __name__ == "__main__":
    main()
