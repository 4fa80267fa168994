"""deploy/prometheus/ speaks of the metrics outlet exports: every outlet_* name in the
alert rules and the dashboard is one /metrics can give, and every dashboard query is
valid PromQL (checked by promtool)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from outlet.core.metrics.gauges import BusinessCollector

pytestmark = pytest.mark.django_db

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
NAME = re.compile(r"\boutlet_[a-z0-9_]+")
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gauge": ("",),
}
#: Read only where there is such a thing to read: the Redis click buffer (absent in the
#: SQLite suite, whose clicks are written as they come).
CONDITIONAL = {"outlet_tracking_buffer_lines"}


def exported_names() -> set[str]:
    """Sample names /metrics can carry: the counters and histograms every process
    defines, and the gauges read at scrape time."""
    import outlet.core.metrics.instruments  # noqa: F401 (defines them)

    names: set[str] = set(CONDITIONAL)
    for family in [*REGISTRY.collect(), *BusinessCollector().collect()]:
        if family.name.startswith("outlet_"):
            names.update(family.name + s for s in SUFFIXES.get(family.type, ("",)))
    return names


def dashboard_queries() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_alert_rules_name_only_exported_metrics():
    used = set(NAME.findall((DEPLOY / "outlet-alerts.yml").read_text()))
    assert used, "the rules name no outlet metric"
    assert used <= exported_names(), sorted(used - exported_names())


def test_dashboard_names_only_exported_metrics():
    used = set(NAME.findall(" ".join(dashboard_queries())))
    assert used <= exported_names(), sorted(used - exported_names())


@pytest.mark.skipif(shutil.which("promtool") is None, reason="needs promtool (make promtool)")
def test_every_dashboard_query_is_valid_promql(tmp_path):
    rules = ["groups:", "  - name: dashboard", "    rules:"]
    for n, expr in enumerate(dashboard_queries()):
        expr = expr.replace("$job", "outlet")
        rules += [f"      - record: dashboard:query{n}", f"        expr: {json.dumps(expr)}"]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text("\n".join(rules) + "\n")

    checked = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
