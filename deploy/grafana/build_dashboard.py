#!/usr/bin/env python3
"""Build the Grafana dashboard JSON model from lifelong.panels (the panels `lifelong report` also draws).

    python deploy/grafana/build_dashboard.py            # rewrite dashboards/lifelong.json
    python deploy/grafana/build_dashboard.py --check    # exit 1 if the committed JSON is out of date

The dashboard uses a templated `${datasource}` Prometheus variable, so it works with whatever Prometheus data
source the Grafana has; provisioning/ provisions one (uid `prometheus`) and this dashboard.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(ROOT))

from lifelong.panels import DRIFT_ANNOTATION, PANELS, Panel  # noqa: E402

OUT = Path(__file__).resolve().parent / "dashboards" / "lifelong.json"
UID = "lifelong-overview"
SCHEMA_VERSION = 39  # Grafana 10.4 / 11.x
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# Colour steps per panel (Grafana thresholds: each step applies from its value upwards).
THRESHOLDS: dict[str, list[tuple[str, float | None]]] = {
    "accuracy_now": [("red", None), ("orange", 0.5), ("green", 0.8)],
    "checkpoint_now": [("green", None), ("orange", 300), ("red", 900)],  # 900 s: LifelongCheckpointStale
    "ready_now": [("red", None), ("green", 1)],
    "lag_now": [("green", None), ("orange", 10_000)],  # 10k: LifelongConsumerLagGrowing
}


def _thresholds(key: str) -> dict[str, Any]:
    steps = THRESHOLDS.get(key, [("green", None)])
    return {"mode": "absolute", "steps": [{"color": color, "value": value} for color, value in steps]}


def _targets(panel: Panel) -> list[dict[str, Any]]:
    return [
        {"datasource": DATASOURCE, "expr": q.expr, "legendFormat": q.legend or "__auto", "range": True,
         "instant": False, "refId": chr(ord("A") + i)}
        for i, q in enumerate(panel.queries)
    ]


def _defaults(panel: Panel) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit, "thresholds": _thresholds(panel.key)}
    if panel.min is not None:
        defaults["min"] = panel.min
    if panel.max is not None:
        defaults["max"] = panel.max
    return defaults


def stat_panel(panel_id: int, panel: Panel) -> dict[str, Any]:
    return {
        "id": panel_id, "type": "stat", "title": panel.title, "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": dict(zip("xywh", panel.grid, strict=True)),
        "fieldConfig": {"defaults": {**_defaults(panel), "color": {"mode": "thresholds"}}, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value", "graphMode": "area", "justifyMode": "auto", "orientation": "auto",
            "textMode": "auto",
        },
        "targets": _targets(panel),
    }


def timeseries_panel(panel_id: int, panel: Panel) -> dict[str, Any]:
    custom = {
        "drawStyle": "line", "lineWidth": 1, "fillOpacity": 60 if panel.stacked else 8, "showPoints": "never",
        "spanNulls": False, "axisSoftMin": 0 if panel.min == 0 else None,
        "stacking": {"mode": "normal" if panel.stacked else "none", "group": "A"},
    }
    custom = {k: v for k, v in custom.items() if v is not None}
    return {
        "id": panel_id, "type": "timeseries", "title": panel.title, "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": dict(zip("xywh", panel.grid, strict=True)),
        "fieldConfig": {
            "defaults": {**_defaults(panel), "color": {"mode": "palette-classic"}, "custom": custom},
            "overrides": [],
        },
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": _targets(panel),
    }


def _query_variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "name": name, "label": label, "type": "query", "datasource": DATASOURCE,
        "definition": query, "query": {"query": query, "refId": f"{name}-variable"},
        "includeAll": True, "multi": True, "allValue": ".*", "refresh": 2, "sort": 1,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "hide": 0, "regex": "",
        "options": [],
    }


def build() -> dict[str, Any]:
    """The dashboard JSON model (deterministic: same input, same bytes)."""
    panels = [
        (stat_panel if panel.kind == "stat" else timeseries_panel)(panel_id, panel)
        for panel_id, panel in enumerate(PANELS, start=1)
    ]
    return {
        "uid": UID,
        "title": "lifelong: streaming continual learning",
        "description": "Prequential accuracy, drift, throughput, lag, latency, dead letters, replay memory and "
                       "checkpoints of the lifelong daemon. Generated by deploy/grafana/build_dashboard.py.",
        "tags": ["lifelong", "continual-learning", "kafka"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "timezone": "browser",
        "time": {"from": "now-3h", "to": "now"},
        "refresh": "30s",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "links": [],
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0, "includeAll": False, "multi": False, "refresh": 1, "regex": "",
             "options": []},
            _query_variable("job", "Job", "label_values(lifelong_build_info, job)"),
            _query_variable("instance", "Instance", 'label_values(lifelong_build_info{job=~"$job"}, instance)'),
        ]},
        "annotations": {"list": [
            {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
             "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
             "type": "dashboard"},
            {"name": "Drift detections", "datasource": DATASOURCE, "enable": True, "hide": False,
             "iconColor": "red", "expr": DRIFT_ANNOTATION.expr, "step": "$__interval",
             "titleFormat": "drift", "textFormat": DRIFT_ANNOTATION.legend, "tagKeys": "detector,instance",
             "useValueForTime": False},
        ]},
        "panels": panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed JSON differs")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is out of date: run python deploy/grafana/build_dashboard.py", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)} ({len(PANELS)} panels)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
