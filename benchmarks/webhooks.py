"""How fast outlet applies Stripe webhooks, against a bare handler doing the minimum.

    make bench-webhooks            (N=10000 distinct events by default; --n to change)

PostgreSQL (database outlet_bench_webhooks_<run>, recreated), a claimed Redis db (broker and cache),
one real Celery worker on the "mail" queue (mail to a dummy backend), gunicorn with
the same settings for both runs (4 sync workers).

The load: N signed `payment_intent.succeeded` events (localstripe's 2017-08-15 shape)
for N distinct pending donations, plus 10 % exact duplicates (same bytes, same
signature), shuffled, posted by 4 processes x 8 threads.

1. outlet: gunicorn serving outlet.wsgi; the real /donate/webhook/ (signature check,
   event id recorded once, donation marked paid once, receipt owed once and queued
   after commit). Timed from the first post to the last answer; then we wait for the
   worker to send every receipt.
2. ceiling: gunicorn serving `ceiling_app` below: verify the signature, insert the
   event id (ON CONFLICT DO NOTHING), update one row with plain SQL, enqueue one task.

The payload's amount and currency match the recorded donation, so outlet's webhook
trusts the verified payload and does not fetch the PaymentIntent from Stripe
(STRIPE_WEBHOOK_REFETCH=needed, the default; see donations/webhooks.py). With
STRIPE_WEBHOOK_REFETCH=always each event would cost one Stripe round trip, which a
benchmark without Stripe cannot measure honestly, so it is not run here.

The last line is the result:

    webhooks: events=… rps=… ceiling_rps=… ratio=… donations_paid=… receipts_queued=…
              duplicates_applied=…   (on one line)
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg
import resources
import stripe
from celery import Celery

BASE_DIR = Path(__file__).resolve().parent.parent
VAR = BASE_DIR / "var" / "bench-webhooks"
DB_NAME = resources.database_name("webhooks")
PG = resources.PG
PORT_OUTLET, PORT_CEILING = resources.free_port(), resources.free_port()
SECRET = "whsec_bench_webhooks"
# gunicorn's advice for I/O-bound apps, (2 x cores) + 1 processes, each with a few threads
# so one waiting on PostgreSQL does not idle a core; the same for outlet and the ceiling.
GUNICORN_ARGS = [
    "--workers",
    "5",
    "--worker-class",
    "gthread",
    "--threads",
    "4",
    "--backlog",
    "2048",
    "--timeout",
    "60",
]
CLIENT_PROCESSES, CLIENT_THREADS = 4, 8
ROUNDS = 5

ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "bench-" + "Wq8vT3nZ" * 8,
    "SITE_URL": f"http://127.0.0.1:{PORT_OUTLET}",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "STRIPE_API_BASE": "http://127.0.0.1:8421",
    "STRIPE_SECRET_KEY": "sk_test_bench",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_bench",
    "STRIPE_WEBHOOK_SECRET": SECRET,
    "OUTLET_POSTAL_ADDRESS": "The Outlet, 100 Example Street, Springfield, ST 00000, USA",
    "OUTLET_VAR_DIR": str(VAR),
    "DATABASE_URL": f"{PG}/{DB_NAME}",
    "EMAIL_URL": "dummymail://",
    "LOG_LEVEL": "WARNING",
}


def log(message: str) -> None:
    print(message, flush=True)


# --- The ceiling: a bare WSGI handler ------------------------------------------------

_ceiling_local = threading.local()
_ceiling_celery: list = []


def _ceiling_resources():
    """One PostgreSQL connection per thread (as Django keeps), one Celery app per process."""
    if not _ceiling_celery:
        app = Celery("ceiling", broker=os.environ["CELERY_BROKER_URL"])
        app.conf.task_default_queue = "bench-ceiling"
        _ceiling_celery.append(app)
    if not hasattr(_ceiling_local, "db"):
        _ceiling_local.db = psycopg.connect(os.environ["DATABASE_URL"], autocommit=False)
    return _ceiling_local.db, _ceiling_celery[0]


def ceiling_app(environ, start_response):
    """Verify, insert the event id once, update one row, enqueue one task."""
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    try:
        stripe.WebhookSignature.verify_header(
            body.decode(),
            environ.get("HTTP_STRIPE_SIGNATURE", ""),
            os.environ["WEBHOOK_SECRET"],
            300,
        )
        event = json.loads(body)
    except (ValueError, stripe.SignatureVerificationError):
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [b"bad signature"]
    db, celery = _ceiling_resources()
    with db.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bench_ceiling_event (event_id) VALUES (%s) "
            "ON CONFLICT DO NOTHING RETURNING event_id",
            [event["id"]],
        )
        fresh = cursor.fetchone() is not None
        if fresh:
            cursor.execute(
                "UPDATE bench_ceiling_donation SET status = 'paid', paid_at = now() "
                "WHERE payment_intent = %s AND status = 'pending'",
                [event["data"]["object"]["id"]],
            )
    db.commit()
    if fresh:
        celery.send_task("bench.ceiling_receipt", args=[event["data"]["object"]["id"]])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"OK" if fresh else b"Already processed."]


# --- Setup ---------------------------------------------------------------------------


def recreate_database() -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            [DB_NAME],
        )
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
        conn.execute(f"CREATE DATABASE {DB_NAME}")


def flush_redis(redis_db: int) -> None:
    resources.redis_flush(redis_db, "webhooks")


def seed(n: int) -> list[tuple[int, str]]:
    """N donors, each with one pending one-time $25 donation; returns (id, PI id)."""
    from outlet.donations.models import Donation, Donor

    donors = Donor.objects.bulk_create(
        [Donor(email=f"reader{i}@bench.test", name=f"Reader {i}") for i in range(n)],
        batch_size=2000,
    )
    donations = Donation.objects.bulk_create(
        [
            Donation(
                donor=donor,
                amount=2500,
                currency="usd",
                frequency="once",
                stripe_customer_id=f"cus_bench{i}",
                stripe_payment_intent_id=f"pi_bench{i:06d}",
                card_brand="visa",
                card_last4="4242",
            )
            for i, donor in enumerate(donors)
        ],
        batch_size=2000,
    )
    return [(d.pk, str(d.stripe_payment_intent_id)) for d in donations]


def seed_ceiling(targets: list[tuple[int, str]]) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_ceiling_event (event_id text PRIMARY KEY)")
        cursor.execute(
            "CREATE TABLE bench_ceiling_donation (payment_intent text PRIMARY KEY, "
            "status text NOT NULL, paid_at timestamptz)"
        )
        cursor.executemany(
            "INSERT INTO bench_ceiling_donation VALUES (%s, 'pending', NULL)",
            [(pi,) for _, pi in targets],
        )


def build_events(targets: list[tuple[int, str]], *, duplicates: float) -> list[tuple[bytes, str]]:
    """Signed events (same template as localstripe sends), plus exact duplicates, shuffled."""
    template = json.loads(
        (
            BASE_DIR / "tests/donations/fixtures/localstripe-payment_intent_succeeded.json"
        ).read_text()
    )
    now = int(time.time())
    events = []
    for donation_id, payment_intent_id in targets:
        obj = json.loads(json.dumps(template["data"]["object"]))
        obj.update(
            id=payment_intent_id,
            amount=2500,
            currency="usd",
            metadata={"donation_id": str(donation_id)},
        )
        for charge in obj["charges"]["data"]:
            charge["payment_intent"] = payment_intent_id
        event = {**template, "id": f"evt_bench_{payment_intent_id}", "data": {"object": obj}}
        payload = json.dumps(event)
        digest = hmac.new(SECRET.encode(), f"{now}.{payload}".encode(), hashlib.sha256)
        events.append((payload.encode(), f"t={now},v1={digest.hexdigest()}"))
    rng = random.Random(5)
    events += rng.sample(events, int(len(events) * duplicates))
    rng.shuffle(events)
    return events


# --- Load ----------------------------------------------------------------------------


def _post_chunk(args) -> Counter:
    port, chunk = args
    results: Counter = Counter()
    lock = threading.Lock()
    index = iter(range(len(chunk)))

    def run():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                i = next(index, None)
            if i is None:
                break
            body, signature = chunk[i]
            for attempt in range(5):
                try:
                    conn.request(
                        "POST",
                        "/donate/webhook/",
                        body=body,
                        headers={"Content-Type": "application/json", "Stripe-Signature": signature},
                    )
                    response = conn.getresponse()
                    text = response.read().decode()
                    if response.getheader("Connection", "").lower() == "close":
                        conn.close()
                    break
                except (OSError, http.client.HTTPException):
                    conn.close()
                    time.sleep(0.05 * (attempt + 1))
            else:
                response, text = None, "connection failed"
            with lock:
                results[(response.status if response else 0, text)] += 1
        conn.close()

    threads = [threading.Thread(target=run) for _ in range(CLIENT_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def post_all(port: int, events: list[tuple[bytes, str]]) -> tuple[float, Counter]:
    chunks = [(port, events[i::CLIENT_PROCESSES]) for i in range(CLIENT_PROCESSES)]
    with multiprocessing.get_context("fork").Pool(CLIENT_PROCESSES) as pool:
        started = time.perf_counter()
        counters = pool.map(_post_chunk, chunks)
        elapsed = time.perf_counter() - started
    total: Counter = Counter()
    for counter in counters:
        total.update(counter)
    return elapsed, total


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port}")


def start(command: list[str], env: dict, name: str) -> subprocess.Popen:
    VAR.mkdir(parents=True, exist_ok=True)
    log_file = open(VAR / f"{name}.log", "wb")  # noqa: SIM115 (lives as long as the process)
    return subprocess.Popen(
        command,
        cwd=BASE_DIR,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="distinct events")
    parser.add_argument("--duplicates", type=float, default=0.10)
    options = parser.parse_args()

    redis_db = resources.redis_claim("webhooks")
    os.environ.update({**ENV, **resources.redis_urls(redis_db, "webhooks")})
    env = {**os.environ}
    sys.path.insert(0, str(BASE_DIR))
    log(f"Recreating database {DB_NAME}, flushing Redis db {redis_db}…")
    recreate_database()
    flush_redis(redis_db)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=BASE_DIR,
        env=env,
        check=True,
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outlet.settings")
    import django

    django.setup()
    from django.db import connection

    from outlet.donations.models import Donation, DonorEmail

    targets = seed(options.n)
    seed_ceiling(targets)
    connection.close()
    log(f"Seeded {len(targets)} pending donations.")

    # The worker runs throughout, at the lowest CPU priority: in production it has cores
    # of its own, and here rendering the receipts would otherwise be charged to outlet's
    # webhook rounds but not to the ceiling's (whose tasks nobody consumes).
    worker = start(
        ["nice", "-n", "19", sys.executable, "-m", "celery", "-A", "outlet", "worker",
         "-Q", "mail", "--concurrency", "1", "--loglevel", "WARNING",
         "--without-mingle", "--without-gossip"],
        env, "worker",
    )  # fmt: skip
    gunicorn = [sys.executable, "-m", "gunicorn", *GUNICORN_ARGS]
    servers = [
        start([*gunicorn, "-b", f"127.0.0.1:{PORT_OUTLET}", "outlet.wsgi"], env, "outlet"),
        start(
            [*gunicorn, "-b", f"127.0.0.1:{PORT_CEILING}", "--chdir", str(BASE_DIR / "benchmarks"),
             "webhooks:ceiling_app"],
            {**env, "WEBHOOK_SECRET": SECRET}, "ceiling",
        ),
    ]  # fmt: skip
    # The machine is shared, so its background load drifts: outlet and the ceiling take
    # turns, round by round, on the same slices of events (signed just before posting).
    elapsed = ceiling_elapsed = 0.0
    answers: Counter = Counter()
    ceiling_answers: Counter = Counter()
    posted = 0
    try:
        wait_for_port(PORT_OUTLET)
        wait_for_port(PORT_CEILING)
        for port in (PORT_OUTLET, PORT_CEILING):  # connections and imports, off the clock
            post_all(port, [(b"{}", "t=1,v1=0")] * 64)
        for round_ in range(ROUNDS):
            chunk = targets[round_::ROUNDS]
            events = build_events(chunk, duplicates=options.duplicates)
            seconds, counted = post_all(PORT_OUTLET, events)
            elapsed += seconds
            answers.update(counted)
            events = build_events(chunk, duplicates=options.duplicates)
            seconds, counted = post_all(PORT_CEILING, events)
            ceiling_elapsed += seconds
            ceiling_answers.update(counted)
            posted += len(events)
            log(f"round {round_ + 1}/{ROUNDS}: {posted} events each so far")
    finally:
        for server in servers:
            stop(server)
    rps, ceiling_rps = posted / elapsed, posted / ceiling_elapsed
    log(f"outlet: {elapsed:.1f}s, {rps:.0f} events/s, answers {dict(answers)}")
    log(
        f"ceiling: {ceiling_elapsed:.1f}s, {ceiling_rps:.0f} events/s, "
        f"answers {dict(ceiling_answers)}"
    )

    receipts = DonorEmail.objects.filter(kind=DonorEmail.Kind.RECEIPT)
    try:
        owed, last_sent, stalled_since = receipts.count(), -1, time.monotonic()
        while True:
            sent = receipts.filter(status=DonorEmail.Status.SENT).count()
            if sent >= owed:
                break
            if sent != last_sent:
                last_sent, stalled_since = sent, time.monotonic()
            elif time.monotonic() - stalled_since > 30:
                log(f"worker: stalled; see {VAR / 'worker.log'}")
                break
            time.sleep(1)
        log(f"worker: {sent} receipts sent of {owed} owed")
    finally:
        stop(worker)

    paid = Donation.objects.filter(status=Donation.Status.PAID).count()
    receipts_queued = receipts.count()
    distinct_receipted = receipts.values("donation_id").distinct().count()
    applied = sum(count for (status, text), count in answers.items() if text == "OK")
    duplicates_applied = max(0, applied - options.n) + (receipts_queued - distinct_receipted)
    log(
        f"webhooks: events={posted} rps={rps:.0f} ceiling_rps={ceiling_rps:.0f} "
        f"ratio={rps / ceiling_rps:.2f} donations_paid={paid} receipts_queued={receipts_queued} "
        f"duplicates_applied={duplicates_applied}"
    )


if __name__ == "__main__":
    main()
