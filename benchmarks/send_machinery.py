"""What the sending benchmarks share: Postfix's smtp-sink (or an asyncio stand-in),
real Celery worker processes and their memory, the plain-smtplib ceiling, and a
realistic issue to send. Used by newsletter_send.py (bench-send) and scale.py
(bench-scale); each passes its own directory and ports.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def log(message: str) -> None:
    print(message, flush=True)


# --- The sink ----------------------------------------------------------------------


def postfix_sink_binary(var: Path) -> Path | None:
    root = var / "postfix"
    binary = root / "usr" / "sbin" / "smtp-sink"
    if binary.exists():
        return binary
    try:
        download = var / "deb"
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
        pattern = re.compile(rb"^Message-ID: (<issue-[^>]+>)", re.IGNORECASE)
        if self.dump.exists():
            with open(self.dump, "rb") as handle:  # line by line: 10 GB at a million
                for line in handle:
                    if line[:1] in (b"M", b"m") and (match := pattern.match(line)):
                        ids[match.group(1)] += 1
        return len(ids), sum(count - 1 for count in ids.values())


# --- An issue worth sending -------------------------------------------------------------


def bench_issue_create(newsletter, *, segment: str = "all") -> int:
    """Three published articles, an appeal and a draft issue of `newsletter`; its id."""
    from datetime import timedelta

    from django.utils import timezone

    from outlet.articles.models import Appeal, Article, Section
    from outlet.newsletters.models import Issue, IssueArticle

    now = timezone.now()
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
        segment=segment,
    )
    for position, article in enumerate(articles):
        IssueArticle.objects.create(issue=issue, article=article, position=position)
    return issue.pk


# --- Workers and memory ------------------------------------------------------------------


def start_workers(
    count: int, concurrency: int, sink_port: int, var: Path, queues: str = "bulk"
) -> list[subprocess.Popen]:
    env = {**os.environ, "EMAIL_URL": f"smtp://127.0.0.1:{sink_port}"}
    workers = []
    for index in range(count):
        log_file = open(var / f"worker-{index}.log", "wb")  # noqa: SIM115
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
                    queues,
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


def wait_workers_ready(count: int = 2, timeout: float = 60) -> None:
    from outlet.core.models import Heartbeat

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Heartbeat.objects.filter(name__startswith="bench").count() >= count:
            return
        time.sleep(0.2)
    raise SystemExit("workers did not start; see worker-*.log in the benchmark's var directory")


def workers_stop(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        os.killpg(worker.pid, signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)


def workers_cpu_seconds(workers: list[subprocess.Popen]) -> float:
    """CPU time (user + system) the workers' processes have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for worker in workers:
        for pid in process_tree(worker.pid):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime (stat fields 14, 15)
    return total / ticks


def workers_max_rss(workers: list[subprocess.Popen]) -> float:
    return max((rss_mb(pid) for worker in workers for pid in process_tree(worker.pid)), default=0.0)


def issue_send_watched(
    issue_id: int, workers: list[subprocess.Popen]
) -> tuple[float, float, float]:
    """Send the issue now and wait for "sent": (seconds, planning seconds, workers' peak RSS MB)."""
    from outlet.newsletters.issues import issue_send_now
    from outlet.newsletters.models import Issue

    started = time.monotonic()
    issue_send_now(issue=Issue.objects.get(pk=issue_id))
    max_rss = 0.0
    progress = _Progress(issue_id, started)
    while True:
        max_rss = max(max_rss, workers_max_rss(workers))
        status = Issue.objects.filter(pk=issue_id).values_list("status", flat=True)[0]
        if status == Issue.Status.SENT:
            break
        if time.monotonic() - started > 3600:
            raise SystemExit("the send did not finish within an hour")
        progress.maybe_log()
        time.sleep(0.25)
    seconds = time.monotonic() - started
    issue = Issue.objects.get(pk=issue_id)
    planning = (issue.planned_at - issue.started_at).total_seconds() if issue.planned_at else 0.0
    return seconds, planning, max_rss


class _Progress:
    """Every PROGRESS_SECONDS of a send: how many are sent, and the rate since the last line
    (a long send shows it is moving, and where it slows)."""

    PROGRESS_SECONDS = 30.0

    def __init__(self, issue_id: int, started: float) -> None:
        self.issue_id, self.started = issue_id, started
        self.last_at, self.last_sent = started, 0

    def maybe_log(self) -> None:
        from outlet.newsletters.models import Delivery

        now = time.monotonic()
        if now - self.last_at < self.PROGRESS_SECONDS:
            return
        sent = Delivery.objects.filter(issue_id=self.issue_id, status="sent").count()
        planned = Delivery.objects.filter(issue_id=self.issue_id).count()
        rate = (sent - self.last_sent) / (now - self.last_at)
        log(f"  {now - self.started:5.0f} s: {sent} sent of {planned} planned, {rate:.0f} msg/s")
        self.last_at, self.last_sent = time.monotonic(), sent


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
    from django.conf import settings

    from outlet.core.dkim import DkimKey, DkimSigner
    from outlet.newsletters.models import Issue, Subscriber
    from outlet.newsletters.sending import MessageSkeleton, issue_render

    issue = Issue.objects.select_related("newsletter").get(pk=issue_id)
    if not issue.rendered_html:  # what sending will freeze, rendered now for the ceiling
        rendered = issue_render(issue=issue)
        issue.rendered_html, issue.rendered_text = rendered.html, rendered.text
    skeleton = MessageSkeleton.build(issue=issue)
    signer = None
    if settings.DKIM_PRIVATE_KEY and skeleton.signing is None:
        # Signed like outlet's own copies (the bench process sends through no SMTP backend).
        key = DkimKey.from_pem(
            settings.DKIM_PRIVATE_KEY, selector=settings.DKIM_SELECTOR, domain=settings.DKIM_DOMAIN
        )
        signer = DkimSigner(key)
    messages = []
    for number, subscriber in enumerate(Subscriber.objects.order_by("pk")[:count], start=1):
        copy = skeleton.personalise(delivery_id=number, subscriber=subscriber)
        assert copy.data is not None
        data = signer.sign(copy.data) if signer else copy.data
        messages.append(("daily@outlet.test", subscriber.email, data))
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
