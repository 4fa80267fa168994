"""The fault drill: `make drill`. Runs the drill cases (tests/drill/test_fault_drill.py)
on PostgreSQL + Redis with real worker processes, then prints one line:

    drill: cases=… passed=… lost=0 duplicates=… wrongly_suppressed=0 wrong_body=0

Its database (pytest's test_ copy of benchmarks/resources.py's `outlet_bench_drill_<run>`,
recreated) and Redis database come from benchmarks/resources.py, unless DATABASE_URL /
CELERY_BROKER_URL / CACHE_URL say otherwise. The ESP outage is 20
minutes in production; here the retry and tick intervals are 1 second and the test
moves the tick's clock past each retry time, so the same path runs in seconds.
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
CASES = ["tests/drill/test_fault_drill.py"]


def main() -> int:
    report = Path(tempfile.mkstemp(prefix="drill-", suffix=".jsonl")[1])
    redis_db = resources.redis_claim("drill")
    resources.redis_flush(redis_db, "drill")
    env = {
        "DATABASE_URL": resources.database_url("drill"),
        **resources.redis_urls(redis_db, "drill"),
        "OUTLET_VAR_DIR": "var/drill",
        **os.environ,
        "DRILL_REPORT": str(report),
    }
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:randomly",
            "--create-db",
            "-rA",
            "-q",
            "--junitxml",
            str(report.with_suffix(".xml")),
            *CASES,
        ],  # fmt: skip
        cwd=BASE_DIR,
        env=env,
        check=False,
    )
    rows = [json.loads(line) for line in report.read_text().splitlines() if line.strip()]
    xml = report.with_suffix(".xml").read_text() if report.with_suffix(".xml").exists() else ""
    cases = xml.count("<testcase ")
    failed = xml.count("<failure") + xml.count("<error")
    skipped = xml.count("<skipped")
    totals = {key: sum(row.get(key, 0) for row in rows) for key in
              ("lost", "duplicates", "wrongly_suppressed", "wrong_body")}  # fmt: skip
    for row in rows:
        print(
            f"  case {row['case']}: " + " ".join(f"{k}={v}" for k, v in row.items() if k != "case")
        )
    print(
        f"drill: cases={cases} passed={cases - failed - skipped} lost={totals['lost']} "
        f"duplicates={totals['duplicates']} wrongly_suppressed={totals['wrongly_suppressed']} "
        f"wrong_body={totals['wrong_body']}"
    )
    return run.returncode or (1 if skipped else 0)


if __name__ == "__main__":
    sys.exit(main())
