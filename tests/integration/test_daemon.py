"""`lifelong run` as a real subprocess against the real broker (issue 3's acceptance).

20,000 MNIST records of a two-concept stream (classes 0-4, then 5-9) are fed while the daemon runs; /metrics is
scraped over HTTP during and after; SIGTERM must exit 0 with every offset committed.
"""

from __future__ import annotations

import contextlib
import signal
import time

import numpy as np
import pytest
from daemon_helpers import by_name, http_get, samples, start_daemon, write_config
from kafka import KafkaConsumer, TopicPartition

from lifelong.stream.broker import free_port
from lifelong.stream.feed import feed_arrays

pytestmark = pytest.mark.integration

N_EVENTS = 20_000


@pytest.fixture(scope="module")
def two_concept_stream():
    from lifelong.datasets import build_scenario

    scenario = build_scenario("split", dataset="mnist", seed=0, tasks=2, classes_per_task=5, limit=N_EVENTS)
    assert len(scenario.y) == N_EVENTS
    return scenario


def test_daemon_learns_exports_and_stops_cleanly(broker, make_topic, tmp_path, two_concept_stream):
    topic = make_topic(2)
    port = free_port()
    config = write_config(tmp_path, broker.bootstrap, topic, port, kafka={"group_id": "daemon-test"})
    log_path = tmp_path / "daemon.log"
    proc = start_daemon(config, log_path)
    base = f"http://127.0.0.1:{port}"
    try:
        # /readyz is 503 until the model is loaded and partitions are assigned, then 200.
        statuses = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):  # server not up yet
                statuses.append(http_get(base + "/readyz")[0])
            if statuses and statuses[-1] == 200:
                break
            assert proc.poll() is None, log_path.read_text()
            time.sleep(0.05)
        assert statuses and statuses[0] == 503, statuses[:5]
        assert statuses[-1] == 200, log_path.read_text()[-3000:]
        assert http_get(base + "/livez")[0] == 200

        scenario = two_concept_stream
        feed_arrays(scenario.x, scenario.y, topic=topic, bootstrap_servers=broker.bootstrap, codec="f32",
                    progress=False)

        during = None
        deadline = time.monotonic() + 180
        trained = 0.0
        while time.monotonic() < deadline:
            scrape = samples(http_get(base + "/metrics")[1])
            trained = scrape.get(("lifelong_events_total", (("outcome", "trained"),)), 0.0)
            if 0 < trained < N_EVENTS and during is None:
                during = scrape
            if trained >= N_EVENTS:
                break
            assert proc.poll() is None, log_path.read_text()[-3000:]
            time.sleep(0.2)
        assert trained == N_EVENTS, log_path.read_text()[-3000:]
        after = samples(http_get(base + "/metrics")[1])
        assert during is not None, "never scraped the daemon mid-stream"
        assert 0 < sum(by_name(during, "lifelong_predictions_total").values()) < N_EVENTS

        predictions = by_name(after, "lifelong_predictions_total")
        labels_seen = {int(label) for label in np.unique(scenario.y)}
        assert labels_seen == set(range(10))
        for label in labels_seen:
            assert ((("class", str(label)),)) in predictions, f"no series for class {label}"
            assert ("lifelong_class_accuracy_ratio", (("class", str(label)),)) in after
        assert sum(predictions.values()) == N_EVENTS
        accuracy = after[("lifelong_accuracy_ratio", ())]
        assert accuracy > 0.85, f"prequential accuracy over the last window: {accuracy:.3f}"
        print(f"\nprequential accuracy over the last 1,000 events: {accuracy:.3f}; "
              f"predictions counted {sum(predictions.values()):.0f} of {N_EVENTS}")
        assert after[("lifelong_train_step_seconds_count", ())] > 0
        replay = by_name(after, "lifelong_replay_buffer_samples")
        assert sum(replay.values()) == 500
        build = [labels for (name, labels) in after if name == "lifelong_build_info"]
        assert build and dict(build[0])["strategy"] == "class_balanced"
        assert http_get(base + "/nope")[0] == 404

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log_path.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    consumer = KafkaConsumer(bootstrap_servers=[broker.bootstrap], group_id="daemon-test",
                             enable_auto_commit=False)
    try:
        committed = sum(consumer.committed(TopicPartition(topic, p)) or 0 for p in (0, 1))
    finally:
        consumer.close()
    assert committed == N_EVENTS
    log_text = log_path.read_text()
    assert '"msg": "ready: ' in log_text
    assert "stopped after" in log_text
