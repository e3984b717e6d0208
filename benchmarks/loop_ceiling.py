"""How fast the daemon's loop runs when learning costs nothing: where end to end stops short of the client.

In one run, on the same topic, for each client: (a) the client's own consume+decode rate, (b) the daemon end to
end with the benchmark's learner (MLP 784-256-256-10, reservoir replay 500: the ``lifelong bench`` settings),
and (loop) the same daemon whose learner answers every event at once: it predicts the label and trains on
nothing, while everything else (fetch processes, shared memory, position guard, pending records, metrics,
drift detection, checkpoints and commits) runs as in (b). loop/a is how close the loop alone comes to the
client; b/loop is what learning costs. The loop runs a second time with ``daemon.reuse_fetch_memory: false``
(lifelong.stream.allocator), whose gain shows where the fetch process, not the learner, sets the rate. Also
prints the main process's CPU per event: the loop's figure is the budget a learner on a GPU shares with the loop
(150,000 events/s leaves 6.7 us per event in all), and the CPU per event of each process that works for it (the
fetch processes and the broker too, lifelong.bench.process_cpu): their sum over the machine's cores is the most
events per second the cores could carry, however the work were shared out.

    python benchmarks/loop_ceiling.py [--records 100000] [--repeats 3] [--clients kafka-python,confluent]
                                      [--partitions 1] [--fetch-workers 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import uuid
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lifelong.bench.results import record  # noqa: E402
from lifelong.bench.throughput import (  # noqa: E402
    Options,
    Rate,
    _feed,
    _torch_threads_restored,
    daemon_rate,
    daemon_settings,
    loop_only_daemon,
    mnist_arrays,
    paired_ratio,
    raw_rate,
)
from lifelong.config import KafkaConfig  # noqa: E402
from lifelong.stream.broker import EmbeddedBroker  # noqa: E402

# torch-free at import: the fetch processes are spawned, and spawn re-imports this script in each of them
# (as __mp_main__); a torch import here would put torch into every fetch process, as the daemon's own do not.


def median_ratio(over: list[Rate], under: list[Rate]) -> float:
    """:func:`paired_ratio` of two measurements' rates, round by round."""
    return paired_ratio([r.per_s for r in over], [r.per_s for r in under])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="f32 MNIST records fed, and learned per run.")
    parser.add_argument("--repeats", type=int, default=3, help="Interleaved rounds of (a), (b) and the loop alone.")
    parser.add_argument("--clients", default="kafka-python,confluent", help="Comma list: kafka-python, confluent.")
    parser.add_argument("--partitions", type=int, default=1, help="Partitions of the topic.")
    parser.add_argument("--fetch-workers", type=int, default=1,
                        help="daemon.fetch_workers of (b) and the loop; (a) is always one plain consumer.")
    parser.add_argument("--device", default="cpu", help="daemon.device of (b): cpu, cuda or auto.")
    args = parser.parse_args()
    opts = replace(Options(), fetch_workers=args.fetch_workers, device=args.device)
    from lifelong.daemon.service import Daemon

    loop_only = loop_only_daemon()
    x, y = mnist_arrays(args.records)
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        topic = f"loop-{uuid.uuid4().hex[:8]}"
        _feed(broker.bootstrap, topic, x, y, args.partitions, progress=False)
        for client in [c for c in args.clients.split(",") if c]:
            kafka = KafkaConfig(bootstrap_servers=[broker.bootstrap], topics=[topic], assign=True, client=client)
            rates: dict[str, list[Rate]] = {"raw": [], "end_to_end": [], "loop": [], "loop_no_reuse": []}
            for rep in range(args.repeats):  # interleaved: each ratio compares neighbours in time
                rates["raw"].append(raw_rate(kafka.model_copy(update={"group_id": f"raw-{uuid.uuid4().hex[:8]}"}),
                                             args.records, x.shape[1], workers=1))
                for name, kind, reuse in (("end_to_end", Daemon, True), ("loop", loop_only, True),
                                          ("loop_no_reuse", loop_only, False)):
                    settings = daemon_settings(broker.bootstrap, topic, client=client, model="mlp",
                                               replay="reservoir", features=x.shape[1], n=args.records,
                                               opts=replace(opts, reuse_fetch_memory=reuse),
                                               checkpoint_dir=Path(tmp) / uuid.uuid4().hex)
                    with _torch_threads_restored():
                        rates[name].append(daemon_rate(settings, daemon_type=kind))
                raw, end, loop, bare = (rates[k][-1].per_s for k in ("raw", "end_to_end", "loop", "loop_no_reuse"))
                print(f"{client} #{rep + 1}: raw {raw:,.0f}, end to end {end:,.0f}, loop alone {loop:,.0f} "
                      f"({bare:,.0f} without reuse_fetch_memory) events/s", flush=True)
            tags = {"client": client, "records": args.records, "partitions": args.partitions,
                    "fetch_workers": args.fetch_workers, "model": "mlp", "replay": "reservoir-500",
                    "device": args.device, "repeats": args.repeats}
            med = {k: statistics.median(r.per_s for r in v) for k, v in rates.items()}
            loop_over_raw = median_ratio(rates["loop"], rates["raw"])
            bare_over_raw = median_ratio(rates["loop_no_reuse"], rates["raw"])
            end_over_loop = median_ratio(rates["end_to_end"], rates["loop"])
            cpu = {k: statistics.median(r.cpu_us_per_event for r in rates[k]) for k in ("raw", "end_to_end", "loop")}
            helpers = {k: {role: statistics.median(r.helper_us_per_event.get(role, float("nan")) for r in rates[k])
                           for role in ("fetch", "broker")} for k in ("raw", "end_to_end", "loop")}
            print(f"{client}: raw {med['raw']:,.0f}, end to end {med['end_to_end']:,.0f}, loop alone "
                  f"{med['loop']:,.0f} events/s; loop/raw {loop_over_raw:.3f} ({bare_over_raw:.3f} without "
                  f"reuse_fetch_memory), end to end/loop {end_over_loop:.3f}; "
                  f"main process {cpu['loop']:.2f} us CPU per event for the loop, {cpu['end_to_end']:.2f} with "
                  "the learner")
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
            bounds = {}  # the most events/s the cores could carry at each one's CPU per event
            for k in ("raw", "end_to_end", "loop"):
                total = cpu[k] + helpers[k]["fetch"] + helpers[k]["broker"]
                bounds[k] = cores / total * 1e6
                print(f"{client} {k}: CPU per event {total:.1f} us = main process {cpu[k]:.1f} + fetch processes "
                      f"{helpers[k]['fetch']:.1f} + broker {helpers[k]['broker']:.1f}; {cores} cores carry at most "
                      f"{bounds[k]:,.0f} events/s of that (measured {med[k]:,.0f})")
                record("loop_ceiling", f"{k}_cpu_us_per_event", total, "us/event", **tags, main=cpu[k],
                       fetch=helpers[k]["fetch"], broker=helpers[k]["broker"])
                record("loop_ceiling", f"{k}_cpu_bound_events_per_s", bounds[k], "events/s", **tags, cores=cores)
            bound = bounds["end_to_end"]
            print(f"{client}: with the CPU it needs per event, end to end could reach at most {bound / med['raw']:.3f} "
                  f"of the raw rate on these {cores} cores, were the work shared out perfectly")
            record("loop_ceiling", "end_to_end_cpu_bound_over_raw", bound / med["raw"], "ratio", **tags, cores=cores)
            for k, metric in (("raw", "raw_events_per_s"), ("end_to_end", "end_to_end_events_per_s"),
                              ("loop", "loop_events_per_s")):
                record("loop_ceiling", metric, med[k], "events/s", **tags)
            record("loop_ceiling", "loop_over_raw", loop_over_raw, "ratio", **tags)
            record("loop_ceiling", "loop_over_raw", bare_over_raw, "ratio", **tags, reuse_fetch_memory=False)
            record("loop_ceiling", "end_to_end_over_loop", end_over_loop, "ratio", **tags)
            record("loop_ceiling", "loop_main_process_us_per_event", cpu["loop"], "us/event", **tags)
            record("loop_ceiling", "end_to_end_main_process_us_per_event", cpu["end_to_end"], "us/event", **tags)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
