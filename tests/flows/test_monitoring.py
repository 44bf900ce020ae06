"""The monitoring files speak of metrics pagereel really exports, and Prometheus accepts them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from flows import metrics
from flows.settings import MetricsSettings

MONITORING = Path(__file__).resolve().parents[2] / "deployments" / "monitoring"
_NAME = re.compile(r"\bpagereel_[a-z_]+")


def exported_names() -> set[str]:
    """Every sample name the registry can expose (counters' _total, histograms' _bucket/_sum/_count)."""
    names = set()
    for family in metrics.REGISTRY.collect():
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names |= {family.name + s for s in ("_bucket", "_sum", "_count")}
    return names


def test_alerts_and_dashboard_use_only_exported_metrics() -> None:
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"][0]["rules"]
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    expressions = [r["expr"] for r in rules] + [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for expr in expressions for name in _NAME.findall(expr)}
    assert used and used <= exported_names(), used - exported_names()
    assert {r["alert"] for r in rules} >= {"PagereelFailureRate", "PagereelSlowRenders"}
    assert not any("url" in expr for expr in expressions)


def test_prometheus_config_scrapes_the_metrics_port() -> None:
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "pagereel"]
    port = MetricsSettings().port
    assert f"127.0.0.1:{port}" in job["static_configs"][0]["targets"]
    assert config["rule_files"] == ["alerts.yml"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (the prometheus package) is not installed")
def test_promtool_accepts_the_config_and_rules() -> None:
    done = subprocess.run(["promtool", "check", "config", str(MONITORING / "prometheus.yml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 rules found" in done.stdout + done.stderr
