"""The bounce drill: `make drill-bounces`. Runs tests/drill/test_bounce_drill.py (a real
Postfix relaying a DKIM-signed newsletter to a second Postfix that refuses some readers,
Postfix's own DSNs taken in by a real worker) on PostgreSQL + Redis, then prints one line:

    bounces: sent=… dsn=… hard=… soft=… complaints=… ignored=… forged_refused=…
             wrongly_suppressed=0 lost=0 dkim_pass=N/N

Its database and Redis database come from benchmarks/resources.py unless DATABASE_URL /
CELERY_BROKER_URL / CACHE_URL say otherwise. Needs root (a private Postfix master) and
Debian's postfix (the make target installs it).
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
CASES = ["tests/drill/test_bounce_drill.py"]


def main() -> int:
    report = Path(tempfile.mkstemp(prefix="drill-bounces-", suffix=".jsonl")[1])
    env = {**os.environ}
    if "CELERY_BROKER_URL" not in env:
        redis_db = resources.redis_claim("drill_bounces")
        resources.redis_flush(redis_db, "drill_bounces")
        env.update(resources.redis_urls(redis_db, "drill_bounces"))
    env.setdefault("DATABASE_URL", resources.database_url("drill_bounces"))
    env.setdefault("OUTLET_VAR_DIR", "var/drill-bounces")
    env["DRILL_REPORT"] = str(report)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "--create-db", "-rA", "-q",
         "-p", "no:cacheprovider", *CASES],
        cwd=BASE_DIR,
        env=env,
        check=False,
    )  # fmt: skip
    rows = [json.loads(line) for line in report.read_text().splitlines() if line.strip()]
    if not rows:
        print("bounces: the drill did not run (see above)")
        return run.returncode or 1
    row = rows[-1]
    print(f"  took {row['seconds']}s; unparsed set aside: {row['unparsed']}")
    print(
        f"bounces: sent={row['sent']} dsn={row['dsn']} hard={row['hard']} soft={row['soft']} "
        f"complaints={row['complaints']} ignored={row['ignored']} "
        f"forged_refused={row['forged_refused']} wrongly_suppressed={row['wrongly_suppressed']} "
        f"lost={row['lost']} dkim_pass={row['dkim_passed']}/{row['dkim_checked']}"
    )
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
