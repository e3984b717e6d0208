"""The throughput targets, read off ``benchmarks/results.jsonl``: what each asks, where the latest run stands,
and the spread of every run of it.

RESULTS.md opens with this table, so that a reader sees whether a target is met (and how far apart runs on the
shared, noisy machines land) without reading every row below it. A target counts only runs of the setting it
names: the f32 MNIST stream, the 784-256-256-10 MLP (``model: mlp``; other widths are tagged ``mlp[...]``) with
reservoir replay of 500, on the client and device the target names. Each machine kind gets a row of its own:
the same code lands far apart on a CPU with bf16 matrix instructions and on one without, and the latest run on
one kind says nothing about the other. A CPU's kind is its machine name and the arithmetic its learner ran in
(:func:`machine_kind`: bf16 or float32, read off the run's ``autocast``), since two CPUs of one family name
(AMD EPYC with and without AVX512-BF16) do not say which they are.

Where a run's own figures bound what a target could reach in it, the row says so (``ceiling``): b/c, the
daemon over river, cannot pass a/c, the client alone over river, unless the daemon outruns the one client it
is measured against.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TARGETS", "Standing", "Target", "machine_kind", "render_targets", "standings"]

#: The setting every target is measured on.
ACCEPTANCE_SETTING: dict[str, Any] = {"benchmark": "throughput", "codec": "f32", "dataset": "mnist", "model": "mlp",
                                      "replay": "reservoir-500"}


@dataclass(frozen=True)
class Target:
    """One figure the project aims for."""

    metric: str
    wants: str  # the target as a reader reads it
    met: Callable[[float], bool]
    where: dict[str, Any] = field(default_factory=dict)  # settings a run must have, beyond ACCEPTANCE_SETTING
    accuracy_bound: bool = False  # also met only where the daemon's accuracy is at least the baseline's
    # what the run's own figures bound this one to, and what that bound is: (value, words), or None
    ceiling: Callable[[dict[str, Any], Sequence[dict[str, Any]]], tuple[float, str] | None] | None = None

    def counts(self, row: dict[str, Any]) -> bool:
        return row.get("metric") == self.metric and all(
            row.get(k) == v for k, v in {**ACCEPTANCE_SETTING, **self.where}.items())


#: Settings that tie the rows of one run's configuration together, beside their dates.
SAME_RUN = ("machine", "client", "model", "replay", "device", "records")
#: How far apart the rows of one configuration's run may be stamped. Each row is stamped as it is put, and
#: writing one (RESULTS.md is regenerated each time) can carry the next into the next second; two runs of one
#: configuration are minutes apart (each measures the client and the daemon over the whole topic).
RUN_SPREAD_S = 60.0


def machine_kind(row: dict[str, Any]) -> str:
    """The machine a run's row names, and on a CPU the learner's arithmetic: ``autocast`` as recorded, ``off``
    or ``auto(off)`` (float32) against ``bf16`` or ``auto(bf16)``; the bare name where the row has none."""
    autocast = row.get("autocast")
    if row.get("device", "cpu") != "cpu" or autocast is None:
        return str(row["machine"])
    return f"{row['machine']}, learner {'bf16' if 'bf16' in str(autocast) else 'float32'}"


def _seconds(date: str) -> float:
    return dt.datetime.fromisoformat(date.replace("Z", "+00:00")).timestamp()


def _same_run(metric: str, row: dict[str, Any], rows: Sequence[dict[str, Any]]) -> float | None:
    """The value of ``metric`` from the same run and configuration as ``row``: the row of that metric with the
    same settings stamped nearest to it, within :data:`RUN_SPREAD_S`."""
    when = _seconds(row["date"])
    near = [(abs(_seconds(other["date"]) - when), float(other["value"])) for other in rows
            if other.get("metric") == metric and all(other.get(k) == row.get(k) for k in SAME_RUN)]
    near = [pair for pair in near if pair[0] <= RUN_SPREAD_S]
    return min(near)[1] if near else None


def client_over_baseline(row: dict[str, Any], rows: Sequence[dict[str, Any]]) -> tuple[float, str] | None:
    """a/c of the run that measured ``row`` (b/c): the raw client's rate over the baseline's, from the medians
    that run recorded (c = b / (b/c))."""
    raw, end = _same_run("raw_events_per_s", row, rows), _same_run("end_to_end_events_per_s", row, rows)
    if not raw or not end or not row.get("value"):
        return None
    return raw * float(row["value"]) / end, "a/c, the client alone over river"


TARGETS: tuple[Target, ...] = (
    Target("cpu_end_to_end_over_raw", ">= 0.8", lambda v: v >= 0.8, {"client": "kafka-python", "device": "cpu"}),
    Target("end_to_end_over_river", ">= 40, accuracy >= river's", lambda v: v >= 40,
           {"client": "kafka-python", "device": "cpu"}, accuracy_bound=True, ceiling=client_over_baseline),
    Target("h100_end_to_end_over_raw", ">= 0.8", lambda v: v >= 0.8, {"client": "confluent"}),
    Target("h100_end_to_end_events_per_s", ">= 150,000", lambda v: v >= 150_000, {"client": "confluent"}),
    Target("rate_first_last_ratio", "0.9 to 1.1 (500,000 events)", lambda v: abs(v - 1.0) <= 0.1,
           {"client": "kafka-python", "records": 500_000}),
)


@dataclass(frozen=True)
class Standing:
    """Where one target stands over the runs recorded on one machine kind."""

    target: Target
    runs: list[dict[str, Any]]  # oldest first
    met_runs: int
    latest_met: bool | None  # None: never measured
    latest_accuracy: tuple[float, float] | None = None  # (the daemon's, the baseline's) for accuracy_bound
    latest_ceiling: tuple[float, str] | None = None  # Target.ceiling of the latest run

    @property
    def latest(self) -> dict[str, Any] | None:
        return self.runs[-1] if self.runs else None

    def shown(self) -> str:
        """The latest figure as a reader reads it, with both accuracies where the target bounds them."""
        if self.latest is None:
            return "not measured yet"
        text = _fmt(float(self.latest["value"]))
        if self.latest_accuracy is not None:
            text += f" (accuracy {self.latest_accuracy[0]:.3f} vs {self.latest_accuracy[1]:.3f})"
        return text

    def ceiling_shown(self) -> str:
        """The latest run's ceiling as a reader reads it, or nothing where the target has none."""
        if self.latest_ceiling is None:
            return ""
        value, words = self.latest_ceiling
        return f"{_fmt(value)} ({words})"


def _met(target: Target, row: dict[str, Any], rows: Sequence[dict[str, Any]]
         ) -> tuple[bool, tuple[float, float] | None]:
    ok = target.met(float(row["value"]))
    if not target.accuracy_bound:
        return ok, None
    # the daemon's prequential accuracy over the events river learned
    ours, theirs = _same_run("prequential_accuracy_prefix", row, rows), row.get("baseline_accuracy")
    if ours is None or theirs is None:
        return False, None  # an accuracy not recorded cannot be said to be equal or better
    return ok and ours >= float(theirs), (ours, float(theirs))


def standings(rows: Iterable[dict[str, Any]], targets: Sequence[Target] = TARGETS) -> list[Standing]:
    """Each target's runs (all of them, not only each setting's latest) and whether they meet it: one standing
    per machine kind that ran it, the most recently measured first, or one empty standing if none did."""
    rows = list(rows)
    out = []
    for target in targets:
        runs = sorted((r for r in rows if target.counts(r)), key=lambda r: r["date"])
        kinds = sorted({machine_kind(r) for r in runs},
                       key=lambda k: max(r["date"] for r in runs if machine_kind(r) == k), reverse=True)
        if not kinds:
            out.append(Standing(target=target, runs=[], met_runs=0, latest_met=None))
        for kind in kinds:
            mine = [r for r in runs if machine_kind(r) == kind]
            verdicts = [_met(target, r, rows) for r in mine]
            out.append(Standing(target=target, runs=mine, met_runs=sum(ok for ok, _ in verdicts),
                                latest_met=verdicts[-1][0], latest_accuracy=verdicts[-1][1],
                                latest_ceiling=target.ceiling(mine[-1], rows) if target.ceiling else None))
    return out


def _fmt(value: float) -> str:
    return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def render_targets(rows: Iterable[dict[str, Any]], targets: Sequence[Target] = TARGETS) -> list[str]:
    """Markdown lines: one row a target, its latest run, the range of all its runs, how many met it."""
    lines = [
        "## Targets",
        "",
        "The throughput targets on their setting (f32 MNIST, MLP 784-256-256-10, reservoir replay of 500), over",
        "every run recorded, one row per machine kind (on a CPU, with the arithmetic its learner ran in: bf16 autocast",
        "or float32): the latest run says where the code stands on that kind, the range how far apart its runs land,",
        "the ceiling what the latest run's own figures allow.",
        "",
        "| metric | target | latest | met (latest) | ceiling (latest run) | machine | date | range over runs "
        "| runs meeting it |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in standings(rows, targets):
        latest = s.latest
        if latest is None:
            lines.append(f"| {s.target.metric} | {s.target.wants} | not measured yet | | | | | | 0 of 0 |")
            continue
        values = [float(r["value"]) for r in s.runs]
        lines.append(f"| {s.target.metric} | {s.target.wants} | {s.shown()} | {'yes' if s.latest_met else 'no'} | "
                     f"{s.ceiling_shown()} | {machine_kind(latest)} | {latest['date']} | "
                     f"{_fmt(min(values))} to {_fmt(max(values))} | {s.met_runs} of {len(s.runs)} |")
    lines.append("")
    return lines
