"""Throughput: how close the daemon's end-to-end rate comes to its Kafka client's own, and how it compares
with the online learners a user would pick instead (river, deep-river), on the same records in one run.

``run_throughput`` feeds N f32 MNIST records into an embedded broker, then for each client, model and replay
setting measures, ``repeats`` times and interleaved so each ratio compares neighbours in time:

(a) ``raw``: the same client consuming and decoding the topic (nothing else);
(b) ``end_to_end``: the real :class:`lifelong.daemon.service.Daemon` in-process (consume, decode, predict,
    score, train with replay, drift, metrics, checkpoints), its rate read from its own batches;
(c) river's SoftmaxRegression and one-vs-rest LogisticRegression, prequential, on the same records (up to
    ``river_records``; sparse dicts: zero pixels left out, river's fastest input); deep-river from a venv of its
    own on a prefix when asked.

Rates leave out the first batch (connection, first fetch, model build): (events - first batch) / (last batch
time - first batch time), the same rule for (a) and (b). Figures go to ``benchmarks/results.jsonl`` through
:func:`lifelong.bench.results.record`; medians over repeats are what is recorded.
"""

from __future__ import annotations

import contextlib
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
import types
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from lifelong.bench import process_cpu
from lifelong.bench.results import append, figure

log = logging.getLogger(__name__)

BENCH = "throughput"
T = TypeVar("T")
DEEP_RIVER = ("deep-river==0.3.4", "pytest")  # deep_river.utils imports pytest without declaring it


@dataclass
class Options:
    """What one ``lifelong bench`` run measures."""

    records: int = 100_000
    features: int = 784
    partitions: int = 1
    clients: Sequence[str] = ("kafka-python", "confluent")
    models: Sequence[str] = ("mlp", "cnn")
    replays: Sequence[str] = ("reservoir", "none")
    repeats: int = 3
    cnn_records: int = 20_000
    river_records: int = 100_000  # river learns the same events as the daemon: accuracies compare like for like
    deep_river_records: int = 10_000  # ~300 events/s: a prefix
    # throughput settings: one optimizer step per micro-batch of 256 (1:1 with replayed rows); Adam's lr scaled
    # up for the larger batch (0.938 prequential accuracy over 100k events)
    batch_size: int = 256
    hidden: Sequence[int] = (256, 256)
    replay_batch_size: int = 256
    optimizer: str = "adam"  # SGD reached 0.69-0.83 prequential accuracy over 10k MNIST events, Adam 0.87
    lr: float = 0.005
    momentum: float = 0.0
    fused: bool | None = None  # optim.fused; None: the daemon's auto (fused where available)
    micro_batch: int | None = 256
    prefetch: int = 2
    fetch_workers: int = 1
    recv_chunk_bytes: int = 256 * 1024  # kafka.recv_chunk_bytes (kafka-python's socket reads; 0: its own 4 KiB)
    fetcher: str = "process"
    shared_memory: bool = True
    gc_freeze: bool = True
    reuse_fetch_memory: bool = True
    shared_forward: bool | None = None  # optim.shared_forward; None: the daemon's auto
    torch_threads: int | None = None
    autocast: str = "auto"
    compile: bool = False
    compile_mode: str = "default"  # daemon.compile_mode (reduce-overhead: CUDA graphs on a GPU)
    device: str = "cpu"
    with_deep_river: bool = False
    decay_run: bool = False
    decay_records: int = 500_000
    decay_features: int = 784
    decay_repeats: int = 3
    ablation: bool = False
    ablation_records: int = 30_000
    cache_dir: Path | None = None
    record_results: bool = True
    progress: bool = True


@dataclass
class Rate:
    """Events over time for one measurement, with optional prequential accuracy."""

    events: int
    seconds: float
    accuracy: float | None = None
    prefix_accuracy: float | None = None
    prefix_events: int | None = None
    marks: list[tuple[float, float, int]] = field(default_factory=list, repr=False)  # (wall, cpu, events)
    #: CPU microseconds per event of the processes this one started, by role (fetch, broker, other):
    #: lifelong.bench.process_cpu, over the measured span; empty where /proc is not there
    helper_us_per_event: dict[str, float] = field(default_factory=dict)

    @property
    def per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us_per_event(self) -> float:
        """This process's CPU microseconds per event over the measured span (its threads; not the fetch
        processes or the broker)."""
        if len(self.marks) < 2 or self.marks[-1][2] == self.marks[0][2]:
            return float("nan")
        (_, c0, n0), (_, c1, n1) = self.marks[0], self.marks[-1]
        return (c1 - c0) / (n1 - n0) * 1e6

    def window_rate(self, lo: float, hi: float, clock: int = 0) -> float:
        """Events per second between the fractions ``lo`` and ``hi`` of the events (the decay check's first
        and last 10%); ``clock=1``: per second of this process's CPU time, which other tenants of a shared
        machine do not slow down, so a drop there is the daemon's own."""
        total = self.marks[-1][2]
        times = np.array([m[clock] for m in self.marks])
        counts = np.array([m[2] for m in self.marks])
        t0 = float(np.interp(lo * total, counts, times))
        t1 = float(np.interp(hi * total, counts, times))
        return (hi - lo) * total / (t1 - t0) if t1 > t0 else 0.0

    def deciles(self, clock: int = 0) -> list[float]:
        return [self.window_rate(i / 10, (i + 1) / 10, clock) for i in range(10)]


class _Marks:
    """(wall time, process CPU time, cumulative events) after each batch; the rate leaves out the first batch.
    The CPU of the processes started from here (fetch processes, broker) is sampled at the first batch and then
    at most every ``HELPER_SAMPLE_S`` (reading /proc per batch would cost the loop it measures)."""

    HELPER_SAMPLE_S = 0.1

    def __init__(self) -> None:
        self.marks: list[tuple[float, float, int]] = []
        self.total = 0
        self._helpers: list[tuple[int, dict[int, tuple[str, float]]]] = []  # (events, sample): first, latest
        self._helper_at = 0.0

    def add(self, n: int) -> None:
        self.total += n
        now = time.perf_counter()
        self.marks.append((now, time.process_time(), self.total))
        if not self._helpers or now - self._helper_at >= self.HELPER_SAMPLE_S:
            taken = (self.total, process_cpu.sample())
            self._helpers = [self._helpers[0], taken] if self._helpers else [taken]
            self._helper_at = now

    def rate(self) -> Rate:
        if len(self.marks) < 2:
            return Rate(self.total, 0.0, marks=self.marks)
        (t0, _, n0), (t1, _, n1) = self.marks[0], self.marks[-1]
        return Rate(n1 - n0, t1 - t0, marks=self.marks, helper_us_per_event=self._helper_cost())

    def _helper_cost(self) -> dict[str, float]:
        if len(self._helpers) < 2:
            return {}
        (e0, first), (e1, latest) = self._helpers
        if e1 == e0:
            return {}
        return {role: seconds / (e1 - e0) * 1e6 for role, seconds in process_cpu.cpu_by_role(first, latest).items()}


# ---- data ------------------------------------------------------------------------------------------------------
def mnist_arrays(n: int, features: int = 784) -> tuple[np.ndarray, np.ndarray]:
    """``n`` MNIST rows (train then test, repeated past 70,000) as float32 in [0, 1]; ``features`` 784, or 196 /
    49 (2x2 / 4x4 average-pooled) for long runs that must keep the broker's memory small."""
    from lifelong.datasets import load_dataset

    data = load_dataset("mnist")
    x = np.concatenate([data.x_train, data.x_test]).reshape(-1, 28, 28).astype(np.float32)
    y = np.concatenate([data.y_train, data.y_test]).astype(np.int64)
    if x.max() > 1.0:
        x /= 255.0
    if features != 784:
        side = {196: 2, 49: 4}.get(features)
        if side is None:
            raise ValueError("features must be 784, 196 or 49")
        x = x.reshape(-1, 28 // side, side, 28 // side, side).mean(axis=(2, 4))
    reps = -(-n // len(y))
    return np.tile(x.reshape(len(x), -1), (reps, 1))[:n], np.tile(y, reps)[:n]


# ---- (a) the client alone ----------------------------------------------------------------------------------------
def raw_rate(kafka: Any, n: int, features: int, max_classes: int = 10, prefetch: int = 0,
             workers: int = 1, on_progress: Callable[[int], None] | None = None, gc_freeze: bool = True) -> Rate:
    """Consume and decode ``n`` records with ``kafka.client`` (fresh group, from the start of the topic).

    ``gc_freeze``: the loop runs with the heap frozen, as the daemon's does (lifelong.heap); in this process,
    which has imported torch, the plain loop would otherwise pay for collections that the daemon does not,
    and the ratio of the two would flatter the daemon."""
    from lifelong.heap import frozen_heap
    from lifelong.stream.codecs import decode_records, get_codec
    from lifelong.stream.prefetch import Prefetched, open_stream

    codec = get_codec("f32")

    def decode(records: list) -> Any:
        return decode_records(records, codec, num_features=features, max_classes=max_classes)

    marks = _Marks()
    consumer = open_stream(kafka, prefetch=prefetch, workers=workers, decode=decode)
    try:
        with frozen_heap(gc_freeze):
            deadline = time.monotonic() + 300
            while marks.total < n and time.monotonic() < deadline:
                fetched = consumer.poll(1000)
                if not fetched:
                    continue
                batch = fetched.batch if isinstance(fetched, Prefetched) else decode(fetched)
                marks.add(batch.total)
                if on_progress:
                    on_progress(marks.total)
    finally:
        consumer.close()
    return marks.rate()


# ---- (b) the daemon end to end -----------------------------------------------------------------------------------
def daemon_settings(bootstrap: str, topic: str, *, client: str, model: str, replay: str, features: int,
                    n: int, opts: Options, checkpoint_dir: Path) -> Any:
    from lifelong.config import Settings

    shape = [1, 28, 28] if model == "cnn" else [features]
    return Settings(
        kafka={"bootstrap_servers": [bootstrap], "topics": [topic], "group_id": f"bench-{uuid.uuid4().hex[:8]}",
               "assign": True, "client": client, "poll_timeout_ms": 1000, "recv_chunk_bytes": opts.recv_chunk_bytes},
        codec={"name": "f32", "num_features": features},
        model={"name": model, "input_shape": shape, "hidden": list(opts.hidden), "max_classes": 10},
        optim={"name": opts.optimizer, "lr": opts.lr, "momentum": opts.momentum, "batch_size": opts.batch_size,
               "fused": opts.fused, "shared_forward": opts.shared_forward},
        replay={"kind": replay, "capacity": 500, "batch_size": opts.replay_batch_size},
        drift={"detectors": [{"detector": "ADWIN", "signal": "error"}], "reactions": [{"name": "alert"}]},
        metrics={"port": 0},
        checkpoint={"dir": str(checkpoint_dir)},
        daemon={"device": opts.device, "max_events": n, "micro_batch": opts.micro_batch, "idle_exit_s": 60,
                "prefetch": opts.prefetch,
                "fetch_workers": opts.fetch_workers, "fetcher": opts.fetcher, "shared_memory": opts.shared_memory,
                "gc_freeze": opts.gc_freeze, "reuse_fetch_memory": opts.reuse_fetch_memory,
                "torch_threads": opts.torch_threads,
                "autocast": opts.autocast, "compile": opts.compile, "compile_mode": opts.compile_mode,
                "summary_interval_s": 3600,
                "log_level": "WARNING"},
    )


def learner_alone(features: int, events: int, replay_batch_size: int = Options.replay_batch_size,
                  hidden: Sequence[int] = Options.hidden, **daemon: Any) -> Any:
    """The benchmark's MLP learner (reservoir replay 500, the :class:`Options` defaults) built and tuned as the
    daemon builds it (optim.fused: auto), for scripts that time the learner without a broker.
    ``replay_batch_size``: replayed rows per step (0: no replay memory). ``hidden``: the MLP's hidden widths.
    ``daemon``: overrides of the daemon section (e.g. ``flush_denormal=False``, ``device="cuda"``)."""
    from lifelong.daemon.factory import apply_fused, build_learner

    # replay.batch_size must be positive, even unused
    opts = Options(replay_batch_size=max(replay_batch_size, 1), hidden=tuple(hidden))
    settings = daemon_settings("unused:9092", "unused", client="kafka-python", model="mlp",
                               replay="reservoir" if replay_batch_size else "none",
                               features=features, n=events, opts=opts, checkpoint_dir=Path("unused"))
    for key, value in daemon.items():
        setattr(settings.daemon, key, value)
    learner = build_learner(settings)
    apply_fused(learner, settings.optim.fused)
    return learner


LEARNER_WARMUP_BATCHES = 10  # first calls pay for allocation and kernel selection: not the steady cost


def too_few_learner_events(events: int, micro_batch: int) -> str | None:
    """Why ``events`` are too few for :func:`learner_cost` to time (None: enough), for a script's usage error."""
    if events > 2 * LEARNER_WARMUP_BATCHES * micro_batch:
        return None
    return (f"--events must exceed {2 * LEARNER_WARMUP_BATCHES * micro_batch}: {LEARNER_WARMUP_BATCHES} "
            f"micro-batches of {micro_batch} warm up untimed, and at least as many more are timed")


def learner_cost(learner: Any, x: np.ndarray, y: np.ndarray, micro_batch: int,
                 warmup_batches: int = LEARNER_WARMUP_BATCHES) -> tuple[float, float]:
    """Feed ``x, y`` to ``learner.process`` in micro-batches; returns (this thread's CPU microseconds per event
    after ``warmup_batches`` untimed micro-batches, prequential accuracy over every event)."""
    correct, start = 0, 0.0
    for batch, i in enumerate(range(0, len(y), micro_batch)):
        if batch == warmup_batches:
            start = time.thread_time()
        correct += int(learner.process(x[i : i + micro_batch], y[i : i + micro_batch]).correct.sum())
    timed = len(y) - warmup_batches * micro_batch
    return (time.thread_time() - start) / timed * 1e6, correct / len(y)


def daemon_rate(settings: Any, prefix: int = 0, on_progress: Callable[[int], None] | None = None,
                daemon_type: type | None = None) -> Rate:
    """Run the real Daemon in-process until ``daemon.max_events``; rate from its batches, prequential
    accuracy over the run and over the first ``prefix`` events (to the batch that crosses it).
    ``daemon_type``: a subclass of Daemon to run instead (benchmarks/loop_ceiling.py)."""
    from lifelong.daemon.service import Daemon

    marks = _Marks()
    classes = [str(c) for c in range(settings.model.max_classes)]
    prefix_seen: list[tuple[int, float]] = []

    def counts(daemon: Daemon) -> tuple[float, float]:
        m = daemon.metrics
        total = sum(m.value("lifelong_predictions_total", {"class": c}) for c in classes)
        right = sum(m.value("lifelong_predictions_correct_total", {"class": c}) for c in classes)
        return total, right

    def on_batch(daemon: Daemon, batch: Any) -> None:
        marks.add(len(batch))
        if prefix and not prefix_seen and marks.total >= prefix:
            total, right = counts(daemon)
            prefix_seen.append((int(total), right / max(total, 1)))
        if on_progress:
            on_progress(marks.total)

    daemon = (daemon_type or Daemon)(settings, install_signal_handlers=False, on_batch=on_batch)
    daemon.run()
    total, right = counts(daemon)
    rate = marks.rate()
    rate.accuracy = right / max(total, 1)
    if prefix_seen:
        rate.prefix_events, rate.prefix_accuracy = prefix_seen[0]
    return rate


# ---- the daemon's loop alone -------------------------------------------------------------------------------------
def _answer_at_once(learner: Any, x: Any, y: Any) -> Any:
    """Learner.process at no cost: every prediction right, nothing trained (the loop's work stays)."""
    from lifelong.learner import StepResult

    labels = np.asarray(y)
    learner.events_seen += len(labels)
    return StepResult(predictions=labels, correct=np.ones(len(labels), dtype=bool),
                      losses=np.zeros(len(labels), dtype=np.float32), train_loss=0.0, train_seconds=0.0,
                      new_classes=[])


def loop_only_daemon() -> type:
    """The Daemon class with its learner's ``process`` replaced by :func:`_answer_at_once`, for the benchmarks
    that measure the loop alone; built on call, so that importing this module does not import torch."""
    from lifelong.daemon.service import Daemon

    class LoopOnlyDaemon(Daemon):
        def _setup(self) -> None:
            super()._setup()
            self.learner.process = types.MethodType(_answer_at_once, self.learner)

    return LoopOnlyDaemon


# ---- (c) river and deep-river ------------------------------------------------------------------------------------
def river_models() -> dict[str, Callable[[], Any]]:
    from river import linear_model, multiclass

    return {
        "river.SoftmaxRegression": linear_model.SoftmaxRegression,
        "river.OneVsRest(LogisticRegression)": lambda: multiclass.OneVsRestClassifier(
            linear_model.LogisticRegression()),
    }


def river_rate(make: Callable[[], Any], x: np.ndarray, y: np.ndarray,
               on_progress: Callable[[int], None] | None = None) -> Rate:
    """Prequential predict_one then learn_one over sparse dicts (zero features left out)."""
    model = make()
    rows = [{int(i): float(v) for i, v in zip(np.flatnonzero(r), r[r != 0], strict=True)} for r in x]
    right = 0
    start = time.perf_counter()
    for i, (features, label) in enumerate(zip(rows, y.tolist(), strict=True)):
        right += model.predict_one(features) == label
        model.learn_one(features, label)
        if on_progress and i % 100 == 99:
            on_progress(i + 1)
    seconds = time.perf_counter() - start
    return Rate(len(y), seconds, accuracy=right / max(len(y), 1))


_DEEP_RIVER_SCRIPT = """
import json, sys, time
import numpy as np, torch
from torch import nn
from deep_river.classification import Classifier
data = np.load(sys.argv[1]); x, y = data["x"], data["y"]
class MLP(nn.Module):
    def __init__(self, n_features):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_features, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                                 nn.Linear(256, 10))
    def forward(self, x):
        return self.net(x)
torch.set_num_threads(1)
model = Classifier(module=MLP(x.shape[1]), loss_fn="cross_entropy", optimizer_fn="adam", lr=1e-3,
                   is_class_incremental=True)
right = 0; start = time.perf_counter()
for row, label in zip(x, y.tolist()):
    features = {i: float(v) for i, v in enumerate(row)}
    right += model.predict_one(features) == label
    model.learn_one(features, label)
print(json.dumps({"events": len(y), "seconds": time.perf_counter() - start, "accuracy": right / len(y),
                  "torch": torch.__version__}))
"""


def deep_river_rate(x: np.ndarray, y: np.ndarray, cache_dir: Path) -> Rate | str:
    """deep-river's per-sample Classifier (an MLP like ours) in a venv of its own (it pins river < 0.26 and an
    older torch); returns the error text when it cannot be installed or run."""
    venv = cache_dir / "deep-river-venv"
    python = venv / "bin" / "python"
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, text=True)
        probe = subprocess.run([str(python), "-c", "import deep_river"], capture_output=True, text=True)
        if probe.returncode != 0:
            subprocess.run([str(python), "-m", "pip", "install", "-q", *DEEP_RIVER], check=True,
                           capture_output=True, text=True, timeout=1800)
        with tempfile.TemporaryDirectory() as tmp:
            data, script = Path(tmp) / "data.npz", Path(tmp) / "run.py"
            np.savez(data, x=x, y=y)
            script.write_text(_DEEP_RIVER_SCRIPT)
            done = subprocess.run([str(python), str(script), str(data)], check=True, capture_output=True,
                                  text=True, timeout=3600)
    except subprocess.CalledProcessError as exc:
        return f"{' '.join(map(str, exc.cmd[:4]))} failed: {(exc.stderr or exc.stdout or '').strip()[-600:]}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{type(exc).__name__}: {exc}"
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return Rate(out["events"], out["seconds"], accuracy=out["accuracy"])


# ---- the run -----------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _bar(enabled: bool) -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    """``task(description, total)`` returns an ``update(completed)`` callable (rich progress on stderr)."""
    if not enabled:
        yield lambda _d, _t: (lambda _n: None)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=Console(stderr=True), transient=True)

    def task(description: str, total: int) -> Callable[[int], None]:
        tid = progress.add_task(description, total=total)
        return lambda n: progress.update(tid, completed=n)

    with progress:
        yield task


#: Settings that differ by model. The CNN is learner-bound on a CPU (about 1,000 events/s), so it keeps the
#: sample-efficient small steps: at one step of 256 per micro-batch it reached 0.33 prequential accuracy over
#: 10,000 events, at steps of 32 0.76 over 20,000; and float32: under bf16 autocast it learned less (0.70).
MODEL_OPTIONS: dict[str, dict[str, Any]] = {
    "cnn": {"micro_batch": 64, "batch_size": 32, "replay_batch_size": 32, "lr": 0.002, "autocast": "off"},
}


def model_options(opts: Options, model: str) -> Options:
    """``opts`` with :data:`MODEL_OPTIONS` of ``model`` (the MLP takes the command line's as they are)."""
    from dataclasses import replace

    return replace(opts, **MODEL_OPTIONS.get(model, {}))


def autocast_tag(requested: str, device: str) -> str:
    """``auto`` with what it resolved to on this machine, e.g. ``auto(bf16)``."""
    import torch

    from lifelong.learner import resolve_autocast

    if requested != "auto":
        return requested
    dtype = resolve_autocast("auto", torch.device(device))
    return "auto(bf16)" if dtype is not None else "auto(off)"


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def paired_ratio(over: Sequence[float], under: Sequence[float]) -> float:
    """Median of the per-round ratios ``over[i] / under[i]`` (rounds whose ``under`` is 0 left out): each
    compares two runs that were neighbours in time, so a slow round slows both sides of its ratio."""
    return _median([o / u for o, u in zip(over, under, strict=True) if u])


def alternating(items: Sequence[T], rnd: int) -> list[T]:
    """``items`` in order on even rounds, reversed on odd ones: no variant always runs first (or just after the
    same neighbour), which on a shared host was worth a few percent by itself."""
    return list(items) if rnd % 2 == 0 else list(items)[::-1]


def _feed(bootstrap: str, topic: str, x: np.ndarray, y: np.ndarray, partitions: int, progress: bool) -> None:
    from lifelong.stream.feed import feed_arrays

    feed_arrays(x, y, topic=topic, bootstrap_servers=bootstrap, codec="f32", keys="none", partitions=partitions,
                progress=progress)


def run_throughput(opts: Options, emit: Callable[[str], None] = print) -> dict[str, Any]:
    """Feed, measure, print and record every figure; returns them as a dict (for tests and scripts)."""
    from lifelong.config import KafkaConfig
    from lifelong.learner import resolve_device
    from lifelong.stream.broker import EmbeddedBroker

    device = str(resolve_device(opts.device))
    cache = opts.cache_dir or Path.home() / ".cache" / "lifelong"
    # figures: every figure of this run as results.jsonl would store it (lifelong.bench.targets reads them)
    out: dict[str, Any] = {"device": device, "configs": [], "figures": []}
    base = {"records": opts.records, "device": device, "codec": "f32", "dataset": "mnist"}

    def put(metric: str, value: float, unit: str, **settings: Any) -> None:
        emit(f"  {metric:<28} {value:>12,.3f} {unit:<9} {json.dumps(settings)}")
        if not np.isfinite(value):
            return
        entry = figure(BENCH, metric, float(value), unit, **{**base, **settings})
        out["figures"].append(entry)
        if opts.record_results:
            append(entry)

    if opts.clients and opts.models and opts.replays:  # the main matrix (skip it for --ablation alone)
        x, y = mnist_arrays(opts.records, opts.features)
        with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as tmp, _bar(opts.progress) as task:
            topic = f"bench-{uuid.uuid4().hex[:8]}"
            emit(f"feeding {opts.records:,} f32 MNIST records ({x.shape[1]} features) into {topic}")
            _feed(broker.bootstrap, topic, x, y, opts.partitions, opts.progress)

            # (c) river first: it only needs the arrays, and its rate is the baseline of every ratio
            baselines: dict[str, Rate] = {}
            n_river = min(opts.river_records, opts.records)
            for name, make in river_models().items():
                baselines[name] = river_rate(make, x[:n_river], y[:n_river], task(name, n_river))
            if opts.with_deep_river:
                n_deep = min(opts.deep_river_records, opts.records)
                result = deep_river_rate(x[:n_deep], y[:n_deep], cache)
                if isinstance(result, str):
                    emit(f"deep-river: not measured: {result}")
                    out["deep_river_error"] = result
                else:
                    baselines["deep-river.Classifier(MLP)"] = result
            for name, rate in baselines.items():
                put("baseline_events_per_s", rate.per_s, "events/s", learner=name, prefix=rate.events)
                put("baseline_prequential_accuracy", rate.accuracy or 0.0, "ratio", learner=name, prefix=rate.events)
            fastest = max(baselines.items(), key=lambda kv: kv[1].per_s)

            for client in opts.clients:
                kafka = KafkaConfig(bootstrap_servers=[broker.bootstrap], topics=[topic], assign=True, client=client,
                                    group_id="raw", recv_chunk_bytes=opts.recv_chunk_bytes)
                for model in opts.models:
                    n = min(opts.records, opts.cnn_records) if model == "cnn" else opts.records
                    mopts = model_options(opts, model)
                    for replay in opts.replays:
                        tags = {"client": client, "model": model if model != "mlp" or tuple(opts.hidden) == (256, 256)
                                else f"mlp{list(opts.hidden)}", "replay": replay if replay == "none" else
                                f"{replay}-500", "optimizer": f"{mopts.optimizer}(lr={mopts.lr:g}"
                                f"{f', momentum={mopts.momentum:g}' if mopts.optimizer == 'sgd' else ''})",
                                "fused": "auto" if opts.fused is None else opts.fused,
                            "batch_size": mopts.batch_size, "micro_batch": mopts.micro_batch,
                                "prefetch": opts.prefetch, "autocast": autocast_tag(mopts.autocast, device),
                                "fetch_workers": opts.fetch_workers, "fetcher": opts.fetcher,
                                "replay_batch_size": mopts.replay_batch_size if replay != "none" else None,
                                **({"recv_chunk_bytes": opts.recv_chunk_bytes} if client == "kafka-python" else {}),
                                **({"compile": opts.compile_mode} if opts.compile else {})}
                        raws, ends, ratios, accs, prefix_accs = [], [], [], [], []
                        for rep in range(opts.repeats):
                            raw = raw_rate(kafka.model_copy(update={"group_id": f"raw-{uuid.uuid4().hex[:8]}"}),
                                           opts.records, x.shape[1],
                                           on_progress=task(f"raw {client} #{rep + 1}", opts.records))
                            settings = daemon_settings(broker.bootstrap, topic, client=client, model=model,
                                                       replay=replay, features=x.shape[1], n=n, opts=mopts,
                                                       checkpoint_dir=Path(tmp) / f"{client}-{model}-{replay}-{rep}")
                            end = daemon_rate(settings, prefix=n_river,
                                              on_progress=task(f"daemon {client} {model} {replay} #{rep + 1}", n))
                            raws.append(raw.per_s)
                            ends.append(end.per_s)
                            ratios.append(end.per_s / raw.per_s if raw.per_s else float("nan"))
                            accs.append(end.accuracy or 0.0)
                            prefix_accs.append(end.prefix_accuracy if end.prefix_accuracy is not None else float("nan"))
                        emit(f"{client} {model} replay={replay}: raw {raws} end-to-end {ends}")
                        result = {**tags, "raw": _median(raws), "end_to_end": _median(ends),
                                  "ratio": _median(ratios), "accuracy": _median(accs),
                                  "prefix_accuracy": _median(prefix_accs)}
                        out["configs"].append(result)
                        put("raw_events_per_s", result["raw"], "events/s", **tags)
                        put("end_to_end_events_per_s", result["end_to_end"], "events/s", **tags)
                        put("end_to_end_over_raw", result["ratio"], "ratio", **tags)
                        put("prequential_accuracy", result["accuracy"], "ratio", events=n, **tags)
                        put("prequential_accuracy_prefix", result["prefix_accuracy"], "ratio", prefix=n_river, **tags)
                        put("end_to_end_over_river", result["end_to_end"] / fastest[1].per_s, "ratio",
                            baseline=fastest[0], baseline_accuracy=round(fastest[1].accuracy or 0.0, 4), **tags)
                        acceptance = model == "mlp" and tuple(opts.hidden) == (256, 256)  # the issue's setting
                        if acceptance and (client, replay) == ("kafka-python", "reservoir") and device == "cpu":
                            put("cpu_end_to_end_over_raw", result["ratio"], "ratio", **tags)
                        if acceptance and device.startswith("cuda") and (client, replay) == ("confluent", "reservoir"):
                            put("h100_end_to_end_over_raw", result["ratio"], "ratio", **tags)
                            put("h100_end_to_end_events_per_s", result["end_to_end"], "events/s", **tags)
            out["baselines"] = {k: {"events_per_s": v.per_s, "accuracy": v.accuracy} for k, v in baselines.items()}
            out["fastest_baseline"] = fastest[0]
    if opts.ablation:
        out["ablation"] = run_ablation(opts, put, emit)
    if opts.decay_run:
        out["decay"] = run_decay(opts, put, task_factory=opts.progress, emit=emit)
    return out


#: Each speed option against the default (fetch process, shared forward, autocast auto, prefetch 2, torch threads
#: auto), same topic, interleaved: what each one is worth, measured rather than assumed.
ABLATIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "fetcher=thread": {"fetcher": "thread"},
    "shared_memory=false": {"shared_memory": False},
    "shared_forward=false": {"shared_forward": False},
    "autocast=off": {"autocast": "off"},
    "prefetch=0, torch_threads=1": {"prefetch": 0, "torch_threads": 1},
    "torch_threads=all cores": {"torch_threads": 0},  # torch's default, against auto's cores the fetchers leave
    "compile": {"compile": True},
    "fetch_workers=2": {"fetch_workers": 2},
    "gc_freeze=false": {"gc_freeze": False},
    "reuse_fetch_memory=false": {"reuse_fetch_memory": False},
    "recv_chunk_bytes=0": {"recv_chunk_bytes": 0},  # kafka-python's own 4 KiB socket reads
}
#: Options that only a GPU can show the worth of; added to the ablation when it runs with ``--device cuda``.
CUDA_ABLATIONS: dict[str, dict[str, Any]] = {
    "compile=reduce-overhead": {"compile": True, "compile_mode": "reduce-overhead"},  # CUDA graphs
}


def ablations(device: str) -> dict[str, dict[str, Any]]:
    """The variants of :func:`run_ablation` for a run on ``device`` (``cuda`` adds :data:`CUDA_ABLATIONS`)."""
    return {**ABLATIONS, **(CUDA_ABLATIONS if device == "cuda" else {})}


def run_ablation(opts: Options, put: Callable[..., None], emit: Callable[[str], None]) -> dict[str, Any]:
    """kafka-python, MLP, reservoir replay, on a 4-partition topic: each option of :func:`ablations` vs the
    default, ``repeats`` interleaved rounds in alternating order; records each variant's median rate, its
    speed-up over the default measured in the same rounds, and its prequential accuracy."""
    from dataclasses import replace

    from lifelong.stream.broker import EmbeddedBroker

    variants = ablations(opts.device)
    n = opts.ablation_records
    x, y = mnist_arrays(n, opts.features)
    rates: dict[str, list[float]] = {name: [] for name in variants}
    accs: dict[str, list[float]] = {name: [] for name in variants}
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as tmp, _bar(opts.progress) as task:
        topic = f"ablation-{uuid.uuid4().hex[:8]}"
        _feed(broker.bootstrap, topic, x, y, 4, opts.progress)
        for rep in range(opts.repeats):
            for name, change in alternating(list(variants.items()), rep):
                variant = replace(opts, **change)
                settings = daemon_settings(broker.bootstrap, topic, client="kafka-python", model="mlp",
                                           replay="reservoir", features=x.shape[1], n=n, opts=variant,
                                           checkpoint_dir=Path(tmp) / f"{rep}-{len(rates[name])}-{uuid.uuid4().hex}")
                with _torch_threads_restored():
                    rate = daemon_rate(settings, on_progress=task(f"ablation {name} #{rep + 1}", n))
                rates[name].append(rate.per_s)
                accs[name].append(rate.accuracy or 0.0)
                emit(f"  ablation #{rep + 1} {name}: {rate.per_s:,.0f} events/s, accuracy {rate.accuracy:.3f}")
    base = rates["default"]
    out: dict[str, Any] = {}
    for name, values in rates.items():
        tags = {"client": "kafka-python", "model": "mlp", "replay": "reservoir-500", "variant": name,
                "records": n,
                "partitions": 4, "batch_size": opts.batch_size, "micro_batch": opts.micro_batch}
        out[name] = {"events_per_s": _median(values), "speedup": paired_ratio(values, base),
                     "accuracy": _median(accs[name])}
        put("ablation_events_per_s", out[name]["events_per_s"], "events/s", **tags)
        put("ablation_speedup_vs_default", out[name]["speedup"], "ratio", **tags)
        put("ablation_prequential_accuracy", out[name]["accuracy"], "ratio", **tags)
    return out


@contextlib.contextmanager
def _torch_threads_restored() -> Iterator[None]:
    """The daemon sets torch's process-wide thread count; put it back so variants do not leak into each other."""
    import torch

    before = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_decay(opts: Options, put: Callable[..., None], task_factory: bool = True,
              emit: Callable[[str], None] = print) -> dict[str, Any]:
    """Long runs (default 500,000 events, ``decay_repeats`` of them on one topic): the rate over the first and
    the last 10% of each run's events; medians of the first/last ratios, by wall clock and by process CPU time
    (a shared machine's other tenants move the first, rarely the second)."""
    from lifelong.stream.broker import EmbeddedBroker

    client = opts.clients[0] if opts.clients else "kafka-python"
    x, y = mnist_arrays(opts.decay_records, opts.decay_features)
    firsts, lasts, ratios, cpu_ratios = [], [], [], []
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as tmp, _bar(task_factory) as task:
        topic = f"decay-{uuid.uuid4().hex[:8]}"
        _feed(broker.bootstrap, topic, x, y, opts.partitions, opts.progress)
        del x
        for rep in range(opts.decay_repeats):
            settings = daemon_settings(broker.bootstrap, topic, client=client, model="mlp", replay="reservoir",
                                       features=opts.decay_features, n=opts.decay_records, opts=opts,
                                       checkpoint_dir=Path(tmp) / f"decay-{rep}")
            with _torch_threads_restored():
                rate = daemon_rate(settings, on_progress=task(f"decay run #{rep + 1}", opts.decay_records))
            first, last = rate.window_rate(0.0, 0.1), rate.window_rate(0.9, 1.0)
            cpu_first, cpu_last = rate.window_rate(0.0, 0.1, clock=1), rate.window_rate(0.9, 1.0, clock=1)
            firsts.append(first)
            lasts.append(last)
            ratios.append(last / first if first else float("nan"))
            cpu_ratios.append(cpu_last / cpu_first if cpu_first else float("nan"))
            emit(f"  decay run #{rep + 1} deciles, events/s wall: {[round(r) for r in rate.deciles()]}")
            emit(f"  decay run #{rep + 1} deciles, events per CPU-second: {[round(r) for r in rate.deciles(1)]}")
    tags = {"client": client, "model": "mlp", "replay": "reservoir-500", "records": opts.decay_records,
            "features": opts.decay_features, "batch_size": opts.batch_size, "prefetch": opts.prefetch,
            "runs": opts.decay_repeats, "autocast": autocast_tag(opts.autocast, opts.device)}
    out = {"first": _median(firsts), "last": _median(lasts), "ratio": _median(ratios),
           "cpu_ratio": _median(cpu_ratios), "ratios": ratios, "cpu_ratios": cpu_ratios}
    put("rate_first_10pct_events_per_s", out["first"], "events/s", **tags)
    put("rate_last_10pct_events_per_s", out["last"], "events/s", **tags)
    put("rate_first_last_ratio", out["ratio"], "ratio", **tags)
    put("cpu_rate_first_last_ratio", out["cpu_ratio"], "ratio", **tags)
    return out
