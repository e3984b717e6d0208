"""Broker outage (issue 5): stop the broker for 30 s mid-stream, start a new one on the same port.

The daemon must survive, keep /livez at 200, report /readyz 503 during the outage and 200 again after, and go on
learning. Tansu keeps everything in memory, so the new broker has no topic: the test creates it again and feeds the
stream from the start. That is a new log (another topic ID), and its offsets say nothing of what the model learned:
the daemon reads the topic IDs before it learns on after the outage, and learns the new log from its start, every
record of it once. (It used to resume at the position it had learned up to in the old log, which was exact here
only because the stream fed again was the same one; a different one would have had its first 6,000 records
skipped.)
"""

from __future__ import annotations

import signal
import time

import pytest
from daemon_helpers import blobs, http_get, read_audit, scrape, start_daemon, wait_for, write_config

from lifelong.stream.admin import create_topic
from lifelong.stream.broker import free_port
from lifelong.stream.feed import feed_arrays

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_S = 30
FIRST, TOTAL = 6_000, 10_000


def test_daemon_survives_broker_outage(broker, make_topic, tmp_path):
    topic = make_topic(1)
    x, y = blobs(TOTAL, seed=2)
    port = free_port()
    config = write_config(
        tmp_path, broker.bootstrap, topic, port,
        kafka={"group_id": "outage", "reconnect_backoff_max_ms": 1000},
        codec={"name": "f32", "num_features": 32},
        model={"name": "mlp", "input_shape": [32], "hidden": [64], "max_classes": 10},
        checkpoint={"every_events": 1000, "every_seconds": 2},
        metrics={"port": port, "liveness_timeout_s": 10},
        daemon={"audit_log": str(tmp_path / "audit.jsonl"), "summary_interval_s": 2},
    )
    log_path = tmp_path / "daemon.log"
    base = f"http://127.0.0.1:{port}"
    feed_arrays(x[:FIRST], y[:FIRST], topic=topic, bootstrap_servers=broker.bootstrap, progress=False)
    proc = start_daemon(config, log_path)
    try:
        trained = lambda: scrape(port).get(("lifelong_events_total", (("outcome", "trained"),)), 0)  # noqa: E731

        def ready() -> bool:
            try:
                return http_get(base + "/readyz")[0] == 200
            except OSError:
                return False

        assert wait_for(lambda: ready() and trained() >= FIRST, 120, proc, log_path), log_path.read_text()[-3000:]
        time.sleep(3)  # a checkpoint and commit (every 2 s) land with every event learned

        broker.kill()
        outage_started = time.monotonic()
        live, readiness = [], []
        while time.monotonic() - outage_started < OUTAGE_S:
            live.append(http_get(base + "/livez")[0])
            readiness.append(http_get(base + "/readyz")[0])
            assert proc.poll() is None, log_path.read_text()[-3000:]
            time.sleep(0.5)
        assert set(live) == {200}, f"/livez during the outage: {sorted(set(live))}"
        assert 503 in readiness, "readiness never dropped while the broker was down"

        broker.start()  # a fresh, empty broker on the same port
        create_topic(broker.bootstrap, topic, 1)
        feed_arrays(x, y, topic=topic, bootstrap_servers=broker.bootstrap, progress=False)
        assert wait_for(lambda: ready() and trained() >= FIRST + TOTAL, 180, proc, log_path), (
            f"trained={trained()} ready={ready()}\n" + log_path.read_text()[-4000:])
        assert http_get(base + "/livez")[0] == 200
        after = scrape(port)
        assert after[("lifelong_broker_errors_total", ())] >= 0

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log_path.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # The old log's first 6,000 before the outage; then the new log, from its start, each record once.
    audit = read_audit(tmp_path / "audit.jsonl")
    said = [line for line in log_path.read_text().splitlines()
            if any(word in line for word in ("created again", "topic ID", "went back", "assigned", "ready"))]
    assert sum(entry["events"] for entry in audit) == FIRST + TOTAL, (
        [(entry["first_event"], entry["events"], entry["ends"]) for entry in audit[-30:]], said[-20:])
    assert audit[-1]["ends"] == [[topic, 0, TOTAL]]
    assert "was deleted and created again" in log_path.read_text()
