"""A real worker: its lines are JSON carrying the task's ids, and a pool process that
ends is marked dead for prometheus-client (worker_process_shutdown)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from outlet.newsletters.tasks import issue_plan_task
from tests.conftest import WorkerProcess

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _pool_pids(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_a_worker_logs_json_with_task_ids_and_marks_its_pool_dead(tmp_path):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    # A queue of its own: messages other tests left in the shared test broker (the
    # filesystem transport hands out about one a second) never stand in front of its task.
    queue = f"logs-{uuid.uuid4().hex[:8]}"
    worker = WorkerProcess(
        queues=queue,
        extra_env={"LOG_FORMAT": "json", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
    )
    try:
        worker.wait_ready()
        # No such issue: the task does nothing.
        result = issue_plan_task.apply_async((987654,), queue=queue, routing_key=queue)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and result.id not in worker.log_path.read_text():
            time.sleep(0.2)
        (pool,) = _pool_pids(worker.process.pid)
        live_gauge = metrics_dir / f"gauge_liveall_{pool}.db"
        live_gauge.write_bytes(b"")
    finally:
        worker.stop()

    lines = [json.loads(line) for line in worker.log_path.read_text().splitlines()
             if line.startswith("{")]  # fmt: skip
    done = next((line for line in lines if line.get("task_id") == result.id), None)
    assert done is not None, worker.log_path.read_text()[-3000:]
    assert done["task_name"] == "newsletters.issue_plan" and done["issue_id"] == 987654
    assert not live_gauge.exists()
