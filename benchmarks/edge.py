"""The site behind a real Varnish: throughput, hit ratio, purge on publish, stale when down.

    make bench-edge

PostgreSQL (database outlet_bench_edge_<run>, recreated, migrated, demo content loaded),
a claimed Redis db (broker and cache), gunicorn with 2 sync workers and DEBUG off, one
Celery worker for the purge tasks, and Debian's varnishd with deploy/varnish/outlet.vcl
(its backend port rewritten to this gunicorn) and the xkey vmod. The origin says
EDGE_PURGER=varnish and a short EDGE_CACHE_SECONDS, so pages expire during the run and
Varnish has to refresh them (in the background, stale-while-revalidate) and, at the
end, to serve them past their TTL once gunicorn is gone (stale-if-error).

1. varnish_rps: wrk (2 threads, 16 connections) against the demo's longest article
   through Varnish; hit_ratio from varnishstat's cache_hit / (cache_hit + cache_miss)
   over that run. Target ≥ 0.99.
2. origin_rps: the same wrk against a bare WSGI app in gunicorn returning the same
   bytes: the ceiling for any Python server on this machine.
3. purge_ms_p95: 20 edits of the article's headline through the service
   (article_save, as the admin saves); after each commit, the time until Varnish
   answers with the new headline. Target ≤ 1000 ms.
4. stale_on_origin_down: gunicorn stopped, the TTL left to run out; "yes" if Varnish
   still answers 200 with the last headline.
5. stale_on_origin_500: then an origin whose database is gone (robots.txt, the probe,
   answers; every page is a 500), the TTL left to run out again; "yes" if Varnish still
   answers 200 with the last headline, not the 500.

The last line is the result:

    edge: varnish_rps=… origin_rps=… hit_ratio=… purge_ms_p95=… stale_on_origin_down=yes|no
    stale_on_origin_500=yes|no  (on the same line)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import resources

BASE_DIR = Path(__file__).resolve().parent.parent
VAR = BASE_DIR / "var" / "bench-edge"
VCL = BASE_DIR / "deploy" / "varnish" / "outlet.vcl"
DB_NAME = resources.database_name("edge")
PG = resources.PG
PORT_ORIGIN, PORT_VARNISH, PORT_ADMIN, PORT_PURGE, PORT_RAW = (
    resources.free_port() for _ in range(5)
)
ARTICLE_PATH = "/how-the-new-district-map-was-drawn/"
ARTICLE_SLUG = ARTICLE_PATH.strip("/")
RAW_BODY_FILE = VAR / "article.html"
EDGE_SECONDS = 4
GUNICORN_ARGS = ["--workers", "2", "--worker-class", "sync", "--backlog", "2048"]
WRK_ARGS = ["-t2", "-c16"]
DURATION = os.environ.get("BENCH_SECONDS", "8")
EDITS = 20
VARNISHSTAT = shutil.which("varnishstat") or "/usr/bin/varnishstat"
VARNISHD = shutil.which("varnishd", path=f"{os.environ.get('PATH', '')}:/usr/sbin") or "varnishd"

ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "bench-" + "Ed9vK2xQ" * 8,
    "SITE_URL": f"http://127.0.0.1:{PORT_VARNISH}",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "STRIPE_API_BASE": "http://127.0.0.1:9",  # never called by these pages
    "STRIPE_SECRET_KEY": "sk_test_bench",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_bench",
    "STRIPE_WEBHOOK_SECRET": "whsec_bench_edge",
    "OUTLET_POSTAL_ADDRESS": "The Outlet, 100 Example Street, Springfield, ST 00000, USA",
    "OUTLET_VAR_DIR": str(VAR),
    "DATABASE_URL": f"{PG}/{DB_NAME}",
    "EMAIL_URL": "dummymail://",
    "LOG_LEVEL": "WARNING",
    "CACHE_PAGE_SECONDS": "300",
    "OUTLET_BEHIND_PROXY": "1",  # readers' addresses from Varnish's X-Forwarded-For
    "EDGE_PURGER": "varnish",
    "EDGE_PURGE_URLS": f"http://127.0.0.1:{PORT_PURGE}/",
    "EDGE_CACHE_SECONDS": str(EDGE_SECONDS),
}


def raw_app(environ, start_response):
    """The ceiling: the article's bytes, read once, returned with no framework at all."""
    if not _RAW:
        _RAW.append(RAW_BODY_FILE.read_bytes())
    start_response(
        "200 OK",
        [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(_RAW[0])))],
    )
    return [_RAW[0]]


_RAW: list[bytes] = []


def database_down_app(environ, start_response):
    """outlet with its database gone: the probe's /robots.txt still answers, pages are 500s."""
    if environ.get("PATH_INFO") == "/robots.txt":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"User-agent: *\n"]
    start_response("500 Internal Server Error", [("Content-Type", "text/html")])
    return [b"<h1>Server Error (500)</h1>"]


def log(message: str) -> None:
    print(f"[bench-edge] {message}", file=sys.stderr, flush=True)


def run(args: list[str], env: dict[str, str]) -> None:
    subprocess.run(args, cwd=BASE_DIR, env=env, check=True, stdout=subprocess.DEVNULL)


def prepare(env: dict[str, str], redis_db: int) -> None:
    import psycopg

    log(f"recreating database {DB_NAME}")
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{DB_NAME}"')
    resources.redis_flush(redis_db, "edge")
    shutil.rmtree(VAR, ignore_errors=True)
    VAR.mkdir(parents=True)
    log("migrate, collectstatic, demo_load")
    run([sys.executable, "manage.py", "migrate", "-v0"], env)
    run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], env)
    run([sys.executable, "manage.py", "demo_load"], {**env, "DEBUG": "1", "EDGE_PURGER": ""})


def start(args: list[str], env: dict[str, str], name: str) -> subprocess.Popen:
    log_file = open(VAR / f"{name}.log", "wb")  # noqa: SIM115 (lives as long as the process)
    return subprocess.Popen(
        args, cwd=BASE_DIR, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def gunicorn(app: str, env: dict[str, str], port: int, extra: list[str] | None = None):
    return start(
        [sys.executable, "-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}", *GUNICORN_ARGS]
        + (extra or []),
        env,
        f"gunicorn-{port}",
    )


def varnish(env: dict[str, str]) -> subprocess.Popen:
    vcl = VAR / "outlet.vcl"
    text = VCL.read_text()
    assert '.port = "8000";' in text, "the VCL's backend block changed; update bench-edge"
    vcl.write_text(text.replace('.port = "8000";', f'.port = "{PORT_ORIGIN}";'))
    args = [
        VARNISHD, "-F", "-n", str(VAR / "varnish"), "-f", str(vcl),
        "-a", f"127.0.0.1:{PORT_VARNISH}", "-a", f"purge=127.0.0.1:{PORT_PURGE}",
        "-T", f"127.0.0.1:{PORT_ADMIN}",
        "-s", "malloc,256m", "-p", "thread_pool_min=50",
    ]  # fmt: skip
    if os.geteuid() == 0:
        args[1:1] = ["-j", "none"]  # no privilege separation needed for a benchmark
    return start(args, env, "varnishd")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until_up(url: str, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if get(url)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"nothing answered at {url}; logs in {VAR}")


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
    log(f"  {float(match.group(1)):.0f} req/s")
    return float(match.group(1))


def varnish_counters() -> tuple[int, int]:
    output = subprocess.run(
        [VARNISHSTAT, "-n", str(VAR / "varnish"), "-j",
         "-f", "MAIN.cache_hit", "-f", "MAIN.cache_miss"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    data = json.loads(output)
    counters = data.get("counters", data)
    return counters["MAIN.cache_hit"]["value"], counters["MAIN.cache_miss"]["value"]


def purge_latencies(url: str, env: dict[str, str]) -> list[float]:
    """Edit the headline EDITS times through the service; ms until Varnish shows each.
    Runs in this process with the stack's environment (its claimed Redis db included)."""
    import django

    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "outlet.settings"
    sys.path.insert(0, str(BASE_DIR))
    django.setup()
    from outlet.articles.models import Article
    from outlet.articles.services import article_save

    latencies = []
    for number in range(1, EDITS + 1):
        get(url)  # cached again after the previous edit
        article = Article.objects.get(slug=ARTICLE_SLUG)
        headline = f"How the new district map was drawn (edit {number})"
        article.headline = headline
        article_save(article=article, note="bench-edge")  # returns after the commit
        committed = time.monotonic()
        while True:
            if headline.encode() in get(url)[1]:
                latencies.append((time.monotonic() - committed) * 1000)
                break
            if time.monotonic() - committed > 10:
                latencies.append(10_000.0)
                break
            time.sleep(0.005)
    log(f"  purge visible after (ms): {', '.join(f'{ms:.0f}' for ms in latencies)}")
    return latencies


def main() -> None:
    for tool in ("wrk", VARNISHD):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: make bench-edge installs it when run as root")
    redis_db = resources.redis_claim("edge")
    env = {**os.environ, **ENV, **resources.redis_urls(redis_db, "edge")}
    prepare(env, redis_db)
    processes: dict[str, subprocess.Popen] = {}
    varnish_url = f"http://127.0.0.1:{PORT_VARNISH}{ARTICLE_PATH}"
    try:
        processes["origin"] = gunicorn("outlet.wsgi", env, PORT_ORIGIN)
        processes["worker"] = start(
            [sys.executable, "-m", "celery", "-A", "outlet", "worker", "-Q", "default,mail,purge",
             "-P", "solo", "--without-mingle", "--without-gossip", "--loglevel", "WARNING"],
            env, "worker",
        )  # fmt: skip
        wait_until_up(f"http://127.0.0.1:{PORT_ORIGIN}{ARTICLE_PATH}")
        processes["varnish"] = varnish(env)
        wait_until_up(varnish_url)
        RAW_BODY_FILE.write_bytes(get(f"http://127.0.0.1:{PORT_ORIGIN}{ARTICLE_PATH}")[1])
        processes["raw"] = gunicorn(
            "edge:raw_app", env, PORT_RAW, ["--pythonpath", str(BASE_DIR / "benchmarks")]
        )
        wait_until_up(f"http://127.0.0.1:{PORT_RAW}{ARTICLE_PATH}")

        log("through varnish")
        hits_before, misses_before = varnish_counters()
        varnish_rps = wrk(varnish_url)
        hits_after, misses_after = varnish_counters()
        hits, misses = hits_after - hits_before, misses_after - misses_before
        hit_ratio = hits / max(1, hits + misses)
        log(f"  hits {hits}, misses {misses}")
        log("bare WSGI app, same bytes")
        origin_rps = wrk(f"http://127.0.0.1:{PORT_RAW}{ARTICLE_PATH}")

        log(f"{EDITS} edits, each until Varnish shows it")
        latencies = purge_latencies(varnish_url, env)
        purge_p95 = statistics.quantiles(latencies, n=20)[-1]

        log("gunicorn stopped; waiting past the page's TTL")
        last_headline = f"(edit {EDITS})".encode()
        stop(processes["origin"])
        time.sleep(EDGE_SECONDS + 4)
        status, body = get(varnish_url)
        stale = status == 200 and last_headline in body
        log(f"  varnish answered {status}{' with the last edit' if stale else ''}")

        log("origin back but its database down (500 to every page); waiting past the TTL")
        processes["database_down"] = gunicorn(
            "edge:database_down_app", env, PORT_ORIGIN,
            ["--pythonpath", str(BASE_DIR / "benchmarks")],
        )  # fmt: skip
        wait_until_up(f"http://127.0.0.1:{PORT_ORIGIN}/robots.txt")
        time.sleep(EDGE_SECONDS + 4)
        for _ in range(3):  # the first starts the background refresh that gets the 500
            status, body = get(varnish_url)
            time.sleep(0.5)
        stale_on_500 = status == 200 and last_headline in body
        log(f"  varnish answered {status}{' with the last edit' if stale_on_500 else ''}")
    finally:
        for process in processes.values():
            stop(process)
    print(
        f"edge: varnish_rps={varnish_rps:.0f} origin_rps={origin_rps:.0f} "
        f"hit_ratio={hit_ratio:.3f} purge_ms_p95={purge_p95:.0f} "
        f"stale_on_origin_down={'yes' if stale else 'no'} "
        f"stale_on_origin_500={'yes' if stale_on_500 else 'no'}"
    )


if __name__ == "__main__":
    main()
