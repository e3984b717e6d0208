"""Why the daemon keeps one admin client: a question to the cluster on a client of its own, and on one kept open.

The daemon asks the cluster for its topic IDs every 15 s (and at each assignment, and after an outage), whether
its topics and dead-letter topics exist, and creates missing dead-letter topics. Each question used to open a
KafkaAdminClient and close it again: a connection, an ApiVersions and a metadata round trip, and with SASL_SSL a
TLS handshake and an authentication each time. This asks the daemon's topic-ID question ``--questions`` times
both ways, in alternation, against the embedded broker, and prints and records the median milliseconds per
question and their ratio. Plaintext on localhost: the cheapest case for a client of its own.

    python benchmarks/admin_questions.py [--questions 60]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lifelong.bench.results import record  # noqa: E402
from lifelong.config import KafkaConfig  # noqa: E402
from lifelong.stream.admin import ClusterAdmin, create_topic, topic_ids  # noqa: E402
from lifelong.stream.broker import EmbeddedBroker  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=60, help="questions asked each way")
    args = parser.parse_args()
    with EmbeddedBroker() as broker:
        create_topic(broker.bootstrap, "events", 4)
        cfg = KafkaConfig(bootstrap_servers=[broker.bootstrap], topics=["events"])
        own, kept = [], []
        with ClusterAdmin(cfg) as cluster:
            cluster.topic_ids(["events"])  # opened once, as the daemon does at its first assignment
            for _ in range(args.questions):
                start = time.perf_counter()
                topic_ids(cfg, ["events"])
                own.append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                cluster.topic_ids(["events"])
                kept.append((time.perf_counter() - start) * 1000)
    own_ms, kept_ms = statistics.median(own), statistics.median(kept)
    tags = {"questions": args.questions, "broker": "tansu", "security": "PLAINTEXT", "question": "topic_ids"}
    print(f"client of its own  {own_ms:6.2f} ms per question (median of {args.questions})")
    print(f"kept client        {kept_ms:6.2f} ms per question")
    print(f"own / kept         {own_ms / kept_ms:6.2f}x")
    record("admin_questions", "own_client_ms_per_question", round(own_ms, 3), "ms", **tags)
    record("admin_questions", "kept_client_ms_per_question", round(kept_ms, 3), "ms", **tags)
    record("admin_questions", "own_over_kept", round(own_ms / kept_ms, 3), "ratio", **tags)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
