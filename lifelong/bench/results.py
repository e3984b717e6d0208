"""Append benchmark figures to ``benchmarks/results.jsonl`` and regenerate ``benchmarks/RESULTS.md`` from it.

Every figure is one JSON object: benchmark, metric, value, unit, date, machine, command, plus any setting that
matters (codec, model, client, device ...). RESULTS.md is generated, never edited by hand: the latest figure of
each (benchmark, metric, settings) is shown, with its machine and date, so runs on different machines sit side by side.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shlex
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parents[2] / "benchmarks"
BASE_KEYS = ("benchmark", "metric", "value", "unit", "date", "machine", "command")


def machine() -> str:
    """A short description of where a figure was measured: CPU model and count, GPU when one was used."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    desc = f"{os.cpu_count()} x {cpu}"
    try:
        import torch

        if torch.cuda.is_available():
            desc += f", {torch.cuda.get_device_name(0)}"
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return desc


def command_line() -> str:
    return " ".join(shlex.quote(arg) for arg in [Path(sys.argv[0]).name, *sys.argv[1:]])


def figure(benchmark: str, metric: str, value: float, unit: str, **settings: Any) -> dict[str, Any]:
    """One figure as results.jsonl stores it, stamped with now, this machine and this command line."""
    return {
        "benchmark": benchmark,
        "metric": metric,
        "value": value,
        "unit": unit,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": settings.pop("machine", None) or machine(),
        "command": settings.pop("command", None) or command_line(),
        **settings,
    }


def append(entry: dict[str, Any], results_dir: Path | None = None) -> None:
    """Append one :func:`figure` to results.jsonl and regenerate RESULTS.md."""
    folder = results_dir or RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "results.jsonl").open("a") as fh:
        fh.write(json.dumps(entry, sort_keys=False) + "\n")
    render(folder)


def record(benchmark: str, metric: str, value: float, unit: str, *, results_dir: Path | None = None,
           **settings: Any) -> dict[str, Any]:
    """Append one figure and regenerate RESULTS.md; returns the stored object."""
    entry = figure(benchmark, metric, value, unit, **settings)
    append(entry, results_dir)
    return entry


def load(folder: Path | None = None) -> list[dict[str, Any]]:
    path = (folder or RESULTS_DIR) / "results.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _latest(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for entry in entries:
        settings = {k: v for k, v in entry.items() if k not in BASE_KEYS}
        key = json.dumps([entry["benchmark"], entry["metric"], entry["machine"], settings], sort_keys=True)
        latest[key] = entry
    return list(latest.values())


def render(folder: Path | None = None) -> Path:
    """Write RESULTS.md: the targets (lifelong.bench.targets), then one table per benchmark, latest figure per
    metric and settings."""
    from lifelong.bench.targets import render_targets

    folder = folder or RESULTS_DIR
    everything = load(folder)
    entries = _latest(everything)
    lines = [
        "# Benchmark results",
        "",
        "Generated from `benchmarks/results.jsonl` by `lifelong.bench.results.render()`; do not edit by hand.",
        "After the targets, each row is the latest run of that figure on that machine. Re-run a script to refresh "
        "its rows.",
        "",
        *render_targets(everything),
    ]
    for benchmark in sorted({e["benchmark"] for e in entries}):
        rows = [e for e in entries if e["benchmark"] == benchmark]
        setting_keys = sorted({k for e in rows for k in e if k not in BASE_KEYS})
        lines += [f"## {benchmark}", ""]
        header = ["metric", "value", "unit", *setting_keys, "machine", "date", "command"]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for e in sorted(rows, key=lambda r: (r["metric"], r["date"])):
            cells = [e["metric"], _fmt(e["value"]), e["unit"], *(_fmt(e.get(k, "")) for k in setting_keys),
                     e["machine"], e["date"], f"`{e['command']}`"]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    out = folder / "RESULTS.md"
    out.write_text("\n".join(lines))
    return out
