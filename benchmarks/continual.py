"""Continual-learning benchmark: Split-MNIST (class-incremental) and Permuted-MNIST (domain-incremental).

One pass over the stream, micro-batch by micro-batch, prequential (each micro-batch is predicted, then learnt),
through the daemon's own learner (``lifelong.daemon.factory.build_learner`` from a ``Settings``). By default the
stream goes through the real embedded broker (``--source broker``: feed_arrays into a Tansu topic, then a
StreamConsumer and ``decode_records`` in front of the learner); ``--source inproc`` skips Kafka for fast tuning.
Task boundaries reach the learner as a schedule (``boundaries.schedule``: the event counts where a task ends),
never as task labels on the events. After each task every task's held-out test set is scored, which fills the
accuracy matrix of :mod:`lifelong.metrics.continual` (average accuracy, forgetting, backward transfer).

Settings follow the published online protocols: Split-MNIST 5 tasks x 2 classes, micro-batches of 10 (Mammoth's
Seq-MNIST and Avalanche's online replay); Permuted-MNIST micro-batches of 128 (Mammoth's P-MNIST), 10 tasks here.

Examples::

    python benchmarks/continual.py --quick                       # smoke test, every method, one seed, in seconds
    python benchmarks/continual.py --scenario split --methods er_cb,derpp --memory 500 --seeds 0,1,2
    python benchmarks/continual.py --scenario split --source inproc --methods derpp --set optim.lr=0.05
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lifelong.config import Settings, load_settings  # noqa: E402
from lifelong.daemon.factory import build_learner, seed_everything  # noqa: E402
from lifelong.datasets import Scenario, build_scenario  # noqa: E402
from lifelong.learner import Learner  # noqa: E402
from lifelong.metrics.continual import average_accuracy, backward_transfer, forgetting  # noqa: E402

BENCHMARK = "continual"
METHODS = ["naive", "ewc", "si", "lwf", "er", "er_cb", "icarl", "derpp", "agem", "gr", "er_ewc", "er_ace", "derpp_ace"]
LABELS = {
    "naive": "Naive fine-tuning", "ewc": "Online EWC", "si": "SI", "lwf": "LwF", "er": "ER (reservoir)",
    "er_cb": "ER (class-balanced)", "icarl": "iCaRL (herding + NME)", "derpp": "DER++", "agem": "A-GEM",
    "gr": "Generative replay (cVAE)", "er_ewc": "ER + online EWC", "er_ace": "ER-ACE (reservoir)",
    "derpp_ace": "DER++ + ACE",
}
MEMORY_FREE = {"naive", "ewc", "si", "lwf", "gr"}  # no stored samples: the memory size does not apply


# ---- configurations --------------------------------------------------------------------------------------------
# The per-scenario base (model, optimiser, micro-batch) and each method's replay/strategies on top of it.
# These are the tuned values (see the report in benchmarks/CONTINUAL.md); ``--set key=value`` overrides any key.
SCENARIOS: dict[str, dict[str, Any]] = {
    "split": {
        "build": {"name": "split", "tasks": 5, "classes_per_task": 2},
        "quick": {"samples_per_task": 1000, "test_samples_per_task": 400},
        "micro_batch": 10,
        "settings": {
            "model": {"name": "mlp", "input_shape": [784], "hidden": [400, 400], "max_classes": 10},
            "optim": {"name": "sgd", "lr": 0.05, "batch_size": 10, "steps_per_batch": 3},
        },
    },
    "permuted": {
        "build": {"name": "permuted", "tasks": 10},
        "quick": {"tasks": 3, "samples_per_task": 2000, "test_samples_per_task": 500},
        "micro_batch": 128,
        "settings": {
            "model": {"name": "mlp", "input_shape": [784], "hidden": [400, 400], "max_classes": 10},
            "optim": {"name": "sgd", "lr": 0.1, "batch_size": 128, "steps_per_batch": 2},
        },
    },
}


def method_overrides(method: str, scenario: str, memory: int) -> dict[str, Any]:
    """Replay memory and strategies of one method (the base comes from ``SCENARIOS``)."""
    replay_batch = 10 if scenario == "split" else 128
    lam = {"split": 10.0, "permuted": 10.0}[scenario]
    table: dict[str, dict[str, Any]] = {
        "naive": {},
        "ewc": {"strategies": [{"name": "ewc", "lam": lam}]},
        "si": {"strategies": [{"name": "si", "c": 1.0, "xi": 0.1}]},
        "lwf": {"strategies": [{"name": "lwf", "alpha": 1.0, "temperature": 2.0}]},
        "er": {"replay": {"kind": "reservoir", "capacity": memory, "batch_size": replay_batch}},
        "er_cb": {"replay": {"kind": "class_balanced", "capacity": memory, "batch_size": replay_batch}},
        "icarl": {"replay": {"kind": "herding", "capacity": memory, "batch_size": replay_batch, "nme": True}},
        "derpp": {"strategies": [{"name": "derpp", "memory": memory, "alpha": 1.0, "beta": 0.5,
                                  "batch_size": replay_batch, "match": "all"}]},
        "agem": {"strategies": [{"name": "agem", "memory": memory, "sample_size": 256}]},
        "gr": {"replay": {"kind": "generative", "batch_size": replay_batch, "generator_hidden": 400,
                          "generator_latent": 32}},
        "er_ewc": {"replay": {"kind": "reservoir", "capacity": memory, "batch_size": replay_batch},
                   "strategies": [{"name": "ewc", "lam": lam}]},
        "er_ace": {"replay": {"kind": "reservoir", "capacity": memory, "batch_size": replay_batch},
                   "strategies": [{"name": "ace"}]},
        "derpp_ace": {"strategies": [{"name": "ace"}, {"name": "derpp", "memory": memory, "alpha": 1.0, "beta": 1.0,
                                                       "batch_size": replay_batch, "match": "all"}]},
    }
    if method not in table:
        raise SystemExit(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    return copy.deepcopy(table[method])


def merge(base: Any, extra: dict[str, Any]) -> Any:
    """Deep merge; a digit key addresses a list item (``strategies.0.lam``)."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(out, list):
            index = int(key)
            out[index] = merge(out[index], value) if isinstance(value, dict) else copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict | list):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_sets(pairs: list[str]) -> dict[str, Any]:
    """``optim.lr=0.05`` ``model.hidden=[256,256]`` -> nested dict (values parsed as JSON when they parse)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def make_settings(scenario: str, method: str, memory: int, seed: int, extra: dict[str, Any],
                  schedule: list[int]) -> Settings:
    cfg = merge(SCENARIOS[scenario]["settings"], method_overrides(method, scenario, memory))
    cfg = merge(cfg, {"daemon": {"seed": seed, "device": "cpu"},
                      "boundaries": {"schedule": schedule, "from_drift": False}})
    cfg = merge(cfg, extra)
    return load_settings(None, **cfg)


# ---- one run -----------------------------------------------------------------------------------------------------
@dataclass
class RunResult:
    method: str
    scenario: str
    memory: int
    seed: int
    source: str
    matrix: list[list[float]]
    events: int
    train_seconds: float
    wall_seconds: float
    prequential_accuracy: float
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def avg_acc(self) -> float:
        return 100 * average_accuracy(self.matrix)

    @property
    def forgetting(self) -> float:
        return 100 * forgetting(self.matrix)

    @property
    def bwt(self) -> float:
        return 100 * backward_transfer(self.matrix)

    @property
    def events_per_s(self) -> float:
        return self.events / self.train_seconds if self.train_seconds > 0 else float("nan")


def evaluate(learner: Learner, test_sets: list[tuple[np.ndarray, np.ndarray]], chunk: int = 2000) -> list[float]:
    """Accuracy on each task's held-out test set with the model (and any NME head) as it stands."""
    scores = []
    for x, y in test_sets:
        correct = 0
        for i in range(0, len(y), chunk):
            correct += int((learner.predict(x[i : i + chunk]) == y[i : i + chunk]).sum())
        scores.append(correct / len(y))
    return scores


Batches = Iterator[tuple[np.ndarray, np.ndarray]]


def drive(learner: Learner, batches: Batches, scenario: Scenario, label: str) -> tuple[list[list[float]], float, int,
                                                                                    float]:
    """Feed micro-batches (which never straddle a task end) to the learner; at each task end score every task
    and signal the boundary. Returns (accuracy matrix, seconds outside evaluation, events, prequential acc)."""
    ends = [b.position for b in scenario.boundaries] + [scenario.n]
    matrix: list[list[float]] = []
    seen, correct, busy = 0, 0, 0.0
    start = time.perf_counter()
    for x, y in batches:
        result = learner.process(x, y)
        correct += int(result.correct.sum())
        seen += len(y)
        if seen > ends[len(matrix)]:
            raise RuntimeError(f"a micro-batch crossed the end of task {len(matrix)} at event {ends[len(matrix)]}")
        if seen == ends[len(matrix)]:
            busy += time.perf_counter() - start
            matrix.append(evaluate(learner, scenario.test_sets))
            print(f"    {label} task {len(matrix)}: " + " ".join(f"{a:.3f}" for a in matrix[-1]), flush=True)
            if len(matrix) < len(ends):
                learner.boundary()  # what the daemon does when events_seen reaches boundaries.schedule
            start = time.perf_counter()
    busy += time.perf_counter() - start
    if len(matrix) != len(ends):
        raise RuntimeError(f"stream ended after {seen} events, before the last task end {ends[-1]}")
    return matrix, busy, seen, correct / max(seen, 1)


def inproc_batches(scenario: Scenario, micro_batch: int) -> Batches:
    ends = [b.position for b in scenario.boundaries] + [scenario.n]
    start = 0
    for end in ends:
        for i in range(start, end, micro_batch):
            j = min(i + micro_batch, end)
            yield scenario.x[i:j], scenario.y[i:j]
        start = end


def run_one(scenario_name: str, scenario: Scenario, method: str, memory: int, seed: int, extra: dict[str, Any],
            source: str, stream: Callable[[int], Batches] | None = None) -> RunResult:
    schedule = [b.position for b in scenario.boundaries]
    extra = dict(extra)
    micro_batch = int(extra.pop("micro_batch", SCENARIOS[scenario_name]["micro_batch"]))
    settings = make_settings(scenario_name, method, memory, seed, extra, schedule)
    seed_everything(seed)
    learner = build_learner(settings, torch.device("cpu"))
    batches = stream(micro_batch) if stream is not None else inproc_batches(scenario, micro_batch)
    wall = time.perf_counter()
    label = f"{scenario_name}/{method}/m{memory}/s{seed}"
    matrix, busy, events, preq = drive(learner, batches, scenario, label)
    return RunResult(method, scenario_name, memory, seed, source, matrix, events, busy,
                     time.perf_counter() - wall, preq,
                     {"skipped_steps": learner.skipped_steps, "settings": settings.model_dump(
                         mode="json", include={"model", "optim", "replay", "strategies"})})


# ---- the broker path ---------------------------------------------------------------------------------------------
class BrokerStream:
    """One embedded Tansu broker; each scenario is fed once into its own single-partition topic, and every
    run consumes it from the beginning with its own consumer (assign mode), decoding with ``decode_records``."""

    def __init__(self) -> None:
        from lifelong.stream.broker import EmbeddedBroker

        self.broker = EmbeddedBroker().start()
        self.topics: dict[str, tuple[str, int, float]] = {}

    def feed(self, key: str, scenario: Scenario) -> tuple[str, float]:
        from lifelong.stream.feed import feed_arrays

        if key not in self.topics:
            topic = f"continual-{key}-{uuid.uuid4().hex[:6]}"
            report = feed_arrays(scenario.x, scenario.y, topic=topic, bootstrap_servers=self.broker.bootstrap,
                                 codec="f32", keys="none", partitions=1, progress=False)
            self.topics[key] = (topic, report.records, report.records_per_s)
            print(f"  fed {report.records} records into {topic} at {report.records_per_s:,.0f} records/s",
                  flush=True)
        topic, _, rate = self.topics[key]
        return topic, rate

    def batches(self, topic: str, scenario: Scenario, micro_batch: int) -> Batches:
        """Micro-batches of the topic in offset order, cut at task ends (a schedule, as the daemon's)."""
        from lifelong.config import KafkaConfig
        from lifelong.stream.codecs import decode_records
        from lifelong.stream.consumer import StreamConsumer

        cfg = KafkaConfig(bootstrap_servers=[self.broker.bootstrap], topics=[topic], assign=True,
                          group_id=f"bench-{uuid.uuid4().hex[:8]}", auto_offset_reset="earliest",
                          max_poll_records=8192, poll_timeout_ms=2000)
        ends = [b.position for b in scenario.boundaries] + [scenario.n]
        shape = scenario.feature_shape
        consumer = StreamConsumer(cfg)
        pending_x: list[np.ndarray] = []
        pending_y: list[np.ndarray] = []
        buffered, taken, idle = 0, 0, 0
        try:
            while taken < scenario.n:
                records = consumer.poll()
                if not records:
                    idle += 1
                    if idle > 30:
                        raise RuntimeError(f"no records for a minute after {taken} of {scenario.n}")
                    continue
                idle = 0
                decoded = decode_records(records, "f32", feature_shape=shape, max_classes=10)
                if decoded.bad:
                    raise RuntimeError(f"{len(decoded.bad)} records failed to decode: {decoded.bad[0].reason}")
                pending_x.append(decoded.x)
                pending_y.append(decoded.y)
                buffered += len(decoded.y)
                while buffered:
                    end = next(e for e in ends if e > taken)
                    size = min(micro_batch, end - taken)
                    if buffered < size:
                        break
                    x_all = np.concatenate(pending_x) if len(pending_x) > 1 else pending_x[0]
                    y_all = np.concatenate(pending_y) if len(pending_y) > 1 else pending_y[0]
                    yield x_all[:size], y_all[:size]
                    pending_x, pending_y = [x_all[size:]], [y_all[size:]]
                    buffered -= size
                    taken += size
        finally:
            consumer.close()

    def close(self) -> None:
        self.broker.kill()


# ---- the campaign ------------------------------------------------------------------------------------------------
def load_scenario(name: str, seed: int, quick: bool, tasks: int | None = None) -> Scenario:
    spec = SCENARIOS[name]
    params = dict(spec["build"])
    kind = params.pop("name")
    if tasks is not None and name == "permuted":
        params["tasks"] = tasks
    if quick:
        params.update(spec["quick"])
    return build_scenario(kind, dataset="mnist", seed=seed, **params)


def summarise(results: list[RunResult]) -> dict[str, float]:
    def mean_std(values: list[float]) -> tuple[float, float]:
        return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)

    acc, acc_sd = mean_std([r.avg_acc for r in results])
    fgt, fgt_sd = mean_std([r.forgetting for r in results])
    eps = statistics.median([r.events_per_s for r in results])
    return {"avg_acc": acc, "avg_acc_std": acc_sd, "forgetting": fgt, "forgetting_std": fgt_sd,
            "bwt": statistics.fmean([r.bwt for r in results]), "events_per_s": eps,
            "wall_s": statistics.fmean([r.wall_seconds for r in results]), "runs": len(results)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=["split", "permuted", "both"], default="both")
    parser.add_argument("--methods", default="all", help=f"comma list of {','.join(METHODS)} (default: all)")
    parser.add_argument("--memory", default="200,500", help="memory sizes in samples, comma list")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--source", choices=["broker", "inproc"], default="broker")
    parser.add_argument("--quick", action="store_true", help="subsampled streams and one seed: a smoke test")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting for every run, e.g. optim.lr=0.05 or micro_batch=32")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the learner is small)")
    parser.add_argument("--no-record", action="store_true", help="print only; do not append to results.jsonl")
    parser.add_argument("--json", type=Path, help="also write every run (accuracy matrices) to this file")
    parser.add_argument("--permuted-tasks", type=int, default=None,
                        help="Permuted-MNIST task count (default 10; Mammoth/DER use 20)")
    parser.add_argument("--headline", action="store_true",
                        help="also record the issue's headline metric: the best memory-500 method of this run")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    scenarios = ["split", "permuted"] if args.scenario == "both" else [args.scenario]
    methods = METHODS if args.methods == "all" else [m.strip() for m in args.methods.split(",") if m.strip()]
    memories = [int(m) for m in args.memory.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.quick and args.seeds == "0,1,2":
        seeds = [0]
    extra = parse_sets(args.set)
    configs = [(m, mem) for m in methods for mem in ([0] if m in MEMORY_FREE else memories)]
    runs: dict[tuple[str, str, int], list[RunResult]] = {}
    all_runs: list[RunResult] = []
    campaign = time.perf_counter()
    for scenario_name in scenarios:
        for seed in seeds:  # one scenario draw and one fresh broker per seed (Tansu's memory only grows)
            scenario = load_scenario(scenario_name, seed, args.quick, args.permuted_tasks)
            broker = BrokerStream() if args.source == "broker" else None
            try:
                stream = None
                if broker is not None:
                    topic, _ = broker.feed(f"{scenario_name}-{seed}", scenario)
                    stream = functools.partial(broker.batches, topic, scenario)
                for method, memory in configs:
                    result = run_one(scenario_name, scenario, method, memory, seed, extra, args.source, stream)
                    runs.setdefault((scenario_name, method, memory), []).append(result)
                    all_runs.append(result)
                    print(f"  .. {scenario_name} {method} m{memory} seed {seed}: avg acc {result.avg_acc:.2f}, "
                          f"{result.events_per_s:,.0f} events/s, {result.wall_seconds:.0f} s", flush=True)
            finally:
                if broker is not None:
                    broker.close()
    rows: list[dict[str, Any]] = []
    for (scenario_name, method, memory), group in runs.items():
        summary = summarise(group)
        rows.append({"scenario": scenario_name, "method": method, "memory": memory, **summary})
        print(f"  => {scenario_name:8s} {method:9s} m{memory:<4d} avg acc {summary['avg_acc']:6.2f} "
              f"+/- {summary['avg_acc_std']:.2f}  forgetting {summary['forgetting']:6.2f}  "
              f"{summary['events_per_s']:,.0f} events/s  ({summary['wall_s']:.0f} s/run)", flush=True)
        if not args.no_record:
            record_row(rows[-1], seeds, args)
    print(f"campaign took {time.perf_counter() - campaign:.0f} s")
    print_table(rows)
    if not args.no_record:
        if args.headline:
            record_best(rows, seeds, args)
        print(f"wrote {render_markdown()}")
    if args.json:
        args.json.write_text(json.dumps([run_json(r) for r in all_runs], indent=1))
    return 0


def run_json(r: RunResult) -> dict[str, Any]:
    return {"method": r.method, "scenario": r.scenario, "memory": r.memory, "seed": r.seed, "source": r.source,
            "matrix": r.matrix, "avg_acc": r.avg_acc, "forgetting": r.forgetting, "bwt": r.bwt,
            "events_per_s": r.events_per_s, "wall_s": r.wall_seconds, "prequential_accuracy": r.prequential_accuracy,
            **r.extras}


def common(args: argparse.Namespace, seeds: list[int]) -> dict[str, Any]:
    out = {"source": args.source, "seeds": len(seeds), "quick": bool(args.quick),
           "overrides": " ".join(args.set) or "-"}
    if args.permuted_tasks is not None:
        out["tasks"] = args.permuted_tasks
    return out


def record_row(row: dict[str, Any], seeds: list[int], args: argparse.Namespace) -> None:
    from lifelong.bench.results import record

    scenario, method, memory = row["scenario"], row["method"], row["memory"]
    base = {"scenario": scenario, "method": method, "memory": memory, **common(args, seeds)}
    name = f"{scenario}_{method}" + (f"_m{memory}" if memory else "")
    record(BENCHMARK, f"{name}_avg_acc", round(row["avg_acc"], 2), "%", std=round(row["avg_acc_std"], 2), **base)
    record(BENCHMARK, f"{name}_forgetting", round(row["forgetting"], 2), "%",
           std=round(row["forgetting_std"], 2), **base)
    record(BENCHMARK, f"{name}_events_per_s", round(row["events_per_s"]), "events/s", **base)


def record_best(rows: list[dict[str, Any]], seeds: list[int], args: argparse.Namespace) -> None:
    """The issue's two headline figures: the best configuration with memory 500 on each scenario."""
    from lifelong.bench.results import record

    if args.quick:
        return
    headline = {"split": "split_mnist_classil_m500_best_avg_acc", "permuted": "permuted_mnist_m500_best_avg_acc"}
    for scenario, metric in headline.items():
        candidates = [r for r in rows if r["scenario"] == scenario and r["memory"] == 500]
        if candidates:
            best = max(candidates, key=lambda r: r["avg_acc"])
            record(BENCHMARK, metric, round(best["avg_acc"], 2), "%", std=round(best["avg_acc_std"], 2),
                   scenario=scenario, method=best["method"], memory=500, **common(args, seeds))


# ---- published figures (same scenario, one pass) ---------------------------------------------------------
AVALANCHE = ("Avalanche continual-learning-baselines README (ContinualAI/continual-learning-baselines, "
             "commit 9d761b2), online table")
PUBLISHED: dict[tuple[str, str], list[str]] = {
    ("split", "er_cb"): ["92 (Online Replay, class-balanced buffer, memory 1000, MLP 512, lr 0.1, batch 10) [A]"],
    ("split", "derpp_ace"): ["target 92: Avalanche's Online Replay with memory 1000 [A]"],
    ("split", "gr"): ["75 (Generative Replay, batch (multi-epoch) table) [A]"],
    ("split", "lwf"): ["23 (LwF, batch (multi-epoch) table) [A]"],
    ("permuted", "agem"): ["81 (A-GEM, online) [A]"],
    ("permuted", "derpp"): ["88.21 (DER++, buffer 500, 20 tasks, 1 epoch, batch 128) [D]"],
    ("permuted", "ewc"): ["83 (EWC, batch (multi-epoch) table) [A]"],
    ("permuted", "si"): ["83 (SI, batch (multi-epoch) table) [A]"],
}
SOURCES = [
    f"[A] {AVALANCHE}; Split-MNIST online replay settings from experiments/split_mnist/online_replay.py there.",
    "[D] Buzzega et al. 2020, Dark Experience for General Continual Learning (NeurIPS), Table 2, P-MNIST "
    "Domain-IL, buffer 500, as quoted in issue 7. Protocol as in Mammoth (aimagelab/mammoth): "
    "datasets/perm_mnist.py 20 tasks, batch 128, 1 epoch; datasets/seq_mnist.py batch 10, 1 epoch; "
    "utils/best_args.py DER++ m500 on P-MNIST lr 0.2, alpha 1.0, beta 0.5, minibatch 128.",
]


def _kind(metric: str) -> str | None:
    for suffix, kind in (("_avg_acc", "acc"), ("_forgetting", "forgetting"), ("_events_per_s", "events_per_s")):
        if metric.endswith(suffix):
            return kind
    return None


def render_markdown(path: Path | None = None) -> Path:
    """benchmarks/CONTINUAL.md from the latest full-run figures in results.jsonl, published figures beside."""
    from lifelong.bench.results import RESULTS_DIR, load

    path = path or RESULTS_DIR / "CONTINUAL.md"
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for e in load():
        kind = _kind(e.get("metric", ""))
        if e.get("benchmark") == BENCHMARK and not e.get("quick") and "method" in e and kind:
            scenario = e["scenario"] + (f"-{e['tasks']}" if e.get("tasks") else "")
            key = (scenario, e["method"], e.get("memory", 0), e["source"], e.get("seeds"), e.get("overrides", "-"))
            latest[(*key, kind)] = e
    lines = ["# Continual-learning benchmark", "",
             "Generated by `benchmarks/continual.py` from `benchmarks/results.jsonl` (latest full run of each row).",
             "One pass over the stream, prequential, boundaries from a schedule (never task labels on events).",
             "Split-MNIST: class-incremental, 5 tasks x 2 classes, micro-batches of 10. Permuted-MNIST: domain-"
             "incremental, 10 tasks, micro-batches of 128, one epoch per task. Mean ± std over seeds; events/s is"
             " the median over seeds of stream events per second of learning (evaluation excluded), consumed from the"
             " broker and decoded for `source=broker`, measured with one torch thread on a 2-core CPU shared with"
             " other jobs (compare rows of one run only).", ""]
    titles = {"split": "Split-MNIST (class-IL)", "permuted": "Permuted-MNIST (domain-IL, 10 tasks)",
              "permuted-20": "Permuted-MNIST (domain-IL, 20 tasks as in Mammoth/DER)"}
    for scenario in sorted({k[0] for k in latest}, key=lambda name: list(titles).index(name)
                           if name in titles else 99):
        keys = sorted({k[:6] for k in latest if k[0] == scenario},
                      key=lambda k: (METHODS.index(k[1]) if k[1] in METHODS else 99, k[2], k[3], -(k[4] or 0), k[5]))
        if not keys:
            continue
        title = titles.get(scenario, scenario)
        lines += [f"## {title}", "",
                  "| method | memory | source | seeds | final avg acc (%) | forgetting (%) | events/s | published |",
                  "|---|---|---|---|---|---|---|---|"]
        for key in keys:
            acc, fgt, eps = (latest.get((*key, kind)) for kind in ("acc", "forgetting", "events_per_s"))
            if acc is None:
                continue
            forget = f"{fgt['value']:.2f} ± {fgt.get('std', 0):.2f}" if fgt else ""
            rate = f"{eps['value']:,.0f}" if eps else ""
            pub = "; ".join(PUBLISHED.get((scenario.split("-")[0], key[1]), []))
            label = LABELS.get(key[1], key[1]) + (f" (`{key[5]}`)" if key[5] != "-" else "")
            lines.append(f"| {label} | {key[2] or '-'} | {key[3]} | {key[4]} | "
                         f"{acc['value']:.2f} ± {acc.get('std', 0):.2f} | {forget} | {rate} | {pub} |")
        lines.append("")
    lines += ["## Sources of the published figures", ""] + [f"- {s}" for s in SOURCES] + [""]
    path.write_text("\n".join(lines))
    return path


def print_table(rows: list[dict[str, Any]]) -> None:
    print("\n| scenario | method | memory | final avg acc (%) | forgetting (%) | BWT (%) | events/s | s/run |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        mem = str(r["memory"]) if r["memory"] else "-"
        print(f"| {r['scenario']} | {LABELS.get(r['method'], r['method'])} | {mem} | "
              f"{r['avg_acc']:.2f} ± {r['avg_acc_std']:.2f} | {r['forgetting']:.2f} ± {r['forgetting_std']:.2f} | "
              f"{r['bwt']:.2f} | {r['events_per_s']:,.0f} | {r['wall_s']:.0f} |")


if __name__ == "__main__":
    raise SystemExit(main())
