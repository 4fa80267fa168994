"""benchmarks/resources.py: two benchmark runs at once never share a database or a port."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import resources  # noqa: E402


def _redis_or_skip():
    import redis

    try:
        redis.Redis(host=resources.REDIS_HOST, port=resources.REDIS_PORT).ping()
    except redis.RedisError:
        pytest.skip("no Redis on 127.0.0.1:6379")


def test_the_same_benchmark_in_two_worktrees_gets_two_databases(monkeypatch):
    monkeypatch.setenv("BENCH_RUN_NAME", "wt/sec")
    here = resources.database_name("pages")
    monkeypatch.setenv("BENCH_RUN_NAME", "main")
    there = resources.database_name("pages")

    assert here == "outlet_bench_pages_wt_sec" and there == "outlet_bench_pages_main"
    assert resources.database_name("webhooks") != there


def test_ports_are_found_free_not_fixed():
    ports = {resources.free_port() for _ in range(5)}
    assert len(ports) == 5


def test_two_runs_at_once_claim_two_redis_databases(monkeypatch):
    _redis_or_skip()
    monkeypatch.setenv("BENCH_REDIS_DBS", "14-15")
    import redis

    if any(redis.Redis(db=db).dbsize() for db in (14, 15)):
        pytest.skip("Redis db 14 or 15 is in use by a run")
    claim = (
        "import sys; sys.path.insert(0, sys.argv[1]); import resources;"
        "print(resources.redis_claim('pages'), flush=True); sys.stdin.readline()"
    )
    runs: list[subprocess.Popen] = []

    def start() -> int:
        command = [sys.executable, "-c", claim, str(BENCHMARKS)]
        pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE}
        runs.append(subprocess.Popen(command, text=True, **pipes))
        return int(runs[-1].stdout.readline())

    try:
        assert {start(), start()} == {14, 15}
        third = subprocess.run(
            [sys.executable, "-c", claim, str(BENCHMARKS)],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert third.returncode != 0 and "BENCH_REDIS_DBS" in third.stderr
    finally:
        for run in runs:
            run.communicate("\n", timeout=10)  # each run ends normally
    for db in (14, 15):
        assert redis.Redis(db=db).get(resources.CLAIM_KEY) is None  # released at exit


def test_a_run_stopped_by_sigterm_dies_at_once_and_its_claim_is_taken_over(monkeypatch):
    """No SIGTERM handler: forked pool workers of a benchmark must die when terminated."""
    _redis_or_skip()
    import redis

    monkeypatch.setenv("BENCH_REDIS_DBS", "11")
    if redis.Redis(db=11).dbsize():
        pytest.skip("Redis db 11 is in use by a run")
    claim = (
        "import sys, time; sys.path.insert(0, sys.argv[1]); import resources;"
        "print(resources.redis_claim('edge'), flush=True); time.sleep(60)"
    )
    run = subprocess.Popen([sys.executable, "-c", claim, str(BENCHMARKS)],
                           stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert int(run.stdout.readline()) == 11
    run.terminate()
    assert run.wait(timeout=10) == -15

    assert resources.redis_claim("pages") == 11
    resources._redis_release(11, resources._owner("pages"))
    assert redis.Redis(db=11).get(resources.CLAIM_KEY) is None


def test_a_claim_left_by_a_killed_run_is_taken_over(monkeypatch):
    _redis_or_skip()
    import redis

    monkeypatch.setenv("BENCH_REDIS_DBS", "11")
    if redis.Redis(db=11).dbsize():
        pytest.skip("Redis db 11 is in use by a run")
    killed = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                            capture_output=True, text=True, check=True)  # fmt: skip
    client = redis.Redis(db=11)
    assert client.set(resources.CLAIM_KEY, f"pages:other:{killed.stdout.strip()}", nx=True)

    assert resources.redis_claim("pages") == 11
    resources._redis_release(11, resources._owner("pages"))
    assert client.get(resources.CLAIM_KEY) is None
