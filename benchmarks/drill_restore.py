"""The restore drill: `make drill-restore`. Runs tests/drill/test_restore_drill.py on
PostgreSQL + Redis with real worker, beat and web processes, then prints one line:

    restore: dump_s=… restore_s=… rows_checked=… lost=0 duplicates=… replayed_events=…

`duplicates` are deliveries the old site handed to the SMTP server after the dump's
snapshot: the restored database still holds them as unsent, so the resumed send mails
them again (docs/operations.md#what-a-restore-repeats). The drill fails if any other
message repeats, if anyone is not mailed, or if a payment made after the dump is missing.

Its databases: DATABASE_URL's (pytest's test_ copy of it is the old site; the same name +
`_restored`, or RESTORE_DATABASE_URL, the new one), else benchmarks/resources.py's
`outlet_bench_drill_restore_<run>`. Its Redis: CELERY_BROKER_URL / CACHE_URL, else a
database claimed from resources.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import resources

BASE_DIR = Path(__file__).resolve().parent.parent
CASE = "tests/drill/test_restore_drill.py"


def main() -> int:
    report = Path(tempfile.mkstemp(prefix="drill-restore-", suffix=".json")[1])
    env = {"OUTLET_VAR_DIR": "var/drill-restore", **os.environ, "DRILL_RESTORE_REPORT": str(report)}
    env.setdefault("DATABASE_URL", resources.database_url("drill_restore"))
    if "CELERY_BROKER_URL" not in os.environ:
        redis_db = resources.redis_claim("drill_restore")
        resources.redis_flush(redis_db, "drill_restore")
        env.update(resources.redis_urls(redis_db, "drill_restore"))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider",
         "--create-db", "-q", "-rA", CASE],
        cwd=BASE_DIR, env=env, check=False,
    )  # fmt: skip
    text = report.read_text().strip()
    if not text:
        print("restore: the drill did not finish (see above)")
        return run.returncode or 1
    row = json.loads(text)
    print(
        f"  backup while sending: {row['sent_at_snapshot']} of {row['readers']} sent at the "
        f"snapshot; repeats expected from deliveries accepted after it: "
        f"{row['expected_duplicates']}; GET / on the restored site: {row['front_page']}"
    )
    print(
        f"restore: dump_s={row['dump_s']} restore_s={row['restore_s']} "
        f"rows_checked={row['rows_checked']} lost={row['lost']} "
        f"duplicates={row['duplicates']} replayed_events={row['replayed_events']}"
    )
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
