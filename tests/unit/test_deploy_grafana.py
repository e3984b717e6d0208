"""The Grafana dashboard: the committed JSON is what build_dashboard.py generates, it parses as a dashboard model
(unique panel ids, grid positions that do not overlap, every datasource reference resolves to the templated
`${datasource}` variable or a provisioned uid, every target has an expr, every `$variable` is defined), the
provisioning files point at it, and every metric its PromQL reads is one the exporter produces.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.exposition import generate_latest

from lifelong.metrics.exporter import DaemonMetrics
from lifelong.panels import PANELS, exposed_names, metric_names

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "lifelong.json"
BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__range", "__all"}
BUILTIN_DATASOURCES = {"-- Grafana --"}


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def provisioned_uids() -> set[str]:
    data = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    return {ds["uid"] for ds in data["datasources"]}


def all_queries(model: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in model["panels"] for t in p["targets"]]
    exprs += [a["expr"] for a in model["annotations"]["list"] if "expr" in a]
    for variable in model["templating"]["list"]:
        if variable["type"] == "query":  # Grafana's label_values(<selector>, <label>): keep the PromQL part
            match = re.fullmatch(r"label_values\((.*),\s*\w+\)", variable["definition"])
            assert match, variable["definition"]
            exprs.append(match.group(1))
    return exprs


def test_committed_json_is_generated() -> None:
    result = subprocess.run([sys.executable, str(GRAFANA / "build_dashboard.py"), "--check"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_dashboard_model() -> None:
    model = dashboard()
    assert model["uid"] and len(model["uid"]) <= 40
    assert model["schemaVersion"] >= 39
    panels = model["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)) == len(PANELS)
    occupied: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert set(grid) == {"x", "y", "w", "h"} and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                 for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells
        assert panel["type"] in {"stat", "timeseries"} and panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert panel["targets"] and len(refs) == len(set(refs))
        assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]


def _datasource_refs(node: Any) -> list[Any]:
    if isinstance(node, dict):
        found = [node["datasource"]] if "datasource" in node else []
        return found + [ref for value in node.values() for ref in _datasource_refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _datasource_refs(item)]
    return []


def test_every_datasource_reference_resolves() -> None:
    model = dashboard()
    variables = {v["name"]: v for v in model["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    refs = _datasource_refs(model["panels"]) + _datasource_refs(model["annotations"]) + [
        v["datasource"] for v in model["templating"]["list"] if "datasource" in v]
    assert len(refs) > len(PANELS)
    allowed = {"${datasource}"} | provisioned_uids() | BUILTIN_DATASOURCES
    for ref in refs:
        assert isinstance(ref, dict), ref
        assert ref["uid"] in allowed, ref
        if ref["uid"] != "-- Grafana --":
            assert ref["type"] == "prometheus"


def test_every_variable_used_is_defined() -> None:
    model = dashboard()
    defined = {v["name"] for v in model["templating"]["list"]} | BUILTIN_VARIABLES
    used = set()
    for expr in all_queries(model):
        used |= set(re.findall(r"\$\{?(\w+)", expr))
    assert used and used <= defined, used - defined


def test_drift_annotation_and_required_panels() -> None:
    model = dashboard()
    (drift,) = [a for a in model["annotations"]["list"] if a.get("name") == "Drift detections"]
    assert "changes(lifelong_drift_detected_total" in drift["expr"]
    exprs = " ".join(all_queries(model))
    for needle in ["instance_class:lifelong_accuracy:ratio_rate5m", "lifelong_accuracy_ratio",
                   "rate(lifelong_events_total", "lifelong_consumer_lag_messages",
                   "histogram_quantile(0.99, sum by (le) (rate(lifelong_train_step_seconds_bucket",
                   "sum by (reason) (rate(lifelong_dead_letter_total", "lifelong_replay_buffer_samples",
                   "time() - (lifelong_checkpoint_timestamp_seconds"]:
        assert needle in exprs, needle


def test_provisioning_files() -> None:
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "lifelong.yaml").read_text())
    assert provider["apiVersion"] == 1
    (entry,) = provider["providers"]
    assert entry["type"] == "file" and entry["options"]["path"].startswith("/")
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    assert datasources["apiVersion"] == 1
    assert [ds["type"] for ds in datasources["datasources"]] == ["prometheus"]


def test_dashboard_reads_only_exported_or_recorded_metrics() -> None:
    recorded = {rule["record"] for group in
                yaml.safe_load((ROOT / "deploy" / "prometheus" / "recording.rules.yml").read_text())["groups"]
                for rule in group["rules"]}
    used = set().union(*(metric_names(expr) for expr in all_queries(dashboard())))
    assert recorded & used, "the per-class accuracy panel reads the recording rule"
    metrics = DaemonMetrics(max_classes=3)
    metrics.set_build_info("0", "naive", "cpu")
    missing = used - recorded - exposed_names(generate_latest(metrics.registry).decode())
    assert not missing, f"the dashboard reads metrics nobody exports: {sorted(missing)}"
