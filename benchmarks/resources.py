"""What a benchmark or drill run uses on the machine: its PostgreSQL database, its Redis
database and its ports, all chosen here so two runs (two benchmarks, or the same one in
two worktrees) never share one.

- A database is named for the benchmark and the run's name (`BENCH_RUN_NAME`, by default
  this worktree's directory): `outlet_bench_pages_sec`. The same benchmark in another
  worktree gets another database; a rerun here reuses (or recreates) its own.
- A Redis database is claimed, not assumed: the first of `BENCH_REDIS_DBS` (default
  10, 11, 14, 15) that holds nothing, or only this run's own claim, is taken with `SET NX` on a
  claim key and released when the run ends. `redis_flush` empties it and keeps the claim.
  Broker and cache share it (the cache under a key prefix).
- Ports come from the kernel (bind to port 0), so nothing is reserved by number.

Every benchmark script and benchmarks/drill.py take these from here.
"""

from __future__ import annotations

import atexit
import os
import re
import socket
from pathlib import Path

PG = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
CLAIM_KEY = "outlet:bench:claim"
CLAIM_SECONDS = 6 * 3600  # a run killed without cleaning up frees its database by then
_BASE_DIR = Path(__file__).resolve().parent.parent


def run_name() -> str:
    """This run's name: BENCH_RUN_NAME, else the worktree's directory, as an identifier."""
    name = os.environ.get("BENCH_RUN_NAME") or _BASE_DIR.name
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "main"


def database_name(bench: str) -> str:
    """A PostgreSQL database of this benchmark's own, for this run (at most 63 bytes)."""
    return f"outlet_bench_{bench}_{run_name()}"[:63]


def database_url(bench: str) -> str:
    return f"{PG}/{database_name(bench)}"


def free_port() -> int:
    """A TCP port nothing listens on now, chosen by the kernel."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: Redis databases benchmarks may claim: none that older scripts or the engineers' own
#: test runs use by number (1-9, 12, 13).
DEFAULT_REDIS_DBS = "10,11,14,15"


def _candidate_redis_dbs() -> list[int]:
    """BENCH_REDIS_DBS, e.g. "10,11,14,15" or "10-15"."""
    dbs: list[int] = []
    for part in os.environ.get("BENCH_REDIS_DBS", DEFAULT_REDIS_DBS).split(","):
        first, _, last = part.strip().partition("-")
        dbs.extend(range(int(first), int(last or first) + 1))
    return dbs


def _owner(bench: str) -> str:
    return f"{bench}:{run_name()}:{os.getpid()}"


def _stale(claim: str) -> bool:
    """A claim by a process of this machine that is gone (killed before its cleanup)."""
    pid = claim.rsplit(":", 1)[-1]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def redis_claim(bench: str) -> int:
    """Claim a Redis database nobody else is using for this run; released at exit.

    A run killed before its exit handlers (SIGTERM, SIGKILL) leaves its claim, which the
    next run takes over once that process is gone. No SIGTERM handler is installed: the
    benchmarks' forked pool workers would inherit it, and `Pool.terminate` then hangs."""
    import redis

    owner = _owner(bench)
    for db in _candidate_redis_dbs():
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
        claimed = client.get(CLAIM_KEY)
        if claimed is not None and claimed.decode() == owner:
            return db
        if claimed is not None and _stale(claimed.decode()):
            client.delete(CLAIM_KEY)
            claimed = None
            if client.dbsize() != 0:
                client.flushdb()  # what the killed run left
        if (
            claimed is None
            and client.dbsize() == 0
            and client.set(CLAIM_KEY, owner, nx=True, ex=CLAIM_SECONDS)
        ):
            atexit.register(_redis_release, db, owner)
            return db
    raise SystemExit(
        f"No free Redis database among {os.environ.get('BENCH_REDIS_DBS', DEFAULT_REDIS_DBS)} "
        "(each holds keys or another run's claim); set BENCH_REDIS_DBS to a free range."
    )


def redis_flush(db: int, bench: str) -> None:
    """Empty a claimed database for a fresh run, keeping the claim."""
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
    client.flushdb()
    client.set(CLAIM_KEY, _owner(bench), ex=CLAIM_SECONDS)


def _redis_release(db: int, owner: str) -> None:
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
    try:
        claimed = client.get(CLAIM_KEY)
        if claimed is not None and claimed.decode() == owner:
            client.flushdb()  # what the run left (queued tasks, cache) would block the next
    except redis.RedisError:
        pass


def redis_urls(db: int, bench: str) -> dict[str, str]:
    """CELERY_BROKER_URL and CACHE_URL on one claimed database."""
    return {
        "CELERY_BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}",
        "CACHE_URL": f"rediscache://{REDIS_HOST}:{REDIS_PORT}/{db}?key_prefix=bench-{bench}",
    }
