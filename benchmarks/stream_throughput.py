"""Consume + decode throughput of the stream layer against the embedded broker (issue 2).

Feeds N records of 784 float32 features (MNIST-sized) per codec into a one-partition topic, then times a fresh
consumer reading and decoding all of them (``decode_records`` with validation, as the daemon does), for each
client: kafka-python (``StreamConsumer``) and confluent-kafka (``ConfluentStreamConsumer``) when importable.
Median of ``--repeats`` runs; figures go to benchmarks/results.jsonl via ``lifelong.bench.results.record``.

Target: f32 with kafka-python >= 20,000 records/s on 2 CPU cores (``f32_kafka_python_records_per_s``).

    python benchmarks/stream_throughput.py                 # 50,000 records, f32 and json, both clients
    python benchmarks/stream_throughput.py --records 10000 --codecs f32 --clients kafka-python --no-record
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

import numpy as np

from lifelong.bench.results import record
from lifelong.config import KafkaConfig
from lifelong.stream.broker import EmbeddedBroker
from lifelong.stream.codecs import decode_records, get_codec
from lifelong.stream.consumer import open_consumer
from lifelong.stream.feed import feed_arrays

FEATURES = 784


def available_clients(wanted: list[str]) -> list[str]:
    out = []
    for client in wanted:
        if client == "confluent":
            try:
                import confluent_kafka  # noqa: F401
            except ImportError:
                print("confluent-kafka is not installed: skipping that client")
                continue
        out.append(client)
    return out


def consume_once(bootstrap: str, topic: str, client: str, codec_name: str, n: int, max_poll_records: int,
                 ) -> tuple[float, int]:
    """Seconds to consume and decode ``n`` records with a fresh consumer (assign mode: no group join)."""
    cfg = KafkaConfig(bootstrap_servers=[bootstrap], topics=[topic], group_id=f"bench-{uuid.uuid4().hex[:8]}",
                      client=client, assign=True, max_poll_records=max_poll_records, poll_timeout_ms=1000)
    codec = get_codec(codec_name)
    consumer = open_consumer(cfg)
    try:
        got = nbytes = 0
        start = time.perf_counter()
        deadline = start + 600
        while got < n and time.perf_counter() < deadline:
            records = consumer.poll()
            if not records:
                continue
            batch = decode_records(records, codec, num_features=FEATURES, max_classes=10)
            if batch.bad:
                raise RuntimeError(f"{len(batch.bad)} bad records: {batch.bad[0].reason}")
            got += len(batch)
            nbytes += sum(len(r.value) for r in records)
        seconds = time.perf_counter() - start
    finally:
        consumer.close()
    if got != n:
        raise RuntimeError(f"read {got} of {n} records")
    return seconds, nbytes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--codecs", default="f32,json")
    parser.add_argument("--clients", default="kafka-python,confluent")
    parser.add_argument("--max-poll-records", type=int, default=4096)
    parser.add_argument("--no-record", action="store_true", help="print only, do not append to results.jsonl")
    args = parser.parse_args(argv)

    codecs = [c.strip() for c in args.codecs.split(",") if c.strip()]
    clients = available_clients([c.strip() for c in args.clients.split(",") if c.strip()])
    n = args.records
    rng = np.random.default_rng(0)
    x = rng.random((n, FEATURES), dtype=np.float32)  # dense random values: the worst case for json's size
    y = rng.integers(0, 10, n)

    rows = []
    with EmbeddedBroker() as broker:
        print(f"embedded broker at {broker.bootstrap}; {n:,} records x {FEATURES} float32 per codec")
        for codec_name in codecs:
            topic = f"bench-{codec_name}"
            fed = feed_arrays(x, y, topic=topic, bootstrap_servers=broker.bootstrap, codec=codec_name,
                              partitions=1, keys="none", progress=False)
            print(f"fed {codec_name}: {fed.records:,} records, {fed.bytes / 1e6:,.1f} MB "
                  f"in {fed.seconds:,.1f} s ({fed.records_per_s:,.0f}/s)")
            for client in clients:
                runs = [consume_once(broker.bootstrap, topic, client, codec_name, n, args.max_poll_records)
                        for _ in range(args.repeats)]
                seconds = statistics.median(s for s, _ in runs)
                nbytes = runs[0][1]
                rps, mbps = n / seconds, nbytes / 1e6 / seconds
                rows.append((codec_name, client, rps, mbps, [n / s for s, _ in runs]))
                if not args.no_record:
                    key = f"{codec_name}_{client.replace('-', '_')}"
                    settings = {"codec": codec_name, "client": client, "records": n, "features": FEATURES,
                                "repeats": args.repeats, "broker": "tansu-embedded"}
                    record("stream_throughput", f"{key}_records_per_s", round(rps, 1), "records/s",
                           **settings)
                    record("stream_throughput", f"{key}_mb_per_s", round(mbps, 2), "MB/s", **settings)

    print()
    print(f"{'codec':<6} {'client':<14} {'records/s':>12} {'MB/s':>8}   runs (records/s)")
    for codec_name, client, rps, mbps, each in rows:
        runs = ", ".join(f"{v:,.0f}" for v in each)
        print(f"{codec_name:<6} {client:<14} {rps:>12,.0f} {mbps:>8.1f}   {runs}")


if __name__ == "__main__":
    main()
