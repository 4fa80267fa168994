"""How fast a tracked link redirects, and that every click is recorded exactly once.

    make bench-clicks

PostgreSQL (database outlet_bench_clicks_<run>, recreated and migrated), a claimed Redis db as the
cache and the click buffer, gunicorn (2 workers of 4 threads, keep-alive) with DEBUG
off, beside a bare WSGI app answering the same 302 (the ceiling). An issue "sent" to 10,000
subscribers with 5 tracked links gives 50,000 distinct signed click URLs.

wrk (2 threads, 16 connections) sends each of the 50,000 exactly once: its Lua
script hands each thread its own half, then asks only for an unsigned URL (which
redirects home and records nothing) until the thread has read every signed
answer, and stops. The rate is wrk's own (requests over its run). Then the flush
task's service writes the buffer, and the rows are counted: `recorded` must equal
the clicks and `lost` be 0. The two servers are measured in alternation over
BENCH_ROUNDS rounds (the recording check runs on the last Django round); medians
are reported, because the machine is shared.

The last line is the result:

    clicks: rps=… ceiling_rps=… ratio=… recorded=… lost=0
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import resources  # noqa: E402
from pages import stop  # noqa: E402

BASE_DIR = Path(__file__).resolve().parent.parent
VAR = BASE_DIR / "var" / "bench-clicks"
DB_NAME = resources.database_name("clicks")
PG = resources.PG
PORT, PORT_RAW = resources.free_port(), resources.free_port()
SUBSCRIBERS, LINKS = 10_000, 5
CLICKS = SUBSCRIBERS * LINKS
THREADS, CONNECTIONS = 2, 16
#: Threads that keep connections alive: with sync workers every answer closes its
#: connection and wrk, reconnecting, loses a request now and then (so the count is
#: not exact). Both servers run the same way.
GUNICORN_ARGS = ["--workers", "2", "--worker-class", "gthread", "--threads", "4",
                 "--keep-alive", "30", "--backlog", "2048"]  # fmt: skip
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
TARGET = "https://example.org/story-0"

ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "bench-clicks-" + "Vb2kQ9xL" * 8,
    "SITE_URL": f"http://127.0.0.1:{PORT}",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "STRIPE_API_BASE": "http://127.0.0.1:9",
    "STRIPE_SECRET_KEY": "sk_test_bench",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_bench",
    "STRIPE_WEBHOOK_SECRET": "whsec_bench_clicks",
    "OUTLET_POSTAL_ADDRESS": "The Outlet, 100 Example Street, Springfield, ST 00000, USA",
    "OUTLET_VAR_DIR": str(VAR),
    "DATABASE_URL": f"{PG}/{DB_NAME}",
    "EMAIL_URL": "dummymail://",
    "LOG_LEVEL": "WARNING",
    "DJANGO_SETTINGS_MODULE": "outlet.settings",
}

#: Each thread sends its own lines of tokens.txt once, then unsigned clicks until it has
#: read every signed answer. Counts the signed redirects that did not go home.
LUA = r"""
local tokens, threads, counter = {}, {}, 1
function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end
function init(args)
  local n, i = tonumber(args[1]), 0
  marker = args[3] .. "/done-" .. id
  for line in io.lines(args[2]) do
    i = i + 1
    if (i - 1) % n == id - 1 then table.insert(tokens, line) end
  end
  sent, answered, tracked = 0, 0, 0
end
function request()
  -- wrk calls the first thread's request() once to check the script, before any
  -- connection: every thread's first request is therefore an unsigned one.
  if not started then
    started = true
    return wrk.format("GET", "/n/c/unsigned/")
  end
  if sent < #tokens then
    sent = sent + 1
    return wrk.format("GET", "/n/c/" .. tokens[sent] .. "/")
  end
  return wrk.format("GET", "/n/c/unsigned/")
end
function response(status, headers, body)
  local location = headers["Location"]
  if status == 302 and location ~= "/" then tracked = tracked + 1 end
  if location ~= "/" then answered = answered + 1 end
  if answered == #tokens then
    local f = io.open(marker, "w"); f:write("done"); f:close()
    wrk.thread:stop()
  end
end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("tracked") end
  io.write(string.format("TRACKED %d\nREQUESTS %d\nMICROS %d\n",
    total, summary.requests, summary.duration))
end
"""


def log(message: str) -> None:
    print(f"[bench-clicks] {message}", file=sys.stderr, flush=True)


def raw_app(environ, start_response):
    """The ceiling: the same 302, with no framework, no token check, no recording."""
    location = "/" if "unsigned" in environ.get("PATH_INFO", "") else TARGET
    start_response(
        "302 Found",
        [("Location", location), ("Content-Length", "0"), ("Content-Type", "text/html")],
    )
    return [b""]


def django_setup(env: dict[str, str]) -> None:
    for key, value in env.items():
        os.environ[key] = value
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()


def prepare(env: dict[str, str], redis_db: int) -> Path:
    """Recreate the database; an issue to SUBSCRIBERS readers; the token file."""
    import psycopg

    log(f"recreating database {DB_NAME}")
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{DB_NAME}"')
    resources.redis_flush(redis_db, "clicks")
    shutil.rmtree(VAR, ignore_errors=True)
    VAR.mkdir(parents=True)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=BASE_DIR, env=env, check=True
    )
    django_setup(env)
    from django.utils import timezone

    from outlet.newsletters.measuring.links import delivery_slot, link_prefix
    from outlet.newsletters.models import Delivery, Issue, IssueLink, Newsletter, Subscriber

    newsletter = Newsletter.objects.create(
        name="Bench", slug="bench", from_name="Bench", from_email="bench@outlet.test"
    )
    now = timezone.now()
    issue = Issue.objects.create(
        newsletter=newsletter, subject="Bench", status=Issue.Status.SENT, started_at=now
    )
    IssueLink.objects.bulk_create(
        IssueLink(issue=issue, position=p, url=f"https://example.org/story-{p}")
        for p in range(LINKS)
    )
    subscribers = Subscriber.objects.bulk_create(
        Subscriber(email=f"reader{i}@example.org", email_hash=f"{i:064x}", status="active")
        for i in range(SUBSCRIBERS)
    )
    deliveries = Delivery.objects.bulk_create(
        Delivery(issue=issue, subscriber=s, status=Delivery.Status.SENT, sent_at=now)
        for s in subscribers
    )
    prefixes = [link_prefix(issue.pk, p) for p in range(LINKS)]
    tokens = VAR / "tokens.txt"
    with tokens.open("w") as out:
        for delivery in deliveries:
            slot = delivery_slot(issue.pk, delivery.pk)
            for prefix in prefixes:
                out.write(f"{prefix}.{slot}\n")
    script = VAR / "clicks.lua"
    script.write_text(LUA)
    return tokens


def gunicorn(app: str, env: dict[str, str], extra: list[str], port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}", *GUNICORN_ARGS]
        + extra,
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_until_up(port: int, timeout: float = 30) -> None:
    import http.client
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/n/c/unsigned/")
            if connection.getresponse().status == 302:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing answered on port {port}")


def wrk(port: int, tokens: Path) -> tuple[float, int]:
    """(requests per second, signed redirects answered) for one pass over every token.

    wrk runs for a fixed time; each thread marks a file when it has read every answer
    and stops, and the run is then cut short with SIGINT (wrk then reports the time
    actually spent)."""
    import signal
    import time

    for marker in VAR.glob("done-*"):
        marker.unlink()
    process = subprocess.Popen(
        ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", "-d600s", "--timeout", "60s", "--latency",
         "-s", str(VAR / "clicks.lua"), f"http://127.0.0.1:{port}",
         "--", str(THREADS), str(tokens), str(VAR)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    while len(list(VAR.glob("done-*"))) < THREADS and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    stdout, _ = process.communicate(timeout=60)
    tracked = int(re.search(r"TRACKED (\d+)", stdout).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"REQUESTS (\d+)", stdout).group(1))  # type: ignore[union-attr]
    micros = int(re.search(r"MICROS (\d+)", stdout).group(1))  # type: ignore[union-attr]
    latency = re.search(r"^\s+50%\s+(\S+).*?^\s+99%\s+(\S+)", stdout, re.S | re.M)
    rps = requests / (micros / 1e6)
    log(f"  {rps:.0f} req/s; p50 {latency.group(1) if latency else '?'}; tracked {tracked}")
    return rps, tracked


def recorded_after_flush() -> int:
    import time

    from outlet.newsletters.measuring.recording import tracking_flush
    from outlet.newsletters.models import Click

    time.sleep(1)  # the web processes push their last lines within 20 ms
    tracking_flush()
    return Click.objects.count()


def clicks_forget() -> None:
    from outlet.newsletters.models import Click, IssueStats

    Click.objects.all().delete()
    IssueStats.objects.all().delete()


def main() -> None:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: `make bench-clicks` installs it when run as root")
    redis_db = resources.redis_claim("clicks")
    env = {**os.environ, **ENV, **resources.redis_urls(redis_db, "clicks")}
    tokens = prepare(env, redis_db)
    servers = {
        "django": gunicorn("outlet.wsgi", env, [], PORT),
        "raw": gunicorn(
            "clicks:raw_app", env, ["--pythonpath", str(BASE_DIR / "benchmarks")], PORT_RAW
        ),
    }
    results: dict[str, list[float]] = {"django": [], "raw": []}
    tracked = recorded = 0
    try:
        wait_until_up(PORT)
        wait_until_up(PORT_RAW)
        for round_number in range(1, ROUNDS + 1):
            for label, port in (("django", PORT), ("raw", PORT_RAW)):
                log(f"round {round_number}: {label}")
                if label == "django":
                    recorded_after_flush()
                    clicks_forget()
                rps, tracked_now = wrk(port, tokens)
                results[label].append(rps)
                if label == "django":
                    tracked = tracked_now
                    recorded = recorded_after_flush()
    finally:
        for server in servers.values():
            stop(server)
    rps, ceiling = statistics.median(results["django"]), statistics.median(results["raw"])
    print(
        f"clicks: rps={rps:.0f} ceiling_rps={ceiling:.0f} ratio={rps / ceiling:.2f} "
        f"recorded={recorded} lost={max(0, tracked - recorded)}"
        + (f" duplicated={recorded - tracked}" if recorded > tracked else "")
        + (f" answered={tracked} of {CLICKS}" if tracked != CLICKS else "")
    )


if __name__ == "__main__":
    main()
