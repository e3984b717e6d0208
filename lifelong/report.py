"""Record a daemon's /metrics over time and draw the Grafana dashboard's panels as a PNG, without Grafana.

``lifelong scrape`` polls the exposition at a fixed interval and appends one JSON line per scrape (the raw text,
so nothing is lost and the file can be re-read by any Prometheus parser):
``{"t": <unix seconds>, "up": 1, "text": "<exposition>"}``, or ``{"t": ..., "up": 0, "error": "..."}`` when the
target did not answer. ``lifelong report`` reads that file and draws every panel of ``lifelong.panels.PANELS``
with the PromQL evaluated in numpy: ``rate()`` over the counters (resets handled, children that appear late start
from 0), ``histogram_quantile()`` over the buckets' rates, drift detections as vertical markers.
"""

from __future__ import annotations

import json
import math
import re
import signal
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import urlparse

import numpy as np
import typer

from lifelong.panels import DRIFT_ANNOTATION, PANELS, Panel

LabelKey = tuple[tuple[str, str], ...]
CUMULATIVE_TYPES = {"counter", "histogram", "summary"}


# ---- recording ------------------------------------------------------------------------------------------------
def record_scrapes(url: str, out: Path, interval: float = 1.0, stop: threading.Event | None = None,
                   duration: float | None = None, stop_after_down: float | None = None,
                   on_change: Callable[[str], None] | None = None) -> int:
    """Append one line per scrape of ``url`` to ``out`` until ``stop`` is set, ``duration`` passes, or the
    target has been unreachable for ``stop_after_down`` seconds after having answered. Returns the scrape count.
    ``on_change`` hears, in a sentence, each time the target stops or starts answering (and the first time)."""
    stop = stop or threading.Event()
    start = time.monotonic()
    seen_up, down_since, count, answering = False, None, 0, None
    with out.open("a") as sink:
        while not stop.is_set():
            now = time.time()
            try:
                with urllib.request.urlopen(url, timeout=max(1.0, interval)) as response:
                    line = {"t": now, "url": url, "up": 1, "text": response.read().decode()}
                seen_up, down_since = True, None
            except (OSError, urllib.error.URLError) as exc:
                line = {"t": now, "url": url, "up": 0, "error": str(exc)}
                down_since = down_since if down_since is not None else time.monotonic()
            if on_change is not None and bool(line["up"]) is not answering:
                answering = bool(line["up"])
                on_change(f"{url} answers" if answering else f"{url} does not answer ({line['error']}): "
                          "recording that it is down")
            sink.write(json.dumps(line) + "\n")
            sink.flush()  # a killed recorder leaves only whole lines
            count += 1
            elapsed = time.monotonic() - start
            if duration is not None and elapsed >= duration:
                break
            if (stop_after_down is not None and seen_up and down_since is not None
                    and time.monotonic() - down_since >= stop_after_down):
                break
            stop.wait(max(0.0, start + count * interval - time.monotonic()))  # fixed rate, no drift
    return count


# ---- loading --------------------------------------------------------------------------------------------------
@dataclass
class Recording:
    """Scrapes aligned on one time axis: ``values[name][labels]`` is an array over ``times`` (NaN = absent)."""

    times: np.ndarray
    up: np.ndarray
    values: dict[str, dict[LabelKey, np.ndarray]]
    types: dict[str, str] = field(default_factory=dict)
    target: dict[str, str] = field(default_factory=dict)

    def series(self, name: str) -> dict[LabelKey, np.ndarray]:
        return self.values.get(name, {})

    @property
    def interval(self) -> float:
        return float(np.median(np.diff(self.times))) if len(self.times) > 1 else 1.0

    @property
    def duration(self) -> float:
        return float(self.times[-1] - self.times[0]) if len(self.times) else 0.0


def _family_of(sample: str, families: Iterable[str]) -> str | None:
    for suffix in ("_total", "_bucket", "_count", "_sum", "_info", ""):
        if suffix and not sample.endswith(suffix):
            continue
        base = sample[: len(sample) - len(suffix)] if suffix else sample
        if base in families:
            return base
    return None


def load_scrapes(path: Path) -> Recording:
    """Parse a ``lifelong scrape`` file (with prometheus_client's own text parser)."""
    from prometheus_client.parser import text_string_to_metric_families

    times, up, rows, types = [], [], [], {}
    url = ""
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
            url = line.get("url", url)
            times.append(float(line["t"]))
            up.append(int(line.get("up", 1)))
            text = line["text"] if up[-1] else ""
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            reason = f"no {exc}" if isinstance(exc, KeyError) else str(exc)
            raise ValueError(f"{path}:{number}: not a line written by `lifelong scrape` ({reason})") from exc
        row: dict[tuple[str, LabelKey], float] = {}
        if up[-1]:
            for family in text_string_to_metric_families(text):
                types[family.name] = family.type
                for sample in family.samples:
                    if sample.name.endswith("_created"):
                        continue  # creation timestamps, not data
                    row[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
        rows.append(row)
    if not times:
        raise ValueError(f"{path}: no scrapes recorded")
    if not any(up):
        raise ValueError(f"{path}: none of its {len(times)} scrapes of {url or 'the daemon'} got an answer: "
                         "nothing to draw (is the daemon running, on that port?)")
    order = np.argsort(times, kind="stable")
    times_arr = np.asarray(times, dtype=np.float64)[order]
    up_arr = np.asarray(up, dtype=np.int8)[order]
    rows = [rows[i] for i in order]
    keys = sorted({key for row in rows for key in row})
    values: dict[str, dict[LabelKey, np.ndarray]] = {}
    for name, labels in keys:
        arr = np.array([row.get((name, labels), np.nan) for row in rows], dtype=np.float64)
        family = _family_of(name, types)
        if family is not None and types[family] in CUMULATIVE_TYPES:
            # A labelled child created mid-run was 0 before it appeared (while the target answered).
            first = int(np.argmax(~np.isnan(arr)))
            arr[:first][up_arr[:first] == 1] = 0.0
        values.setdefault(name, {})[labels] = arr
    return Recording(times_arr, up_arr, values, types)


# ---- PromQL in numpy ------------------------------------------------------------------------------------------
def rate(values: np.ndarray, times: np.ndarray, window: float) -> np.ndarray:
    """Per-second increase over the trailing ``window`` seconds at each sample, counter resets handled."""
    out = np.full(values.shape, np.nan)
    valid = ~np.isnan(values)
    t, v = times[valid], values[valid]
    if len(v) < 2:
        return out
    resets = np.concatenate([[0.0], np.cumsum(np.where(np.diff(v) < 0, v[:-1], 0.0))])
    corrected = v + resets
    start = np.searchsorted(t, t - window - 1e-9, side="left")
    span = t - t[start]
    with np.errstate(invalid="ignore", divide="ignore"):
        out[valid] = np.where(span > 0, (corrected - corrected[start]) / span, np.nan)
    return out


def _nansum(arrays: list[np.ndarray]) -> np.ndarray:
    stack = np.vstack(arrays)
    total = np.nansum(stack, axis=0)
    total[np.all(np.isnan(stack), axis=0)] = np.nan
    return total


def sum_by(series: dict[LabelKey, np.ndarray], by: tuple[str, ...]) -> dict[LabelKey, np.ndarray]:
    """``sum by (labels)``: group series on the ``by`` labels and add them (NaN only where all are NaN)."""
    groups: dict[LabelKey, list[np.ndarray]] = {}
    for labels, arr in series.items():
        key = tuple((k, v) for k, v in labels if k in by)
        groups.setdefault(key, []).append(arr)
    return {key: _nansum(arrs) for key, arrs in sorted(groups.items(), key=lambda kv: _sort_key(kv[0]))}


def _sort_key(labels: LabelKey) -> tuple:
    return tuple((k, (0, float(v), "") if re.fullmatch(r"-?\d+(\.\d+)?", v) else (1, 0.0, v)) for k, v in labels)


def histogram_quantile(q: float, buckets: dict[float, np.ndarray]) -> np.ndarray:
    """Prometheus's bucket interpolation over cumulative bucket rates keyed by their upper bound ``le``."""
    les = sorted(buckets)
    counts = np.vstack([buckets[le] for le in les])  # (buckets, time)
    out = np.full(counts.shape[1], np.nan)
    for i in range(counts.shape[1]):
        column = counts[:, i]
        total = column[-1]
        if not np.isfinite(total) or total <= 0:
            continue
        rank = q * total
        b = int(np.searchsorted(column, rank, side="left"))
        b = min(b, len(les) - 1)
        if math.isinf(les[b]):
            out[i] = les[b - 1] if b > 0 else np.nan
            continue
        lower, below = (0.0, 0.0) if b == 0 else (les[b - 1], column[b - 1])
        width = column[b] - below
        out[i] = les[b] if width <= 0 else lower + (les[b] - lower) * (rank - below) / width
    return out


# ---- the panels -----------------------------------------------------------------------------------------------
@dataclass
class Line:
    """One drawn series: which of the panel's queries it answers, its labels (for the legend) and values."""

    query: int
    labels: dict[str, str]
    values: np.ndarray


Evaluator = Callable[[Recording, float], list[Line]]


def _with_target(rec: Recording, labels: LabelKey) -> dict[str, str]:
    return {**rec.target, **dict(labels)}


def _gauge_by(name: str, by: tuple[str, ...], query: int = 0) -> Evaluator:
    def evaluate(rec: Recording, window: float) -> list[Line]:
        return [Line(query, _with_target(rec, k), v) for k, v in sum_by(rec.series(name), by).items()]
    return evaluate


def _rate_by(name: str, by: tuple[str, ...], query: int = 0) -> Evaluator:
    def evaluate(rec: Recording, window: float) -> list[Line]:
        rates = {k: rate(v, rec.times, window) for k, v in rec.series(name).items()}
        return [Line(query, _with_target(rec, k), v) for k, v in sum_by(rates, by).items()]
    return evaluate


def _increase_by(name: str, by: tuple[str, ...], query: int = 0) -> Evaluator:
    """``increase(name[window])``, summed by ``by``: Prometheus's rate times the range."""
    def evaluate(rec: Recording, window: float) -> list[Line]:
        return [Line(line.query, line.labels, line.values * window) for line in _rate_by(name, by, query)(rec, window)]
    return evaluate


def _each(*evaluators: Evaluator) -> Evaluator:
    """A panel of several queries: each evaluator answers the query its lines name."""
    def evaluate(rec: Recording, window: float) -> list[Line]:
        return [line for evaluator in evaluators for line in evaluator(rec, window)]
    return evaluate


def _ratio_by(by: tuple[str, ...], query: int = 0) -> Evaluator:
    """rate(correct) / rate(predictions), summed by ``by``: the recording rules' accuracy."""
    def evaluate(rec: Recording, window: float) -> list[Line]:
        correct = sum_by({k: rate(v, rec.times, window)
                          for k, v in rec.series("lifelong_predictions_correct_total").items()}, by)
        total = sum_by({k: rate(v, rec.times, window)
                        for k, v in rec.series("lifelong_predictions_total").items()}, by)
        lines = []
        for key, denominator in total.items():
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = np.where(denominator > 0, correct.get(key, np.nan) / denominator, np.nan)
            lines.append(Line(query, _with_target(rec, key), ratio))
        return lines
    return evaluate


def _checkpoint_age(rec: Recording, window: float) -> list[Line]:
    """``time() - lifelong_checkpoint_timestamp_seconds``, with a scrape's start as ``time()``: a stamp set while
    the scrape was answered is up to a request's time later, so an age is clipped at 0 (Prometheus evaluates
    ``time()`` after the scrape)."""
    lines = []
    for key, stamp in rec.series("lifelong_checkpoint_timestamp_seconds").items():
        age = np.where(stamp > 0, np.maximum(rec.times - stamp, 0.0), np.nan)
        lines.append(Line(0, _with_target(rec, key), age))
    return lines


def _latency(rec: Recording, window: float) -> list[Line]:
    buckets: dict[float, list[np.ndarray]] = {}
    for key, arr in rec.series("lifelong_train_step_seconds_bucket").items():
        le = float(dict(key)["le"])
        buckets.setdefault(le, []).append(rate(arr, rec.times, window))
    if not buckets:
        return []
    summed = {le: _nansum(arrs) for le, arrs in buckets.items()}
    return [Line(i, dict(rec.target), histogram_quantile(q, summed)) for i, q in enumerate((0.5, 0.9, 0.99))]


def _reduce(evaluator: Evaluator, how: str) -> Evaluator:
    """One stat value: the lines combined as the panel's PromQL aggregation does (sum/avg/min/max)."""
    def evaluate(rec: Recording, window: float) -> list[Line]:
        lines = evaluator(rec, window)
        if not lines:
            return []
        stack = np.vstack([line.values for line in lines])
        if np.all(np.isnan(stack)):
            return [Line(0, {}, np.full(stack.shape[1], np.nan))]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: handled just below
            value = {"sum": np.nansum, "avg": np.nanmean, "min": np.nanmin, "max": np.nanmax}[how](stack, axis=0)
        value[np.all(np.isnan(stack), axis=0)] = np.nan
        return [Line(0, {}, value)]
    return evaluate


def increase(values: np.ndarray) -> float:
    """Total increase of a counter over the whole recording, resets handled (NaN samples skipped)."""
    v = values[~np.isnan(values)]
    if len(v) < 2:
        return 0.0
    steps = np.diff(v)
    return float(np.sum(np.where(steps < 0, v[1:], steps)))


def _drift_total(rec: Recording, window: float) -> list[Line]:
    """sum(increase(lifelong_drift_detected_total[$__range])): one number for the whole recording."""
    total = sum(increase(arr) for arr in rec.series("lifelong_drift_detected_total").values())
    return [Line(0, {}, np.full(len(rec.times), float(total)))]


def _accuracy(rec: Recording, window: float) -> list[Line]:
    return _gauge_by("lifelong_accuracy_ratio", ("instance",))(rec, window) + _ratio_by(("instance",), 1)(rec, window)


EVALUATORS: dict[str, Evaluator] = {
    "accuracy_now": _reduce(_gauge_by("lifelong_accuracy_ratio", ("instance",)), "avg"),
    "events_now": _reduce(_rate_by("lifelong_events_total", ()), "sum"),
    "lag_now": _reduce(_gauge_by("lifelong_consumer_lag_messages", ()), "sum"),
    "checkpoint_now": _reduce(_checkpoint_age, "min"),
    "drifts_total": _drift_total,
    "ready_now": _reduce(_gauge_by("lifelong_ready", ("instance",)), "min"),
    "class_accuracy": _ratio_by(("class",)),
    "accuracy": _accuracy,
    "events_rate": _rate_by("lifelong_events_total", ("outcome",)),
    "lag": _gauge_by("lifelong_consumer_lag_messages", ("topic", "partition")),
    "train_latency": _latency,
    "dead_letters": _rate_by("lifelong_dead_letter_total", ("reason",)),
    "replay": _gauge_by("lifelong_replay_buffer_samples", ("class",)),
    "checkpoint_age": _checkpoint_age,
    "loss": _gauge_by("lifelong_loss", ("instance",)),
    "skipped": _rate_by("lifelong_skipped_steps_total", ("reason",)),
    "offsets_skipped": _rate_by("lifelong_offsets_skipped_total", ("reason",)),
    "client_errors": _each(_rate_by("lifelong_broker_errors_total", ()),
                           _rate_by("lifelong_fetcher_restarts_total", (), query=1)),
    "stream_incidents": _each(_increase_by("lifelong_topic_recreations_total", ("topic",)),
                              _increase_by("lifelong_dead_letter_payloads_omitted_total", (), query=1)),
}


def drift_events(rec: Recording) -> list[tuple[float, str]]:
    """(time, detector) of every scrape at which a drift counter went up (the dashboard's annotation)."""
    events = []
    for key, arr in sum_by(rec.series("lifelong_drift_detected_total"), ("detector",)).items():
        valid = np.nonzero(~np.isnan(arr))[0]  # compare answered scrapes only: a gap is not a drift
        steps = np.diff(arr[valid])
        for i in np.nonzero(steps != 0)[0]:  # up, or a reset followed by new detections
            if steps[i] > 0 or arr[valid[i + 1]] > 0:
                events.append((float(rec.times[valid[i + 1]]), dict(key).get("detector", "drift")))
    return sorted(events)


def default_window(rec: Recording) -> float:
    """Grafana uses $__rate_interval (4 scrape intervals at least) and the rules 5 minutes; a short recording
    gets a window that still shows its shape: a fifteenth of it, at least 4 intervals, at most 5 minutes."""
    return float(min(300.0, max(4 * rec.interval, rec.duration / 15)))


# ---- drawing --------------------------------------------------------------------------------------------------
def _legend(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template).strip() or "value"


def format_value(value: float, unit: str) -> str:
    """A stat panel's number, formatted like Grafana's unit."""
    if value is None or not np.isfinite(value):
        return "no data"
    if unit == "percentunit":
        return f"{value * 100:.1f}%"
    if unit == "s":
        if value < 1:
            return f"{value * 1000:.3g} ms"
        return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min" if value < 7200 else f"{value / 3600:.1f} h"
    suffix = "/s" if unit == "ops" else ""
    for scale, letter in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.1f}{letter}{suffix}"
    if float(value).is_integer() or abs(value) >= 100:
        return f"{value:.0f}{suffix}"
    return f"{value:.1f}{suffix}" if abs(value) >= 10 else f"{value:.2f}{suffix}"


def _threshold_colour(panel: Panel, value: float) -> str:
    colours = {"green": "#37872d", "orange": "#e0752d", "red": "#c4162a"}
    colour = panel.thresholds[0][0]
    for name, start in panel.thresholds:
        if start is None or (np.isfinite(value) and value >= start):
            colour = name
    return colours.get(colour, colour)


def _axis_formatter(unit: str):
    from matplotlib.ticker import FuncFormatter, PercentFormatter

    if unit == "percentunit":
        return PercentFormatter(1.0, decimals=0)
    if unit == "s":
        return FuncFormatter(lambda v, _: f"{v * 1000:.3g} ms" if 0 < abs(v) < 1 else f"{v:.3g} s")
    if unit == "ops":
        return FuncFormatter(lambda v, _: f"{format_value(v, 'short')}/s")
    return FuncFormatter(lambda v, _: format_value(v, "short") if unit == "short" else f"{v:.3g}")


def _panel_rect(panel: Panel, width: float, height: float, header: float, unit_h: float) -> tuple[float, ...]:
    """The panel's grid cell in figure fractions, minus room (in inches) for its title, ticks and labels."""
    x, y, w, h = panel.grid
    pad_left, pad_right, pad_top, pad_bottom = (0.15, 0.15, 0.4, 0.1) if panel.kind == "stat" else \
        (0.75, 0.15, 0.35, 0.4)
    left = x / 24 * width + pad_left
    top = header + y * unit_h + pad_top
    box_w = w / 24 * width - pad_left - pad_right
    box_h = h * unit_h - pad_top - pad_bottom
    return (left / width, 1 - (top + box_h) / height, box_w / width, box_h / height)


def render_report(rec: Recording, out: Path, window: float | None = None, title: str | None = None) -> Path:
    """Draw every panel of PANELS on the dashboard's 24-column grid and save a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    window = default_window(rec) if window is None else window
    rows = max(p.grid[1] + p.grid[3] for p in PANELS)
    width, unit_h, header = 20.0, 0.45, 0.7  # inches: figure width, one grid row, the title strip
    height = header + rows * unit_h
    fig = plt.figure(figsize=(width, height), dpi=100)
    stamps = np.array([datetime.fromtimestamp(t) for t in rec.times])
    drifts = drift_events(rec)
    start, end = datetime.fromtimestamp(rec.times[0]), datetime.fromtimestamp(rec.times[-1])
    fig.suptitle(
        title or f"lifelong report: {rec.target.get('instance', '')}  {start:%Y-%m-%d %H:%M:%S} to {end:%H:%M:%S}"
        f"  ({len(rec.times)} scrapes every {rec.interval:.1f} s; rates over {window:.0f} s; "
        f"dashed red lines: {len(drifts)} drift detections)", fontsize=13, x=0.01, ha="left")
    for panel in PANELS:
        ax = fig.add_axes(_panel_rect(panel, width, height, header, unit_h))
        lines = EVALUATORS[panel.key](rec, window)
        ax.set_title(panel.title, fontsize=11, loc="left", fontweight="bold")
        if panel.kind == "stat":
            values = lines[0].values if lines else np.array([np.nan])
            finite = values[np.isfinite(values)]
            last = float(finite[-1]) if finite.size else float("nan")
            ax.text(0.5, 0.42, format_value(last, panel.unit), ha="center", va="center", fontsize=26,
                    fontweight="bold", color=_threshold_colour(panel, last), transform=ax.transAxes)
            if finite.size > 1:  # Grafana's sparkline under the number
                spark = ax.inset_axes((0.0, 0.0, 1.0, 0.25))
                spark.fill_between(stamps, np.nan_to_num(values, nan=0.0), alpha=0.25,
                                   color=_threshold_colour(panel, last))
                spark.set_axis_off()
            ax.set_axis_off()
            continue
        drawn = [line for line in lines if np.isfinite(line.values).any()]
        if not drawn:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", color="grey", fontsize=12,
                    transform=ax.transAxes)
        labels = [_legend(panel.queries[line.query].legend, line.labels) for line in drawn]
        if panel.stacked and drawn:
            lower = np.zeros(len(stamps))
            for index, (line, label) in enumerate(zip(drawn, labels, strict=True)):
                upper = lower + np.nan_to_num(line.values, nan=0.0)
                gaps = np.isnan(line.values)  # the target did not answer: leave a hole, as Grafana does
                ax.fill_between(stamps, np.where(gaps, np.nan, lower), np.where(gaps, np.nan, upper),
                                label=label, alpha=0.8, color=f"C{index % 10}", linewidth=0)
                lower = upper
        else:
            for line, label in zip(drawn, labels, strict=True):
                ax.plot(stamps, line.values, label=label, linewidth=1.4)
        for when, _detector in drifts:
            ax.axvline(datetime.fromtimestamp(when), color="#c4162a", linestyle="--", linewidth=0.9, alpha=0.7)
        if panel.min is not None:
            ax.set_ylim(bottom=panel.min)
        if panel.max is not None:
            ax.set_ylim(top=panel.max * 1.02)
        ax.yaxis.set_major_formatter(_axis_formatter(panel.unit))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
        ax.set_xlim(stamps[0], stamps[-1])
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=8, ncol=5 if len(drawn) > 5 else 1, loc="best", framealpha=0.7)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


# ---- commands -------------------------------------------------------------------------------------------------
def scrape(
    url: Annotated[str, typer.Option(help="The daemon's metrics URL.")] = "http://127.0.0.1:9108/metrics",
    out: Annotated[Path, typer.Option("--out", "-o", help="JSON-lines file to append to.")] = Path("scrapes.jsonl"),
    interval: Annotated[float, typer.Option(help="Seconds between scrapes.", min=0.05)] = 1.0,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    stop_after_down: Annotated[float | None, typer.Option(
        help="Stop once the daemon has been unreachable this many seconds after having answered.")] = None,
) -> None:
    """Record the daemon's /metrics every --interval seconds into a file for `lifelong report`.

    Runs until Ctrl-C/SIGTERM, --duration, or --stop-after-down. Each line holds the raw exposition text.

    Example: lifelong scrape --url http://127.0.0.1:9108/metrics --interval 1 --out scrapes.jsonl
    """
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    count = record_scrapes(url, out, interval, stop, duration, stop_after_down,
                           on_change=lambda said: typer.echo(said, err=True))
    typer.echo(f"recorded {count} scrapes of {url} into {out}", err=True)


def report(
    scrapes: Annotated[Path, typer.Argument(help="File written by `lifelong scrape`.", exists=True,
                                            dir_okay=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG to write.")] = Path("lifelong-report.png"),
    window: Annotated[float | None, typer.Option(
        help="Rate window in seconds (the dashboard uses 5m and $__rate_interval); "
             "default: adapted to the recording's length.")] = None,
    instance: Annotated[str | None, typer.Option(help="Instance label for legends (default: from the URL).")] = None,
) -> None:
    """Draw the Grafana dashboard's panels as a PNG from a recorded scrape series (no Grafana needed).

    Example: lifelong report scrapes.jsonl --out report.png
    """
    try:
        rec = load_scrapes(scrapes)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    rec.target = {"job": "lifelong", "instance": instance or _instance_from(scrapes)}
    path = render_report(rec, out, window)
    typer.echo(f"wrote {path} ({len(PANELS)} panels from {len(rec.times)} scrapes over {rec.duration:.0f} s)",
               err=True)


def _instance_from(scrapes: Path) -> str:
    """host:port of the scraped URL, as Prometheus's `instance` label (recorded in the first line)."""
    with scrapes.open() as handle:
        first = json.loads(handle.readline() or "{}")
    url = first.get("url")
    return urlparse(url).netloc if url else "daemon"


__all__ = [
    "DRIFT_ANNOTATION", "EVALUATORS", "Recording", "default_window", "drift_events", "format_value",
    "histogram_quantile", "load_scrapes", "rate", "record_scrapes", "render_report", "report", "scrape", "sum_by",
]
