"""How fast a WordPress archive imports, in how much memory, and how fast its old links answer.

    make bench-import N=100000

On PostgreSQL by default when one answers at BENCH_PG_URL (127.0.0.1:5432), in a database
of its own (benchmarks/resources.py: `outlet_bench_import_<run>`, recreated each run);
otherwise (or with DATABASE_URL=sqlite:///…) a fresh SQLite file under var/bench-import/.

1. Writes a synthetic WXR export of N posts (half classic text with a [caption], half
   Gutenberg blocks with a pull quote), 20 categories, 200 tags, 50 authors.
2. Migrates the fresh database and runs `archive_import` on it in a child process, timed,
   printing progress lines with the child's resident memory; its peak RSS (its maximum
   resident set) is reported at 10,000 posts and at N, to show it stays flat.
3. Asks for 2,000 random old permalinks in-process (Django's test client) and times each.

The last line is the result:

    import: n=… articles_per_s=… rss_mb=… redirect_ms_p95=…
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import resources

BASE_DIR = Path(__file__).resolve().parent.parent
VAR = BASE_DIR / "var" / "bench-import"

HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:excerpt="http://wordpress.org/export/1.2/excerpt/"
 xmlns:content="http://purl.org/rss/1.0/modules/content/"
 xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:wp="http://wordpress.org/export/1.2/">
<channel><title>Bench</title><wp:wxr_version>1.2</wp:wxr_version>
<wp:base_site_url>https://bench.example</wp:base_site_url>
<wp:base_blog_url>https://bench.example</wp:base_blog_url>
"""
CLASSIC = (
    "Paragraph one of post {n}.\nA second line.\n\n"
    '[caption id="attachment_1" width="800"]<img src="https://bench.example/wp-content/uploads/x.jpg"'
    ' alt="A picture" /> A caption.[/caption]\n\nClosing paragraph with <em>emphasis</em>.'
)
BLOCKS = (
    "<!-- wp:paragraph --><p>Block post {n}.</p><!-- /wp:paragraph -->"
    '<!-- wp:pullquote --><figure class="wp-block-pullquote"><blockquote><p>Quote {n}</p>'
    "<cite>Someone</cite></blockquote></figure><!-- /wp:pullquote -->"
    "<!-- wp:paragraph --><p>More text.</p><!-- /wp:paragraph -->"
)


def export_write(path: Path, n: int) -> None:
    with path.open("w") as out:
        out.write(HEADER)
        for a in range(50):
            out.write(
                f"<wp:author><wp:author_login>author{a}</wp:author_login>"
                f"<wp:author_display_name>Author {a}</wp:author_display_name></wp:author>\n"
            )
        for c in range(20):
            out.write(
                f"<wp:category><wp:category_nicename>cat{c}</wp:category_nicename>"
                f"<wp:category_parent></wp:category_parent><wp:cat_name>Category {c}</wp:cat_name>"
                "</wp:category>\n"
            )
        for i in range(1, n + 1):
            day = f"20{10 + i % 14:02d}-{1 + i % 12:02d}-{1 + i % 28:02d}"
            body = (CLASSIC if i % 2 else BLOCKS).format(n=i)
            out.write(
                f"<item><title>Post number {i}</title>"
                f"<link>https://bench.example/{day.replace('-', '/')}/post-{i}/</link>"
                f"<dc:creator>author{i % 50}</dc:creator>"
                f"<content:encoded><![CDATA[{body}]]></content:encoded>"
                "<excerpt:encoded><![CDATA[]]></excerpt:encoded>"
                f"<wp:post_id>{i}</wp:post_id><wp:post_date>{day} 10:00:00</wp:post_date>"
                f"<wp:post_date_gmt>{day} 09:00:00</wp:post_date_gmt>"
                f"<wp:post_name>post-{i}</wp:post_name><wp:status>publish</wp:status>"
                "<wp:post_type>post</wp:post_type><wp:post_password></wp:post_password>"
                f'<category domain="category" nicename="cat{i % 20}">Category {i % 20}</category>'
                f'<category domain="post_tag" nicename="tag{i % 200}">Tag {i % 200}</category>'
                "</item>\n"
            )
        out.write("</channel></rss>\n")


IMPORT_RUN = """
import resource, sys, time, django
django.setup()
from django.conf import settings
from pathlib import Path
# As the admin's worker runs it: DEBUG keeps the SQL of the last 9,000 queries in memory,
# and an import's bulk INSERTs are large (the bench needs DEBUG on only for its cache).
settings.DEBUG = False
from outlet.importers.services import archive_import

def rss_mb():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

started = time.perf_counter()

def progress(done, total):
    if done % 5000 == 0 or done == total:
        rate = done / (time.perf_counter() - started)
        print(f"progress: {done}/{total} articles_per_s={rate:.0f} rss_mb={rss_mb():.0f} "
              f"peak_mb={peak_mb():.0f}", flush=True)

report = archive_import(source="wordpress", path=Path(sys.argv[1]), progress=progress)
print(report.last_line(), flush=True)
print(f"peak_mb={peak_mb():.0f}", flush=True)
"""


REDIRECT_PROBE = """
import random, statistics, time, django
django.setup()
from django.test import Client
from outlet.redirects.models import Redirect
found = Redirect.objects.filter(old_path__contains="/post-")
paths = list(found.values_list("old_path", flat=True))
random.seed(1)
client = Client(HTTP_HOST="127.0.0.1")
timings = []
for path in random.choices(paths, k=2000):
    start = time.perf_counter()
    response = client.get(path)
    timings.append((time.perf_counter() - start) * 1000)
    assert response.status_code == 301, (path, response.status_code)
timings.sort()
print(f"{timings[int(len(timings) * 0.95)]:.2f}")
"""


def log(message: str) -> None:
    print(f"[bench-import] {message}", flush=True)


def postgres_database() -> str | None:
    """A fresh database of this benchmark's own on PostgreSQL, or None if none answers."""
    try:
        import psycopg

        with psycopg.connect(f"{resources.PG}/postgres", autocommit=True, connect_timeout=3) as db:
            name = resources.database_name("import")
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            db.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001 - any failure means: fall back to SQLite
        log(f"PostgreSQL not reachable at {resources.PG} ({exc.__class__.__name__}); SQLite")
        return None
    return resources.database_url("import")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10000)
    args = parser.parse_args()
    VAR.mkdir(parents=True, exist_ok=True)
    export = VAR / "export.xml"
    log(f"writing a synthetic export of {args.n} posts")
    export_write(export, args.n)
    database = VAR / "bench.sqlite3"
    database.unlink(missing_ok=True)
    url = os.environ.get("DATABASE_URL") or postgres_database() or f"sqlite:///{database}"
    log(f"database {url}")
    env = {
        **os.environ,
        "DEBUG": "1",
        "OUTLET_VAR_DIR": str(VAR),
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "outlet.settings",
    }
    manage = [sys.executable, str(BASE_DIR / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=BASE_DIR)
    log("importing")
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", IMPORT_RUN, str(export)],
        env=env,
        cwd=BASE_DIR,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    lines: list[str] = []
    peak_at_10k = ""
    for line in child.stdout:
        line = line.rstrip()
        lines.append(line)
        if line.startswith("progress:"):
            log(line)
            if line.startswith(f"progress: {min(10000, args.n)}/"):
                peak_at_10k = line.rsplit("peak_mb=", 1)[1]
    if child.wait() != 0:
        raise SystemExit(f"the import failed (exit {child.returncode})")
    seconds = time.perf_counter() - started
    # The import's own peak (the children's maximum would include `migrate`'s).
    rss_mb = float(lines[-1].removeprefix("peak_mb="))
    log(lines[-2])
    log(f"peak rss: {peak_at_10k} MB at {min(10000, args.n)} posts, {rss_mb:.0f} MB at {args.n}")
    log("timing old permalinks")
    probe = subprocess.run(
        [sys.executable, "-c", REDIRECT_PROBE],
        env=env,
        cwd=BASE_DIR,
        check=True,
        capture_output=True,
        text=True,
    )
    print(
        f"import: n={args.n} articles_per_s={args.n / seconds:.0f} rss_mb={rss_mb:.0f} "
        f"redirect_ms_p95={probe.stdout.strip()}"
    )


if __name__ == "__main__":
    main()
