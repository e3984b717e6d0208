"""What kafka.recv_chunk_bytes is worth: kafka-python with its own 4 KiB socket reads against larger chunks
(lifelong.stream.socket_reads), on the same topic, round by round.

For each chunk size (0 is kafka-python's own read loop), interleaved and in alternating order each round:
(raw) consume and decode every record of a one-partition f32 MNIST topic with a fresh group in this process, as
``lifelong bench``'s (a) does; (loop) the daemon with its fetch process, whose learner answers every event at
once (``benchmarks/loop_ceiling.py``): the rate a learner that costs nothing, or a GPU's, would be held to, and
the fetch process's CPU per event. Prints and records each size's medians and its speed-up over kafka-python's
own reads in the same rounds. Where the learner sets the daemon's rate (a float32 MLP on two cores) the
reads change little end to end; ``lifelong bench --ablation`` measures that with ``recv_chunk_bytes=0``.

    python benchmarks/socket_reads.py [--records 100000] [--repeats 5] [--chunks 0,262144,1048576]
                                      [--no-record]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lifelong.bench.results import record  # noqa: E402
from lifelong.bench.throughput import (  # noqa: E402
    Options,
    _feed,
    _torch_threads_restored,
    daemon_rate,
    daemon_settings,
    loop_only_daemon,
    mnist_arrays,
    raw_rate,
)
from lifelong.config import KafkaConfig  # noqa: E402
from lifelong.stream.broker import EmbeddedBroker  # noqa: E402


def rounds_order(chunks: list[int], rnd: int) -> list[int]:
    """Every chunk once per round, reversed on odd rounds: no size always runs first (on a cold cache)."""
    return chunks if rnd % 2 == 0 else chunks[::-1]


def speedups(rates: dict[int, list[float]], base: int = 0) -> dict[int, float]:
    """Each size's median of its per-round rate over the base's in the same round."""
    return {chunk: statistics.median(v / b for v, b in zip(values, rates[base], strict=True))
            for chunk, values in rates.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="f32 MNIST records fed, and read per run.")
    parser.add_argument("--repeats", type=int, default=5, help="Interleaved rounds over every chunk size.")
    parser.add_argument("--chunks", default="0,262144,1048576",
                        help="Comma list of kafka.recv_chunk_bytes; 0 (kafka-python's own reads) is always added.")
    parser.add_argument("--no-record", action="store_true", help="Print only; do not append to results.")
    args = parser.parse_args()
    chunks = sorted({0, *(int(c) for c in args.chunks.split(",") if c.strip())})
    for chunk in chunks:
        KafkaConfig(recv_chunk_bytes=chunk)  # a size the daemon would refuse is refused here, before the feed

    x, y = mnist_arrays(args.records)
    kinds = ("raw", "loop")
    rates = {k: {c: [] for c in chunks} for k in kinds}
    cpu = {k: {c: [] for c in chunks} for k in kinds}  # raw: this process; loop: the fetch process
    loop_only = loop_only_daemon()
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        topic = f"socket-reads-{uuid.uuid4().hex[:8]}"
        _feed(broker.bootstrap, topic, x, y, 1, progress=True)
        for rnd in range(args.repeats):
            for chunk in rounds_order(chunks, rnd):
                kafka = KafkaConfig(bootstrap_servers=[broker.bootstrap], topics=[topic], assign=True,
                                    group_id=f"raw-{uuid.uuid4().hex[:8]}", recv_chunk_bytes=chunk)
                start = time.process_time()
                raw = raw_rate(kafka, args.records, x.shape[1])
                cpu["raw"][chunk].append((time.process_time() - start) / max(raw.events, 1) * 1e6)
                rates["raw"][chunk].append(raw.per_s)
                settings = daemon_settings(broker.bootstrap, topic, client="kafka-python", model="mlp",
                                           replay="reservoir", features=x.shape[1], n=args.records,
                                           opts=replace(Options(), recv_chunk_bytes=chunk),
                                           checkpoint_dir=Path(tmp) / uuid.uuid4().hex)
                with _torch_threads_restored():
                    loop = daemon_rate(settings, daemon_type=loop_only)
                rates["loop"][chunk].append(loop.per_s)
                cpu["loop"][chunk].append(loop.helper_us_per_event.get("fetch", float("nan")))
                print(f"  round {rnd + 1} recv_chunk_bytes={chunk}: raw {raw.per_s:,.0f} events/s "
                      f"({cpu['raw'][chunk][-1]:.1f} us CPU/event), loop {loop.per_s:,.0f} events/s "
                      f"(fetch process {cpu['loop'][chunk][-1]:.1f} us CPU/event)", flush=True)

    gains = {k: speedups(rates[k]) for k in kinds}
    med = {k: {c: statistics.median(rates[k][c]) for c in chunks} for k in kinds}
    med_cpu = {k: {c: statistics.median(cpu[k][c]) for c in chunks} for k in kinds}
    print(f"\nkafka-python, {args.records:,} f32 records, medians of {args.repeats} rounds "
          "(raw: consume+decode in one process; loop: the daemon, learning at no cost, with its fetch process):")
    for chunk in chunks:
        label = "kafka-python's own (4 KiB)" if chunk == 0 else f"{chunk:,} bytes"
        print(f"  {label:>28}: raw {med['raw'][chunk]:>7,.0f} events/s {med_cpu['raw'][chunk]:5.1f} us CPU "
              f"x{gains['raw'][chunk]:.3f} | loop {med['loop'][chunk]:>7,.0f} events/s, fetch process "
              f"{med_cpu['loop'][chunk]:5.1f} us CPU x{gains['loop'][chunk]:.3f}")
    if not args.no_record:
        for chunk in chunks:
            tags = {"client": "kafka-python", "recv_chunk_bytes": chunk, "records": args.records,
                    "repeats": args.repeats, "partitions": 1, "codec": "f32"}
            record("socket_reads", "raw_events_per_s", med["raw"][chunk], "events/s", **tags)
            record("socket_reads", "client_cpu_us_per_event", med_cpu["raw"][chunk], "us/event", **tags)
            record("socket_reads", "speedup_over_4k_reads", gains["raw"][chunk], "ratio", **tags)
            record("socket_reads", "loop_events_per_s", med["loop"][chunk], "events/s", **tags)
            record("socket_reads", "loop_fetch_process_cpu_us_per_event", med_cpu["loop"][chunk], "us/event", **tags)
            record("socket_reads", "loop_speedup_over_4k_reads", gains["loop"][chunk], "ratio", **tags)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
