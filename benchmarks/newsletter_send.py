"""How fast outlet fans a newsletter issue out, against what the SMTP link itself allows.

    make bench-send N=100000

PostgreSQL (database outlet_bench_send, recreated), Redis (broker db 6, cache db 7),
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
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR = BASE_DIR / "var" / "bench-send"
DB_NAME = "outlet_bench_send"
PG = "postgres://postgres@127.0.0.1:5432"
BROKER_DB, CACHE_DB = 6, 7
SINK_PORTS = (1065, 1066)

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
    "CELERY_BROKER_URL": f"redis://127.0.0.1:6379/{BROKER_DB}",
    "CACHE_URL": f"rediscache://127.0.0.1:6379/{CACHE_DB}",
    "EMAIL_URL": "dummymail://",  # the workers get the sink's URL
    "LOG_LEVEL": "WARNING",
}


def log(message: str) -> None:
    print(message, flush=True)


# --- The sink ----------------------------------------------------------------------


def postfix_sink_binary() -> Path | None:
    root = VAR / "postfix"
    binary = root / "usr" / "sbin" / "smtp-sink"
    if binary.exists():
        return binary
    try:
        download = VAR / "deb"
        download.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["apt-get", "download", "postfix"],
            cwd=download,
            check=True,
            capture_output=True,
            timeout=120,
        )
        deb = next(download.glob("postfix_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True, timeout=120)
    except (OSError, subprocess.SubprocessError, StopIteration) as exc:
        log(f"smtp-sink unavailable ({exc}); falling back to the asyncio sink")
        return None
    return binary if binary.exists() else None


def _asyncio_sink(port: int, dump: str) -> None:
    """A minimal, pipelining-free SMTP sink that appends each message to `dump`."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        out = open(dump, "ab")  # noqa: SIM115, ASYNC230 (a benchmark sink)
        writer.write(b"220 sink ESMTP\r\n")
        rcpt = b""
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb == b"DATA":
                writer.write(b"354 go\r\n")
                data = await reader.readuntil(b"\r\n.\r\n")
                out.write(b"X-Rcpt-Args: " + rcpt + b"\r\n" + data)
                writer.write(b"250 2.0.0 queued\r\n")
            elif verb == b"RCPT":
                rcpt = line[8:].strip()
                writer.write(b"250 ok\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                break
            elif verb in (b"EHLO", b"HELO"):
                writer.write(b"250-sink\r\n250 8BITMIME\r\n")
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
        out.close()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=256)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


class Sink:
    def __init__(self, port: int, dump: Path, binary: Path | None) -> None:
        self.port, self.dump = port, dump
        dump.unlink(missing_ok=True)
        if binary is not None:
            self.kind = "postfix smtp-sink"
            env = {**os.environ, "LD_LIBRARY_PATH": str(binary.parents[2] / "usr/lib/postfix")}
            user = ["-u", "nobody"] if os.geteuid() == 0 else []
            self.process = subprocess.Popen(
                [str(binary), *user, "-D", str(dump), f"127.0.0.1:{port}", "256"],
                env=env,
                start_new_session=True,
            )
        else:
            self.kind = "asyncio sink"
            self.process = multiprocessing.Process(
                target=_asyncio_sink, args=(port, str(dump)), daemon=True
            )
            self.process.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.05)
        raise SystemExit(f"the sink on port {port} did not start")

    def stop(self) -> None:
        if isinstance(self.process, subprocess.Popen):
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        else:
            self.process.terminate()
            self.process.join(timeout=10)

    def counts(self) -> tuple[int, int]:
        """(distinct messages received, extra copies) by Message-ID."""
        ids: Counter[bytes] = Counter()
        pattern = re.compile(rb"^Message-ID: (<issue-[^>]+>)", re.MULTILINE | re.IGNORECASE)
        if self.dump.exists():
            with open(self.dump, "rb") as handle:
                for match in pattern.finditer(handle.read()):
                    ids[match.group(1)] += 1
        return len(ids), sum(count - 1 for count in ids.values())


# --- Setup ---------------------------------------------------------------------------


def prepare_database(n: int) -> int:
    """Recreate the database, migrate, and add N subscribers and a ready issue."""
    subprocess.run(
        ["psql", f"{PG}/postgres", "-qc", f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)"],
        check=True,
    )
    subprocess.run(["psql", f"{PG}/postgres", "-qc", f"CREATE DATABASE {DB_NAME}"], check=True)
    for db in (BROKER_DB, CACHE_DB):
        subprocess.run(["redis-cli", "-n", str(db), "FLUSHDB"], check=True, capture_output=True)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=BASE_DIR, env=os.environ, check=True
    )
    from datetime import timedelta

    from django.utils import timezone

    from outlet.articles.models import Appeal, Article, Section
    from outlet.newsletters.models import (
        Issue,
        IssueArticle,
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
    section = Section.objects.create(name="Politics", slug="politics")
    articles = [
        Article.objects.create(
            headline=headline,
            slug=f"bench-{i}",
            dek=dek,
            body="<p>" + "Analysis of the week's events. " * 80 + "</p>",
            section=section,
            status=Article.Status.PUBLISHED,
            publish_at=now - timedelta(hours=2),
        )
        for i, (headline, dek) in enumerate(
            [
                ("How the new district map was drawn", "Three counties, one pen, and a deadline."),
                (
                    "The budget surplus nobody expected",
                    "Where the money came from, and where it goes.",
                ),
                ("Inside the quiet fight over the water board", "A small agency with big power."),
            ]
        )
    ]
    appeal = Appeal.objects.create(
        name="Bench appeal",
        heading="Journalism paid for by its readers",
        text="No owner, no paywall: this newsletter exists because readers like you give.",
    )
    issue = Issue.objects.create(
        newsletter=newsletter,
        subject="Maps, money and water: the week in review",
        preheader="Three stories that will shape the month ahead.",
        intro="<p>Good morning. " + "This week brought news on three fronts. " * 6 + "</p>",
        body="<p>Thank you for reading. Reply to this email to reach the editors.</p>",
        appeal=appeal,
    )
    for position, article in enumerate(articles):
        IssueArticle.objects.create(issue=issue, article=article, position=position)
    return issue.pk


# --- Workers and memory ------------------------------------------------------------------


def start_workers(count: int, concurrency: int, sink_port: int) -> list[subprocess.Popen]:
    env = {**os.environ, "EMAIL_URL": f"smtp://127.0.0.1:{sink_port}"}
    workers = []
    for index in range(count):
        log_file = open(VAR / f"worker-{index}.log", "wb")  # noqa: SIM115
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "outlet",
                    "worker",
                    "-Q",
                    "bulk",
                    "--concurrency",
                    str(concurrency),
                    "--hostname",
                    f"bench{index}@localhost",
                    "--loglevel",
                    "WARNING",
                    "--without-mingle",
                    "--without-gossip",
                ],  # fmt: skip
                cwd=BASE_DIR,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    return workers


def process_tree(pid: int) -> list[int]:
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return pids
    for child in children:
        pids.extend(process_tree(int(child)))
    return pids


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def wait_workers_ready(timeout: float = 60) -> None:
    from outlet.core.models import Heartbeat

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Heartbeat.objects.filter(name__startswith="bench").count() >= 2:
            return
        time.sleep(0.2)
    raise SystemExit("workers did not start; see var/bench-send/worker-*.log")


# --- The ceiling -------------------------------------------------------------------------


def _ceiling_connection(args) -> None:
    port, messages, count, start_at = args
    smtp = smtplib.SMTP("127.0.0.1", port, local_hostname="localhost")
    while time.time() < start_at:
        time.sleep(0.001)
    for i in range(count):
        sender, recipient, data = messages[i % len(messages)]
        smtp.sendmail(sender, [recipient], data)
    smtp.quit()


def prebuilt_messages(issue_id: int, count: int) -> list[tuple[str, str, bytes]]:
    """Messages exactly as outlet builds them (its skeleton), made before the clock starts."""
    from outlet.newsletters.models import Issue, Subscriber
    from outlet.newsletters.sending import MessageSkeleton, issue_render

    issue = Issue.objects.select_related("newsletter").get(pk=issue_id)
    if not issue.rendered_html:  # what sending will freeze, rendered now for the ceiling
        rendered = issue_render(issue=issue)
        issue.rendered_html, issue.rendered_text = rendered.html, rendered.text
    skeleton = MessageSkeleton.build(issue=issue)
    messages = []
    for number, subscriber in enumerate(Subscriber.objects.order_by("pk")[:count], start=1):
        copy = skeleton.personalise(delivery_id=number, subscriber=subscriber)
        assert copy.data is not None
        messages.append(("daily@outlet.test", subscriber.email, copy.data))
    return messages


def measure_ceiling(issue_id: int, n: int, connections: int, port: int) -> float:
    messages = prebuilt_messages(issue_id, 2000)
    share = [n // connections + (1 if i < n % connections else 0) for i in range(connections)]
    start_at = time.time() + 1.0
    with multiprocessing.get_context("fork").Pool(connections) as pool:
        pool.map(
            _ceiling_connection,
            [(port, messages, share[i], start_at) for i in range(connections)],
        )
    return n / (time.time() - start_at)


# --- Main ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=1, help="processes per worker")
    parser.add_argument(
        "--batch", type=int, default=None, help="NEWSLETTER_BATCH_SIZE (default: the setting's)"
    )
    args = parser.parse_args()

    VAR.mkdir(parents=True, exist_ok=True)
    VAR.chmod(0o777)  # smtp-sink drops to nobody before writing its dump
    connections = args.workers * args.concurrency
    os.environ.update(ENV)
    if args.batch:
        os.environ["NEWSLETTER_BATCH_SIZE"] = str(args.batch)
    os.environ["NEWSLETTER_SEND_LANES"] = str(connections * 2)
    os.environ["DJANGO_SETTINGS_MODULE"] = "outlet.settings"
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()

    load_before = os.getloadavg()[0]
    log(f"preparing {args.n} subscribers in {DB_NAME} (load average {load_before:.2f})")
    issue_id = prepare_database(args.n)
    binary = postfix_sink_binary()
    outlet_sink = Sink(SINK_PORTS[0], VAR / "outlet-sink.dump", binary)
    log(f"receiver: {outlet_sink.kind}")
    ceiling_sink = Sink(SINK_PORTS[1], VAR / "ceiling-sink.dump", binary)
    workers = start_workers(args.workers, args.concurrency, SINK_PORTS[0])
    max_rss = 0.0
    ceilings = []
    try:
        wait_workers_ready()
        # The ceiling is measured before and after the send and averaged: on a shared
        # machine the load drifts, and one side of the ratio should not get the quiet minute.
        ceilings.append(measure_ceiling(issue_id, args.n, connections, SINK_PORTS[1]))
        from outlet.newsletters.issues import issue_send_now
        from outlet.newsletters.models import Issue

        started = time.monotonic()
        issue_send_now(issue=Issue.objects.get(pk=issue_id))
        while True:
            for worker in workers:
                for pid in process_tree(worker.pid):
                    max_rss = max(max_rss, rss_mb(pid))
            status = Issue.objects.filter(pk=issue_id).values_list("status", flat=True)[0]
            if status == Issue.Status.SENT:
                break
            if time.monotonic() - started > 3600:
                raise SystemExit("the send did not finish within an hour")
            time.sleep(0.25)
        outlet_seconds = time.monotonic() - started
    finally:
        for worker in workers:
            os.killpg(worker.pid, signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
        time.sleep(0.5)
        outlet_sink.stop()
    delivered, duplicates = outlet_sink.counts()
    outlet_mps = args.n / outlet_seconds
    log(f"outlet: {args.n} in {outlet_seconds:.1f}s over {connections} connections")

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
        f"delivered={delivered} duplicates={duplicates}"
    )


if __name__ == "__main__":
    main()
