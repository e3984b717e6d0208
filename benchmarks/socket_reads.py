"""What kafka.recv_chunk_bytes is worth: kafka-python with its own 4 KiB socket reads against larger chunks
(lifelong.stream.socket_reads), on the same topic, round by round.

For each chunk size (0 is kafka-python's own read loop), interleaved and in alternating order each round:
(raw) consume and decode every record of a one-partition f32 MNIST topic with a fresh group in this process, as
``lifelong bench``'s (a) does; (loop) the daemon with its fetch process, whose learner answers every event at
once (``benchmarks/loop_ceiling.py``): the rate a learner that costs nothing, or a GPU's, would be held to;
(end_to_end) the daemon as ``lifelong bench`` runs it (MLP, reservoir replay of 500). Prints and records each
size's median rate, the CPU per event of the process that reads the socket, and its speed-up over
kafka-python's own reads in the same rounds. Where the learner sets the daemon's rate (a float32 MLP on two
cores) the end-to-end gain is the fetch process's CPU handed to the learner, small beside the host's noise.

    python benchmarks/socket_reads.py [--records 100000] [--repeats 5] [--chunks 0,262144,1048576]
                                      [--replay-batch-size 64] [--no-record]
"""

from __future__ import annotations

import argparse
import logging
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
    _feed,
    _torch_threads_restored,
    alternating,
    daemon_rate,
    daemon_settings,
    loop_only_daemon,
    mnist_arrays,
    paired_ratio,
    raw_rate,
)
from lifelong.config import KafkaConfig  # noqa: E402
from lifelong.stream.broker import EmbeddedBroker  # noqa: E402

#: What each kind records: its rate, the CPU per event of the process that reads the socket, its speed-up.
#: raw: the client alone in this process; loop: the daemon whose learner answers at once; end_to_end: the daemon.
METRICS = {
    "raw": ("raw_events_per_s", "client_cpu_us_per_event", "speedup_over_4k_reads"),
    "loop": ("loop_events_per_s", "loop_fetch_process_cpu_us_per_event", "loop_speedup_over_4k_reads"),
    "end_to_end": ("end_to_end_events_per_s", "end_to_end_fetch_process_cpu_us_per_event",
                   "end_to_end_speedup_over_4k_reads"),
}
KINDS = tuple(METRICS)


def speedups(rates: dict[int, list[float]], base: int = 0) -> dict[int, float]:
    """Each size's :func:`paired_ratio` over the base's rates in the same rounds."""
    return {chunk: paired_ratio(values, rates[base]) for chunk, values in rates.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="f32 MNIST records fed, and read per run.")
    parser.add_argument("--repeats", type=int, default=5, help="Interleaved rounds over every chunk size.")
    parser.add_argument("--chunks", default="0,262144,1048576",
                        help="Comma list of kafka.recv_chunk_bytes; 0 (kafka-python's own reads) is always added.")
    parser.add_argument("--replay-batch-size", type=int, default=64,
                        help="replay.batch_size of the daemon runs (64: the setting of the Targets' runs).")
    parser.add_argument("--no-record", action="store_true", help="Print only; do not append to results.")
    args = parser.parse_args()
    for name in ("kafka", "lifelong.drift"):  # as lifelong bench: the runs' drift alerts are not the figures
        logging.getLogger(name).setLevel(logging.ERROR)
    from lifelong.daemon.service import Daemon  # torch: imported here, not in the spawned fetch processes

    chunks = sorted({0, *(int(c) for c in args.chunks.split(",") if c.strip())})
    for chunk in chunks:
        KafkaConfig(recv_chunk_bytes=chunk)  # a size the daemon would refuse is refused here, before the feed

    x, y = mnist_arrays(args.records)
    rates: dict[str, dict[int, list[float]]] = {k: {c: [] for c in chunks} for k in KINDS}
    cpu: dict[str, dict[int, list[float]]] = {k: {c: [] for c in chunks} for k in KINDS}
    daemons = {"loop": loop_only_daemon(), "end_to_end": Daemon}
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        topic = f"socket-reads-{uuid.uuid4().hex[:8]}"
        _feed(broker.bootstrap, topic, x, y, 1, progress=True)
        for rnd in range(args.repeats):
            for chunk in alternating(chunks, rnd):
                kafka = KafkaConfig(bootstrap_servers=[broker.bootstrap], topics=[topic], assign=True,
                                    group_id=f"raw-{uuid.uuid4().hex[:8]}", recv_chunk_bytes=chunk)
                raw = raw_rate(kafka, args.records, x.shape[1])
                cpu["raw"][chunk].append(raw.cpu_us_per_event)
                rates["raw"][chunk].append(raw.per_s)
                line = [f"raw {raw.per_s:,.0f} events/s ({cpu['raw'][chunk][-1]:.1f} us CPU/event)"]
                for kind, daemon_type in daemons.items():
                    opts = replace(Options(), recv_chunk_bytes=chunk, replay_batch_size=args.replay_batch_size)
                    settings = daemon_settings(broker.bootstrap, topic, client="kafka-python", model="mlp",
                                               replay="reservoir", features=x.shape[1], n=args.records, opts=opts,
                                               checkpoint_dir=Path(tmp) / uuid.uuid4().hex)
                    with _torch_threads_restored():
                        rate = daemon_rate(settings, daemon_type=daemon_type)
                    rates[kind][chunk].append(rate.per_s)
                    cpu[kind][chunk].append(rate.helper_us_per_event.get("fetch", float("nan")))
                    line.append(f"{kind} {rate.per_s:,.0f} (fetch process {cpu[kind][chunk][-1]:.1f} us)")
                print(f"  round {rnd + 1} recv_chunk_bytes={chunk}: " + ", ".join(line), flush=True)

    gains = {k: speedups(rates[k]) for k in KINDS}
    med = {k: {c: statistics.median(rates[k][c]) for c in chunks} for k in KINDS}
    med_cpu = {k: {c: statistics.median(cpu[k][c]) for c in chunks} for k in KINDS}
    print(f"\nkafka-python, {args.records:,} f32 records, medians of {args.repeats} rounds; events/s, CPU us per "
          "event (raw: this process; loop, end to end: the fetch process), speed-up over 4 KiB reads:")
    for chunk in chunks:
        label = "kafka-python's own (4 KiB)" if chunk == 0 else f"{chunk:,} bytes"
        print(f"  {label:>28}: " + " | ".join(
            f"{kind} {med[kind][chunk]:,.0f} {med_cpu[kind][chunk]:.1f} us x{gains[kind][chunk]:.3f}"
            for kind in KINDS))
    if not args.no_record:
        for chunk in chunks:
            tags = {"client": "kafka-python", "recv_chunk_bytes": chunk, "records": args.records,
                    "repeats": args.repeats, "partitions": 1, "codec": "f32", "model": "mlp",
                    "replay": "reservoir-500", "replay_batch_size": args.replay_batch_size}
            for kind, (rate_name, cpu_name, gain_name) in METRICS.items():
                record("socket_reads", rate_name, med[kind][chunk], "events/s", **tags)
                record("socket_reads", cpu_name, med_cpu[kind][chunk], "us/event", **tags)
                record("socket_reads", gain_name, gains[kind][chunk], "ratio", **tags)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
