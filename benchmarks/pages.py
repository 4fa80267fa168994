"""How fast readers get an article page: uncached, cached, and a bare WSGI ceiling.

    make bench-pages

PostgreSQL (database outlet_bench_pages, recreated, migrated, demo content loaded),
Redis db 3 as the cache, gunicorn with 2 sync workers and DEBUG off. The load comes
from wrk in a second process (Debian package `wrk`), 2 threads and 16 connections,
after a short warm-up, against the demo's longest article. The three servers run
side by side (ports 8010, 8410, 1035, or BENCH_PORTS) and are measured in alternation
over 3 rounds; the medians are reported, because the machine is shared.

1. uncached: CACHE_PAGE_SECONDS=0, so every request runs the view, its queries and
   the templates (the navigation is still cached, as in production).
2. cached: CACHE_PAGE_SECONDS=300, the page cache of outlet/articles/caching.py
   (content version + page entry from Redis; the same bytes for every reader).
3. raw: gunicorn serving `raw_app` below, a bare WSGI app returning the same bytes,
   the ceiling for any Python page server on this machine.

The last line is the result:

    pages: uncached_rps=… cached_rps=… raw_rps=… cached_ratio=…
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR = BASE_DIR / "var" / "bench-pages"
# Two benchmarks side by side (two worktrees) must not share a database, a Redis db or
# ports: BENCH_DB_NAME, BENCH_REDIS_DB and BENCH_PORTS ("web,cached,raw") move them.
DB_NAME = os.environ.get("BENCH_DB_NAME", "outlet_bench_pages")
PG = "postgres://postgres@127.0.0.1:5432"
REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "3"))
PORT, PORT_CACHED, PORT_RAW = (
    int(port) for port in os.environ.get("BENCH_PORTS", "8010,8410,1035").split(",")
)
ARTICLE_PATH = "/how-the-new-district-map-was-drawn/"
RAW_BODY_FILE = VAR / "article.html"
GUNICORN_ARGS = ["--workers", "2", "--worker-class", "sync", "--backlog", "2048"]
WRK_ARGS = ["-t2", "-c16"]
DURATION = os.environ.get("BENCH_SECONDS", "6")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))

ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "bench-" + "Pq7vT3nZ" * 8,
    "SITE_URL": f"http://127.0.0.1:{PORT}",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "STRIPE_API_BASE": "http://127.0.0.1:9",  # never called by these pages
    "STRIPE_SECRET_KEY": "sk_test_bench",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_bench",
    "STRIPE_WEBHOOK_SECRET": "whsec_bench_pages",
    "OUTLET_POSTAL_ADDRESS": "The Outlet, 100 Example Street, Springfield, ST 00000, USA",
    "OUTLET_VAR_DIR": str(VAR),
    "DATABASE_URL": f"{PG}/{DB_NAME}",
    "CELERY_BROKER_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
    "CACHE_URL": f"rediscache://127.0.0.1:6379/{REDIS_DB}",
    "EMAIL_URL": "dummymail://",
    "LOG_LEVEL": "WARNING",
}


def raw_app(environ, start_response):
    """The ceiling: the article's bytes, read once, returned with no framework at all."""
    body = _raw_body()
    start_response(
        "200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))]
    )
    return [body]


_RAW: list[bytes] = []


def _raw_body() -> bytes:
    if not _RAW:
        _RAW.append(RAW_BODY_FILE.read_bytes())
    return _RAW[0]


def log(message: str) -> None:
    print(f"[bench-pages] {message}", file=sys.stderr, flush=True)


def run(args: list[str], env: dict[str, str]) -> None:
    subprocess.run(args, cwd=BASE_DIR, env=env, check=True, stdout=subprocess.DEVNULL)


def prepare(env: dict[str, str]) -> None:
    import psycopg
    import redis

    log(f"recreating database {DB_NAME}")
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{DB_NAME}"')
    redis.Redis(db=REDIS_DB).flushdb()
    shutil.rmtree(VAR, ignore_errors=True)
    VAR.mkdir(parents=True)
    log("migrate, collectstatic, demo_load")
    run([sys.executable, "manage.py", "migrate", "-v0"], env)
    run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], env)
    run([sys.executable, "manage.py", "demo_load"], {**env, "DEBUG": "1"})


def wait_until_up(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing answered at {url}")


def gunicorn(
    app: str, env: dict[str, str], extra: list[str] | None = None, port: int = PORT
) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}", *GUNICORN_ARGS]
        + (extra or []),
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wrk(url: str) -> float:
    subprocess.run(["wrk", *WRK_ARGS, "-d2s", url], check=True, capture_output=True)  # warm-up
    result = subprocess.run(
        ["wrk", *WRK_ARGS, f"-d{DURATION}s", "--latency", url],
        check=True,
        capture_output=True,
        text=True,
    )
    if "Non-2xx or 3xx responses" in result.stdout:
        raise SystemExit(f"errors under load:\n{result.stdout}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    if not match:
        raise SystemExit(f"could not read wrk's output:\n{result.stdout}")
    latency = re.search(r"^\s+50%\s+(\S+).*?^\s+99%\s+(\S+)", result.stdout, re.S | re.M)
    log(
        f"  {float(match.group(1)):.0f} req/s; p50 {latency.group(1)} p99 {latency.group(2)}"
        if latency
        else f"  {match.group(1)} req/s"
    )
    return float(match.group(1))


def main() -> None:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: `make bench-pages` installs it when run as root")
    env = {**os.environ, **ENV}
    prepare(env)
    configs = {
        "uncached": ("outlet.wsgi", {**env, "CACHE_PAGE_SECONDS": "0"}, [], PORT),
        "cached": ("outlet.wsgi", {**env, "CACHE_PAGE_SECONDS": "300"}, [], PORT_CACHED),
        "raw": (
            "pages:raw_app",
            env,
            ["--pythonpath", str(BASE_DIR / "benchmarks")],
            PORT_RAW,
        ),
    }
    servers = {}
    try:
        for label in ("uncached", "cached"):
            app, server_env, extra, port = configs[label]
            servers[label] = gunicorn(app, server_env, extra, port)
            wait_until_up(f"http://127.0.0.1:{port}{ARTICLE_PATH}")
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT_CACHED}{ARTICLE_PATH}") as response:
            RAW_BODY_FILE.write_bytes(response.read())
        app, server_env, extra, port = configs["raw"]
        servers["raw"] = gunicorn(app, server_env, extra, port)
        wait_until_up(f"http://127.0.0.1:{port}{ARTICLE_PATH}")
        # The machine is shared: alternate the three, several rounds, and keep medians,
        # so a burst of someone else's work does not land on one measurement only.
        results: dict[str, list[float]] = {label: [] for label in configs}
        for round_number in range(1, ROUNDS + 1):
            for label in configs:
                log(f"round {round_number}: {label}")
                results[label].append(wrk(f"http://127.0.0.1:{configs[label][3]}{ARTICLE_PATH}"))
    finally:
        for server in servers.values():
            stop(server)
    uncached, cached, raw = (statistics.median(results[label]) for label in configs)
    print(
        f"pages: uncached_rps={uncached:.0f} cached_rps={cached:.0f} raw_rps={raw:.0f} "
        f"cached_ratio={cached / raw:.2f}"
    )


if __name__ == "__main__":
    main()
