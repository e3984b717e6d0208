"""Concept drift on river's synthetic streams: detection delay, false alarms, misses, and whether reactions help.

Streams with known drift points, built with river (``river.datasets.synth``):

* ``sea_abrupt`` / ``sea_gradual``: SEA variants 0 -> 1 -> 2 -> 3 chained with ``ConceptDriftStream`` (abrupt:
  width 64, the smallest river's sigmoid allows at these positions without ``math.exp`` overflowing; gradual: 2,000);
* ``agrawal_abrupt`` / ``agrawal_gradual``: Agrawal classification functions 0 -> 2 -> 5 -> 8, the same way;
* ``stagger_abrupt``: STAGGER functions 0 -> 1 -> 2 -> 0;
* ``rbf_drift``: RandomRBFDrift, centroids moving all the time (no drift points: only detections per 100k).

Each stream is encoded once (``DictEncoder``: one-hot categories, min-max fitted on the first 2,000 events), fed
into the embedded Tansu broker (f32 codec) and read back by every run with ``StreamConsumer`` +
``decode_records`` in micro-batches of 32, in front of the real ``Learner`` (MLP) and ``DriftMonitor``/``Reactor``
(``--source inproc`` skips Kafka for quick tuning; the figures recorded by default come through the broker).

Figures (``lifelong.bench.results.record("drift", ...)``):

* per stream and detector, on the plain learner's error stream: ``detection_delay_events`` (median over the drifts
  found; gradual drifts count from the centre of the transition), ``missed_drifts``,
  ``false_alarms_per_100k_events`` (every detection that is not the first one within [drift - width/2,
  drift + 5,000)), and ``detections_equal_to_river``: 1 when the monitor's positions equal those of the same river
  detector run directly over the same error stream, else 0;
* per stream and reaction set: ``prequential_accuracy``, ``recovery_accuracy_2000`` (accuracy over the 2,000
  events after each drift point, mean over the drifts) and ``recovery_gain_2000`` (the same minus the run without
  reactions, seed by seed); median over ``--seeds`` learner seeds, the same seeds for every reaction set;
* per stream: the learner's ``events_per_s`` through the broker (consume, decode, learn, detect) and river's
  HoeffdingAdaptiveTreeClassifier, ARFClassifier and LogisticRegression (one-vs-rest for 3 classes): their
  ``prequential_accuracy`` and ``events_per_s`` over the first ``--river-events`` events, next to the learner's
  accuracy over the same events.

Run: ``python benchmarks/drift.py`` (about 4 minutes on 2 busy cores); ``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lifelong.bench.results import record  # noqa: E402
from lifelong.config import DriftConfig, ReactionSpec  # noqa: E402
from lifelong.datasets.river_streams import KNOWN_CATEGORICAL, DictEncoder  # noqa: E402
from lifelong.drift import DriftMonitor, Reactor, detector_seed  # noqa: E402
from lifelong.drift.detectors import DETECTORS, accepts_seed, feeds_correct  # noqa: E402
from lifelong.learner import Learner, build_optimizer  # noqa: E402
from lifelong.models import build_model  # noqa: E402

MICRO_BATCH = 32
ABRUPT_WIDTH = 64
GRADUAL_WIDTH = 2000
TOLERANCE = 5000
RECOVERY = 2000

# Detectors observed on the plain learner's error stream (and one on its inputs).
OBSERVED: list[dict[str, Any]] = [
    {"detector": "ADWIN"},
    {"detector": "PageHinkley"},
    {"detector": "DDM"},
    {"detector": "EDDM"},
    {"detector": "HDDMA"},
    {"detector": "HDDMW"},
    {"detector": "FHDDM"},
    {"detector": "KSWIN", "signal": "loss", "alpha": 1e-5, "window_size": 200, "stat_size": 60},
    {"detector": "ADWIN", "signal": "input"},
]
# The detector that drives the reactions, and the reaction sets compared with "none".
REACTING: dict[str, Any] = {"detector": "HDDMA"}  # one-sided: reacts to rising error only
MIN_EVENTS_BETWEEN = 1000
REACTION_SETS: dict[str, list[dict[str, Any]]] = {
    "none": [],
    "lr_boost": [{"name": "lr_boost", "factor": 4.0, "events": 1000}],
    "reset_optimizer": [{"name": "reset_optimizer"}],
    "lr_boost+reset_optimizer": [{"name": "lr_boost", "factor": 4.0, "events": 1000}, {"name": "reset_optimizer"}],
}
LEARNER = {"hidden": [64, 64], "optim": "adam", "lr": 0.005}


# ---- streams -----------------------------------------------------------------------------------------------------
@dataclass
class DriftStream:
    name: str
    x: np.ndarray
    y: np.ndarray
    drifts: list[int]
    width: int
    num_classes: int
    features: tuple[str, ...] = field(default_factory=tuple)

    @property
    def n(self) -> int:
        return len(self.y)


def _chain(make: Any, concepts: list[int], concept_len: int, width: int, seed: int) -> Any:
    """concept[0] -> concept[1] -> ... with ConceptDriftStream; the inner stream counts from its first draw, so
    each nested position is relative (by symmetry of the sigmoid, it lands on the absolute drift point)."""
    from river.datasets import synth

    stream = make(concepts[-1], seed + len(concepts))
    for i in range(len(concepts) - 2, -1, -1):
        stream = synth.ConceptDriftStream(stream=make(concepts[i], seed + i), drift_stream=stream,
                                          position=concept_len, width=width, seed=seed + 100 + i)
    return stream


def build_stream(name: str, *, concept_len: int, seed: int = 0) -> DriftStream:
    from river.datasets import synth

    gradual = name.endswith("gradual")
    width = GRADUAL_WIDTH if gradual else ABRUPT_WIDTH
    if 4 * concept_len / width > 700:
        raise ValueError(f"width {width} too small for concepts of {concept_len}: river's sigmoid overflows")
    concepts = 4
    if name.startswith("sea"):
        river_name, classes = "SEA", 2
        stream = _chain(lambda c, s: synth.SEA(variant=c, noise=0.05, seed=s), [0, 1, 2, 3], concept_len, width,
                        seed)
    elif name.startswith("agrawal"):
        river_name, classes = "Agrawal", 2
        stream = _chain(lambda c, s: synth.Agrawal(classification_function=c, seed=s), [0, 2, 5, 8], concept_len,
                        width, seed)
    elif name.startswith("stagger"):
        river_name, classes = "STAGGER", 2
        stream = _chain(lambda c, s: synth.STAGGER(classification_function=c, seed=s), [0, 1, 2, 0],
                        concept_len, width, seed)
    elif name == "rbf_drift":
        river_name, classes = "RandomRBFDrift", 3
        stream = synth.RandomRBFDrift(seed_model=seed, seed_sample=seed + 1, n_classes=3, n_features=10,
                                      n_centroids=30, change_speed=0.001, n_drift_centroids=15)
    else:
        raise ValueError(f"unknown stream {name!r}")
    n = concepts * concept_len
    samples = list(itertools.islice(stream, n))
    encoder = DictEncoder(categorical=KNOWN_CATEGORICAL.get(river_name, {})).fit(s for s, _ in samples[:2000])
    x = encoder.transform([s for s, _ in samples])
    y = np.asarray([int(label) for _, label in samples], dtype=np.int64)
    drifts = [] if name == "rbf_drift" else [concept_len * i for i in range(1, concepts)]
    return DriftStream(name, x, y, drifts, 0 if name == "rbf_drift" else width, classes, encoder.feature_names)


# ---- sources -----------------------------------------------------------------------------------------------------
class InProcess:
    """Micro-batches straight from the arrays (tuning)."""

    name = "inproc"

    def feed(self, stream: DriftStream) -> None:
        pass

    def batches(self, stream: DriftStream) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for lo in range(0, stream.n, MICRO_BATCH):
            yield stream.x[lo:lo + MICRO_BATCH], stream.y[lo:lo + MICRO_BATCH]

    def close(self) -> None:
        pass


class Broker:
    """One embedded Tansu broker; each stream fed once (f32, one partition), read back from offset 0 per run."""

    name = "broker"

    def __init__(self) -> None:
        from lifelong.stream.broker import EmbeddedBroker

        self.broker = EmbeddedBroker().start()
        self.topics: dict[str, str] = {}

    def feed(self, stream: DriftStream) -> None:
        from lifelong.stream.feed import feed_arrays

        topic = f"drift-{stream.name}-{uuid.uuid4().hex[:6]}"
        report = feed_arrays(stream.x, stream.y, topic=topic, bootstrap_servers=self.broker.bootstrap, codec="f32",
                             keys="none", partitions=1, progress=False)
        self.topics[stream.name] = topic
        print(f"  fed {report.records:,} records into {topic} at {report.records_per_s:,.0f} records/s", flush=True)

    def batches(self, stream: DriftStream) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        from lifelong.config import KafkaConfig
        from lifelong.stream.codecs import decode_records
        from lifelong.stream.consumer import StreamConsumer

        cfg = KafkaConfig(bootstrap_servers=[self.broker.bootstrap], topics=[self.topics[stream.name]],
                          assign=True, group_id=f"drift-{uuid.uuid4().hex[:8]}", auto_offset_reset="earliest",
                          max_poll_records=8192, poll_timeout_ms=2000)
        consumer = StreamConsumer(cfg)
        pending_x = np.zeros((0, stream.x.shape[1]), dtype=np.float32)
        pending_y = np.zeros(0, dtype=np.int64)
        taken, idle = 0, 0
        try:
            while taken < stream.n:
                records = consumer.poll()
                if not records:
                    idle += 1
                    if idle > 30:
                        raise RuntimeError(f"no records for a minute after {taken} of {stream.n}")
                    continue
                idle = 0
                decoded = decode_records(records, "f32", num_features=stream.x.shape[1], max_classes=10)
                if decoded.bad:
                    raise RuntimeError(f"{len(decoded.bad)} records failed to decode: {decoded.bad[0].reason}")
                pending_x = np.concatenate([pending_x, decoded.x])
                pending_y = np.concatenate([pending_y, decoded.y])
                while len(pending_y) >= MICRO_BATCH or (len(pending_y) and taken + len(pending_y) >= stream.n):
                    size = min(MICRO_BATCH, len(pending_y))
                    yield pending_x[:size], pending_y[:size]
                    pending_x, pending_y = pending_x[size:], pending_y[size:]
                    taken += size
        finally:
            consumer.close()

    def close(self) -> None:
        self.broker.kill()


# ---- one learner run ---------------------------------------------------------------------------------------------
@dataclass
class Run:
    correct: np.ndarray
    losses: np.ndarray
    reacted_at: list[int]
    observed: dict[str, list[int]]
    seconds: float  # the whole loop (consume, decode, learn, detect, react), the observer's time left out
    learn_seconds: float  # learner.process + monitor.update + reactor.apply


def make_learner(stream: DriftStream, seed: int) -> Learner:
    torch.manual_seed(seed)
    model = build_model("mlp", [stream.x.shape[1]], max_classes=stream.num_classes, hidden=LEARNER["hidden"])
    optimizer = build_optimizer(LEARNER["optim"], model.parameters(), lr=LEARNER["lr"])
    return Learner(model, optimizer, batch_size=MICRO_BATCH)


def run_learner(source: Any, stream: DriftStream, reactions: list[dict[str, Any]], seed: int,
                observe: bool) -> Run:
    learner = make_learner(stream, seed)
    react_cfg = DriftConfig(detectors=[REACTING], reactions=[ReactionSpec(**r) for r in reactions] or
                            [ReactionSpec(name="alert")], min_events_between=MIN_EVENTS_BETWEEN)
    monitor = DriftMonitor(react_cfg, num_features=stream.x.shape[1], max_classes=stream.num_classes, seed=seed)
    reactor = Reactor(react_cfg.reactions)
    observer = None
    if observe:
        obs_cfg = DriftConfig(detectors=OBSERVED, min_events_between=0)
        observer = DriftMonitor(obs_cfg, num_features=stream.x.shape[1], max_classes=stream.num_classes, seed=seed)
    correct, losses, reacted_at = [], [], []
    observed: dict[str, list[int]] = {spec.label: [] for spec in (observer.cfg.detectors if observer else [])}
    position, learn, observing = 0, 0.0, 0.0
    start = time.perf_counter()
    for x, y in source.batches(stream):
        t0 = time.perf_counter()
        result = learner.process(x, y)
        detections = monitor.update(x, y, result.correct, result.losses, position)
        if detections:
            reactor.apply(detections, learner)
            reacted_at += [d.position for d in detections if not d.warning]
        t1 = time.perf_counter()
        learn += t1 - t0
        if observer is not None:  # not part of the learner's loop: timed apart and left out of its speed
            for d in observer.update(x, y, result.correct, result.losses, position):
                observed[d.detector].append(d.position)
            observing += time.perf_counter() - t1
        correct.append(result.correct)
        losses.append(result.losses)
        position += len(y)
    seconds = time.perf_counter() - start - observing
    return Run(np.concatenate(correct), np.concatenate(losses), reacted_at, observed, seconds, learn)


# ---- detection scoring -------------------------------------------------------------------------------------------
def river_positions(spec: dict[str, Any], run: Run, stream: DriftStream, seed: int, index: int) -> list[int]:
    """The same detector run directly in river over the same signal as the monitor's (error, loss or input)."""
    name, signal = spec["detector"], spec.get("signal", "error")
    params = {k: v for k, v in spec.items() if k not in ("detector", "signal", "name", "input", "dims", "block")}
    if accepts_seed(name):
        params.setdefault("seed", detector_seed(seed, index, None))
    if signal == "error":
        values = (run.correct if feeds_correct(name) else ~run.correct).astype(int).tolist()
        positions = list(range(len(values)))
        channels = [(positions, values)]
    elif signal == "loss":
        ok = np.flatnonzero(np.isfinite(run.losses))
        channels = [(ok.tolist(), run.losses[ok].astype(np.float64).tolist())]
    else:  # input, per-feature means of blocks of 32
        m = stream.n // 32
        means = stream.x[: m * 32].astype(np.float64).reshape(m, 32, -1).sum(axis=1) / 32
        ends = (np.arange(1, m + 1) * 32 - 1).tolist()
        channels = [(ends, means[:, j].tolist()) for j in range(means.shape[1])]
    fired = []
    for positions, values in channels:
        det = DETECTORS[name](**params)
        for pos, value in zip(positions, values, strict=True):
            det.update(value)
            if det.drift_detected:
                fired.append(pos)
    return sorted(fired)


def score(positions: list[int], stream: DriftStream) -> tuple[list[int], int, int]:
    """(delays of the first detection per drift, missed drifts, false alarms)."""
    delays, used = [], set()
    for drift in stream.drifts:
        lo, hi = drift - stream.width // 2, drift + TOLERANCE
        hits = [p for p in positions if lo <= p < hi and p not in used]
        if hits:
            delays.append(hits[0] - drift)
            used.add(hits[0])
    missed = len(stream.drifts) - len(delays)
    return delays, missed, len(positions) - len(used)


def recovery(correct: np.ndarray, stream: DriftStream) -> float:
    return float(np.mean([correct[p:p + RECOVERY].mean() for p in stream.drifts]))


# ---- river's own learners ----------------------------------------------------------------------------------------
def river_models(num_classes: int) -> dict[str, Any]:
    from river import forest, linear_model, multiclass, tree

    logistic = linear_model.LogisticRegression()
    return {
        "HoeffdingAdaptiveTreeClassifier": tree.HoeffdingAdaptiveTreeClassifier(seed=0),
        "ARFClassifier": forest.ARFClassifier(seed=0),
        "LogisticRegression": logistic if num_classes == 2 else multiclass.OneVsRestClassifier(logistic),
    }


def run_river(model: Any, stream: DriftStream, events: int) -> tuple[float, float]:
    hits = 0
    rows = stream.x[:events].tolist()
    labels = stream.y[:events].tolist()
    start = time.perf_counter()
    for row, label in zip(rows, labels, strict=True):
        sample = dict(enumerate(row))
        hits += model.predict_one(sample) == label
        model.learn_one(sample, label)
    seconds = time.perf_counter() - start
    return hits / len(labels), len(labels) / seconds


# ---- the campaign ------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", nargs="*", default=["sea_abrupt", "sea_gradual", "agrawal_abrupt",
                                                         "agrawal_gradual", "stagger_abrupt", "rbf_drift"])
    parser.add_argument("--concept-len", type=int, default=4_000, help="events per concept (4 concepts)")
    parser.add_argument("--seeds", type=int, default=2, help="learner seeds for the reaction comparison")
    parser.add_argument("--river-events", type=int, default=5_000, help="events for river's own learners")
    parser.add_argument("--source", choices=["broker", "inproc"], default="broker")
    parser.add_argument("--reactions", nargs="*", default=list(REACTION_SETS))
    parser.add_argument("--no-river", action="store_true", help="skip river's own learners")
    parser.add_argument("--quick", action="store_true", help="smoke run: short streams, one seed, no record")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.concept_len, args.seeds, args.river_events, args.no_record = 2500, 1, 2000, True
    logging.basicConfig(level=logging.ERROR)
    torch.set_num_threads(1)
    rec = (lambda *a, **k: None) if args.no_record else record
    source: Any = Broker() if args.source == "broker" else InProcess()
    common = {"source": source.name, "learner": f"mlp{LEARNER['hidden']}-{LEARNER['optim']}{LEARNER['lr']}",
              "micro_batch": MICRO_BATCH}
    try:
        for name in args.streams:
            stream = build_stream(name, concept_len=args.concept_len, seed=0)
            print(f"\n== {name}: {stream.n:,} events, {stream.x.shape[1]} features, drifts at {stream.drifts} "
                  f"(width {stream.width})", flush=True)
            source.feed(stream)
            per_set: dict[str, list[Run]] = {}
            for set_name in args.reactions:
                for seed in range(args.seeds if stream.drifts else 1):
                    run = run_learner(source, stream, REACTION_SETS[set_name], seed,
                                      observe=set_name == "none" and seed == 0)
                    per_set.setdefault(set_name, []).append(run)
            base = per_set["none"][0]
            report_detection(stream, base, rec, common)
            report_learning(stream, per_set, rec, common)
            if not args.no_river:
                report_river(stream, base, args.river_events, rec, common)
    finally:
        source.close()
    return 0


def report_detection(stream: DriftStream, base: Run, rec: Any, common: dict[str, Any]) -> None:
    print(f"  {'detector':20s} {'delays':28s} {'missed':>6s} {'FA/100k':>8s} {'=river':>6s}")
    for index, spec in enumerate(OBSERVED):
        label = f"{spec['detector']}/{spec.get('signal', 'error')}"
        found = base.observed[label]
        equal = int(found == river_positions(spec, base, stream, 0, index))
        settings = {"stream": stream.name, "detector": label, **common}
        rec("drift", "detections_equal_to_river", equal, "bool", **settings)
        fa_rate = None
        if stream.drifts:
            delays, missed, false_alarms = score(found, stream)
            fa_rate = false_alarms / stream.n * 100_000
            if delays:
                rec("drift", "detection_delay_events", float(statistics.median(delays)), "events", **settings)
            rec("drift", "missed_drifts", missed, "drifts", drifts=len(stream.drifts), **settings)
            rec("drift", "false_alarms_per_100k_events", fa_rate, "per 100k events", **settings)
            print(f"  {label:20s} {str(delays):28s} {missed:6d} {fa_rate:8.1f} {equal:6d}")
        else:
            rate = len(found) / stream.n * 100_000
            rec("drift", "detections_per_100k_events", rate, "per 100k events", **settings)
            print(f"  {label:20s} {'(no drift points)':28s} {'':6s} {rate:8.1f} {equal:6d}  detections/100k")


def report_learning(stream: DriftStream, per_set: dict[str, list[Run]], rec: Any, common: dict[str, Any]) -> None:
    base_runs = per_set["none"]
    base = base_runs[0]
    events_per_s = stream.n / base.seconds
    rec("drift", "events_per_s", events_per_s, "events/s", stream=stream.name, reactions="none", **common)
    print(f"  learner: {events_per_s:,.0f} events/s end to end ({stream.n / base.learn_seconds:,.0f}/s in "
          f"learn+detect)")
    for set_name, runs in per_set.items():
        settings = {"stream": stream.name, "reactions": set_name, "detector": REACTING["detector"] + "/error",
                    "seeds": len(runs), **common}
        accuracy = statistics.median(float(r.correct.mean()) for r in runs)
        rec("drift", "prequential_accuracy", accuracy, "ratio", **settings)
        line = f"  reactions={set_name:26s} accuracy {accuracy:.4f}"
        if stream.drifts:
            rec_acc = statistics.median(recovery(r.correct, stream) for r in runs)
            rec("drift", "recovery_accuracy_2000", rec_acc, "ratio", **settings)
            line += f"  recovery(2000) {rec_acc:.4f}"
            if set_name != "none":
                gain = statistics.median(recovery(r.correct, stream) - recovery(b.correct, stream)
                                         for r, b in zip(runs, base_runs, strict=True))
                rec("drift", "recovery_gain_2000", gain, "ratio", **settings)
                line += f" ({gain:+.4f} vs none)"
        line += f"  reacted at {runs[0].reacted_at}"
        print(line, flush=True)


def report_river(stream: DriftStream, base: Run, events: int, rec: Any, common: dict[str, Any]) -> None:
    events = min(events, stream.n)
    ours = float(base.correct[:events].mean())
    rec("drift", "prequential_accuracy", ours, "ratio", stream=stream.name, model="lifelong", events=events,
        **common)
    print(f"  first {events:,} events: lifelong {ours:.4f}", end="", flush=True)
    for model_name, model in river_models(stream.num_classes).items():
        accuracy, speed = run_river(model, stream, events)
        rec("drift", "prequential_accuracy", accuracy, "ratio", stream=stream.name, model=model_name, events=events)
        rec("drift", "events_per_s", speed, "events/s", stream=stream.name, model=model_name, events=events)
        print(f" | {model_name} {accuracy:.4f} ({speed:,.0f}/s)", end="", flush=True)
    print()


if __name__ == "__main__":
    sys.exit(main())
