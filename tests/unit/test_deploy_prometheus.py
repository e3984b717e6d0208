"""Prometheus rules: `promtool check rules` and `promtool test rules` pass, every alert is documented, and every
metric the rules read is one the exporter really produces (checked here against an in-process scrape of
DaemonMetrics; tests/integration/test_deploy_daemon.py checks the running daemon's /metrics).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from lifelong.daemon.position_guard import SKIP_REASONS
from lifelong.metrics.exporter import DaemonMetrics
from lifelong.panels import metric_names

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
RULE_FILES = [PROM / "recording.rules.yml", PROM / "alerts.rules.yml"]
#: Series Prometheus itself creates for every target, not exported by the daemon.
PROMETHEUS_SERIES = {"up"}
EXPECTED_ALERTS = {
    "LifelongDown", "LifelongAbsent", "LifelongNotReady", "LifelongAccuracyDrop", "LifelongDriftStorm",
    "LifelongCheckpointStale", "LifelongConsumerLagGrowing", "LifelongDeadLetterRate", "LifelongSkippedSteps",
    "LifelongFetcherRestarting", "LifelongTopicRecreated", "LifelongRecordsDeleted",
}


def promtool() -> str:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.skip("promtool not installed and scripts/install-check-tools.sh could not install it")
    return tool


def rules() -> list[dict]:
    return [rule for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"]]


def exported_names() -> set[str]:
    """Sample names of an in-process scrape of the daemon's exporter, every labelled family given a child."""
    metrics = DaemonMetrics(max_classes=3, topics=("events",), offset_skip_reasons=SKIP_REASONS)
    metrics.set_build_info("0", "naive", "cpu")
    metrics.observe_dead_letters(["wrong_size"])
    metrics.observe_drift("ADWIN")
    metrics.set_lag({("events", 0): 5})
    text = generate_latest(metrics.registry).decode()
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def test_promtool_check_rules() -> None:
    result = subprocess.run([promtool(), "check", "rules", *map(str, RULE_FILES)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_FILES)


def test_promtool_check_rules_rejects_a_bad_expression(tmp_path: Path) -> None:
    """Negative control: promtool really parses the PromQL."""
    bad = tmp_path / "bad.rules.yml"
    bad.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [
        {"record": "job:x:rate5m", "expr": "sum by (job) (rate(lifelong_events_total[5m])"}]}]}))
    result = subprocess.run([promtool(), "check", "rules", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0


def test_promtool_unit_tests() -> None:
    tests = sorted((PROM / "tests").glob("*.test.yml"))
    assert tests
    result = subprocess.run([promtool(), "test", "rules", *map(str, tests)],
                            capture_output=True, text=True, timeout=120, cwd=PROM / "tests")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "FAILED" not in result.stdout


def test_every_alert_is_documented_and_tested() -> None:
    alerts = [rule for rule in rules() if "alert" in rule]
    assert {rule["alert"] for rule in alerts} == EXPECTED_ALERTS
    tested = set()
    for path in (PROM / "tests").glob("*.test.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            tested |= {t["alertname"] for t in case.get("alert_rule_test", []) if t.get("exp_alerts")}
    assert tested == EXPECTED_ALERTS  # each alert has a case where it fires
    for rule in alerts:
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        assert "for" in rule, rule["alert"]


def test_per_class_accuracy_is_recorded_over_5m_and_15m() -> None:
    records = {rule["record"]: " ".join(rule["expr"].split()) for rule in rules() if "record" in rule}
    for window in ("5m", "15m"):
        expr = records[f"class:lifelong_accuracy:ratio_rate{window}"]
        assert expr == (f"sum by (class) (rate(lifelong_predictions_correct_total[{window}])) / "
                        f"sum by (class) (rate(lifelong_predictions_total[{window}]))")
        assert f"instance_class:lifelong_accuracy:ratio_rate{window}" in records


def test_rules_read_only_exported_metrics() -> None:
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    used = set().union(*(metric_names(rule["expr"]) for rule in rules()))
    raw = used - recorded - PROMETHEUS_SERIES
    assert raw >= {"lifelong_predictions_total", "lifelong_predictions_correct_total", "lifelong_events_total"}
    missing = raw - exported_names()
    assert not missing, f"rules use metrics the exporter does not produce: {sorted(missing)}"


def test_example_prometheus_config_loads_the_rules() -> None:
    result = subprocess.run([promtool(), "check", "config", str(PROM / "prometheus.example.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 rule files found" in result.stdout
    config = yaml.safe_load((PROM / "prometheus.example.yml").read_text())
    assert [job["job_name"] for job in config["scrape_configs"]] == ["lifelong"]  # the alerts' job="lifelong"
