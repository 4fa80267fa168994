"""How fast readers get an article page: uncached, cached, and a bare WSGI ceiling.

    make bench-pages

PostgreSQL (database outlet_bench_pages, recreated, migrated, demo content loaded),
Redis db 3 as the cache, gunicorn with 2 sync workers and DEBUG off. The load comes
from wrk in a second process (Debian package `wrk`), 2 threads and 16 connections,
after a short warm-up, against the demo's longest article.

1. uncached: CACHE_PAGE_SECONDS=0, so every request runs the view, its queries and
   the templates (the navigation is still cached, as in production).
2. cached: CACHE_PAGE_SECONDS=300, the page cache of outlet/articles/caching.py
   (content version + page entry from Redis, per-request nonce and CSRF filled in).
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
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR = BASE_DIR / "var" / "bench-pages"
DB_NAME = "outlet_bench_pages"
PG = "postgres://postgres@127.0.0.1:5432"
REDIS_DB = 3
PORT = 8010
ARTICLE_PATH = "/how-the-new-district-map-was-drawn/"
RAW_BODY_FILE = VAR / "article.html"
GUNICORN_ARGS = ["--workers", "2", "--worker-class", "sync", "--backlog", "2048"]
WRK_ARGS = ["-t2", "-c16"]
DURATION = os.environ.get("BENCH_SECONDS", "10")

ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "bench-" + "Pq7vT3nZ" * 8,
    "SITE_URL": f"http://127.0.0.1:{PORT}",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "STRIPE_API_BASE": "http://127.0.0.1:8410",
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


def gunicorn(app: str, env: dict[str, str], extra: list[str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", app, "--bind", f"127.0.0.1:{PORT}", *GUNICORN_ARGS]
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


def measure(label: str, app: str, env: dict[str, str], extra: list[str] | None = None) -> float:
    log(f"{label}: gunicorn {app}")
    server = gunicorn(app, env, extra)
    try:
        url = f"http://127.0.0.1:{PORT}{ARTICLE_PATH}"
        wait_until_up(url)
        return wrk(url)
    finally:
        stop(server)


def main() -> None:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: sudo apt-get install wrk")
    env = {**os.environ, **ENV}
    prepare(env)

    uncached = measure("uncached", "outlet.wsgi", {**env, "CACHE_PAGE_SECONDS": "0"})
    cached_env = {**env, "CACHE_PAGE_SECONDS": "300"}
    server = gunicorn("outlet.wsgi", cached_env)
    try:
        url = f"http://127.0.0.1:{PORT}{ARTICLE_PATH}"
        wait_until_up(url)
        with urllib.request.urlopen(url) as response:
            RAW_BODY_FILE.write_bytes(response.read())
    finally:
        stop(server)
    cached = measure("cached", "outlet.wsgi", cached_env)
    raw = measure("raw", "pages:raw_app", env, ["--pythonpath", str(BASE_DIR / "benchmarks")])

    print(
        f"pages: uncached_rps={uncached:.0f} cached_rps={cached:.0f} raw_rps={raw:.0f} "
        f"cached_ratio={cached / raw:.2f}"
    )


if __name__ == "__main__":
    main()
