"""Helpers for tests that run `lifelong run` as a subprocess: config files, HTTP scrapes, the audit log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from prometheus_client.parser import text_string_to_metric_families


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """A scrape as {(sample name, sorted label items): value}."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def by_name(scrape: dict, name: str) -> dict[tuple, float]:
    return {labels: value for (n, labels), value in scrape.items() if n == name}


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    return samples(http_get(f"http://127.0.0.1:{port}/metrics")[1])


def write_config(path: Path, bootstrap: str, topic: str, port: int, **sections: dict[str, Any]) -> Path:
    """A daemon config for tests: test group timeouts, checkpoints under ``path``; sections override keys."""
    config: dict[str, Any] = {
        "kafka": {"bootstrap_servers": [bootstrap], "topics": [topic], "group_id": "test-daemon",
                  "session_timeout_ms": 6000, "heartbeat_interval_ms": 2000, "poll_timeout_ms": 5000},
        "codec": {"name": "f32", "num_features": 784},
        "model": {"name": "mlp", "input_shape": [784], "hidden": [256], "max_classes": 10},
        "optim": {"name": "sgd", "lr": 0.05, "batch_size": 32},
        "replay": {"kind": "class_balanced", "capacity": 500, "batch_size": 32},
        "drift": {"detectors": [{"detector": "ADWIN", "signal": "error"}], "reactions": [{"name": "alert"}]},
        "metrics": {"port": port, "window": 1000},
        "checkpoint": {"dir": str(path / "ckpt"), "every_events": 5000, "every_seconds": 30},
        "daemon": {"device": "auto", "summary_interval_s": 2, "log_format": "json"},
    }
    for section, values in sections.items():
        if isinstance(values, dict) and isinstance(config.get(section), dict):
            config[section].update(values)
        else:
            config[section] = values
    out = path / "config.yaml"
    out.write_text(yaml.safe_dump(config))
    return out


def start_daemon(config: Path, log_path: Path) -> subprocess.Popen:
    log = log_path.open("a")
    return subprocess.Popen([sys.executable, "-m", "lifelong", "run", "--config", str(config)],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def wait_for(predicate, timeout: float, proc: subprocess.Popen | None = None, log_path: Path | None = None,
             interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            tail = log_path.read_text()[-3000:] if log_path else ""
            raise AssertionError(f"daemon exited with {proc.returncode}:\n{tail}")
        time.sleep(interval)
    return False


def read_audit(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


def trained_offsets(audit: list[dict[str, Any]], partition_sizes: dict[int, int] | None = None) -> Counter:
    """How many times each (partition, offset) was trained on, from a single-partition audit log without gaps."""
    counts: Counter = Counter()
    for entry in audit:
        ends = entry["ends"]
        assert len(ends) == 1, "this helper expects one partition"
        _, partition, end = ends[0]
        for offset in range(end - entry["events"], end):
            counts[(partition, offset)] += 1
    return counts


def blobs(n: int, features: int = 32, classes: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A learnable synthetic stream: one Gaussian blob per class."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.0, (classes, features)).astype(np.float32)
    y = rng.integers(0, classes, n)
    x = (centres[y] + rng.normal(0, 0.7, (n, features))).astype(np.float32)
    return x, y.astype(np.int64)


def daemon_settings(bootstrap: str, topic: str | list[str], ckpt: Path, features: int = 16, **sections: dict):
    """Settings for a daemon run in the test's own process: one small MLP over ``features`` f32 features, assigned
    partitions, short polls, the CPU; ``sections`` override keys section by section."""
    from lifelong.config import Settings

    config: dict[str, Any] = {
        "kafka": {"bootstrap_servers": [bootstrap], "topics": [topic] if isinstance(topic, str) else list(topic),
                  "group_id": f"g-{topic if isinstance(topic, str) else topic[0]}", "assign": True,
                  "poll_timeout_ms": 500},
        "codec": {"name": "f32", "num_features": features},
        "model": {"name": "mlp", "input_shape": [features], "hidden": [16], "max_classes": 10},
        "metrics": {"port": 0},
        "checkpoint": {"dir": str(ckpt)},
        "daemon": {"device": "cpu", "idle_exit_s": 3},
    }
    for section, values in sections.items():
        config[section] = {**config.get(section, {}), **values}
    return Settings(**config)


class Running:
    """A Daemon run on a thread for the ``with`` block; stopped and joined on the way out, whatever happened."""

    def __init__(self, daemon: Any, timeout: float = 60) -> None:
        import threading

        self.daemon = daemon
        self.timeout = timeout
        self.thread = threading.Thread(target=daemon.run, daemon=True)

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Until the run ends by itself (max_events, idle_exit_s); True if it did."""
        self.thread.join(self.timeout if timeout is None else timeout)
        return not self.thread.is_alive()

    def __exit__(self, *exc: object) -> None:
        self.daemon.stop()
        self.thread.join(self.timeout)
        assert not self.thread.is_alive(), "the daemon did not stop"


def fed_topic(bootstrap: str, make_topic: Any, n: int, features: int = 16, seed: int = 0
              ) -> tuple[str, np.ndarray, np.ndarray]:
    """A new one-partition topic holding ``n`` f32 records of :func:`blobs`; returns it and the arrays fed."""
    from lifelong.stream.feed import feed_arrays

    topic = make_topic(1)
    x, y = blobs(n, features, seed=seed)
    feed_arrays(x, y, topic=topic, bootstrap_servers=bootstrap, progress=False)
    return topic, x, y
