"""`lifelong run` as a real subprocess against the real broker (issue 3's acceptance).

20,000 MNIST records of a two-concept stream (classes 0-4, then 5-9) are fed while the daemon runs; /metrics is
scraped over HTTP during and after; SIGTERM must exit 0 with every offset committed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml
from kafka import KafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from lifelong.stream.broker import free_port
from lifelong.stream.feed import feed_arrays

pytestmark = pytest.mark.integration

N_EVENTS = 20_000


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def by_name(scrape: dict, name: str) -> dict[tuple, float]:
    return {labels: value for (n, labels), value in scrape.items() if n == name}


def write_config(tmp_path: Path, bootstrap: str, topic: str, port: int, **extra) -> Path:
    config = {
        "kafka": {"bootstrap_servers": [bootstrap], "topics": [topic], "group_id": "daemon-test",
                  "session_timeout_ms": 6000, "heartbeat_interval_ms": 2000, "poll_timeout_ms": 5000},
        "codec": {"name": "f32", "num_features": 784},
        "model": {"name": "mlp", "input_shape": [784], "hidden": [256], "max_classes": 10},
        "optim": {"name": "sgd", "lr": 0.05, "batch_size": 32},
        "replay": {"kind": "class_balanced", "capacity": 500, "batch_size": 32},
        "drift": {"detectors": [{"detector": "ADWIN", "signal": "error"}], "reactions": [{"name": "alert"}]},
        "metrics": {"port": port, "window": 1000},
        "checkpoint": {"dir": str(tmp_path / "ckpt"), "every_events": 5000, "every_seconds": 30},
        "daemon": {"device": "auto", "summary_interval_s": 2, "log_format": "json"},
    }
    for section, values in extra.items():
        config.setdefault(section, {}).update(values)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def two_concept_stream():
    from lifelong.datasets import build_scenario

    scenario = build_scenario("split", dataset="mnist", seed=0, tasks=2, classes_per_task=5, limit=N_EVENTS)
    assert len(scenario.y) == N_EVENTS
    return scenario


def test_daemon_learns_exports_and_stops_cleanly(broker, make_topic, tmp_path, two_concept_stream):
    topic = make_topic(2)
    port = free_port()
    config = write_config(tmp_path, broker.bootstrap, topic, port)
    log_path = tmp_path / "daemon.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "lifelong.cli", "run", "--config", str(config)],
                                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    base = f"http://127.0.0.1:{port}"
    try:
        # /readyz is 503 until the model is loaded and partitions are assigned, then 200.
        statuses = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                statuses.append(http_get(base + "/readyz")[0])
            except OSError:
                pass  # server not up yet
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
