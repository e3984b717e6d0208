"""The deployment artefacts against the real daemon (issue 6's acceptance), from one run of `lifelong run`:

* systemd: started with a test NOTIFY_SOCKET and WATCHDOG_USEC, it sends READY=1 once ready, repeated and
  rate-limited WATCHDOG=1, and STOPPING=1 on SIGTERM;
* every metric the Grafana dashboard and the Prometheus rules read appears in its real /metrics;
* `lifelong scrape` records the run and `lifelong report` draws the dashboard's panels from it as a PNG.

The stream: scikit-learn's digits as two concepts (classes 0-4, then 5-9), paced so the recording has a shape,
plus a few malformed records so dead letters are exported.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from daemon_helpers import http_get, write_config
from kafka import KafkaProducer

from lifelong.panels import exposed_names, metric_names
from lifelong.report import EVALUATORS, load_scrapes
from lifelong.stream.admin import create_topic
from lifelong.stream.broker import free_port
from lifelong.stream.feed import feed_arrays

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
WATCHDOG_USEC = 400_000  # the notifier pings at most every 0.2 s
BAD_RECORDS = [b"", b"not an f32 record", b"LF" + b"\x00" * 3]


@dataclass
class Run:
    """What one daemon run left behind."""

    notifications: list[tuple[float, str]]
    scrapes: Path
    report: subprocess.CompletedProcess[str]
    png: Path
    events: int
    exit_code: int
    ready_at_readyz: int
    log: str
    sigterm_at: float = 0.0


def _listen(sock: socket.socket, out: list[tuple[float, str]], stop: threading.Event) -> None:
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            message = sock.recv(4096).decode()
        except TimeoutError:
            continue
        out.append((time.monotonic(), message))  # stamped on arrival


def _config(tmp: Path, bootstrap: str, topic: str, port: int) -> Path:
    return write_config(
        tmp, bootstrap, topic, port,
        kafka={"group_id": "deploy-test"},
        codec={"name": "f32", "num_features": 64},
        model={"name": "mlp", "input_shape": [64], "hidden": [64], "max_classes": 10},
        optim={"name": "sgd", "lr": 0.1, "batch_size": 16},
        replay={"kind": "class_balanced", "capacity": 200, "batch_size": 16},
        drift={"detectors": [{"detector": "ADWIN", "signal": "error"}], "reactions": [{"name": "alert"}],
               "min_events_between": 100},
        metrics={"port": port, "window": 200},
        checkpoint={"every_events": 400, "every_seconds": 2},
        daemon={"device": "cpu", "summary_interval_s": 2, "log_format": "json"},
    )


@pytest.fixture(scope="module")
def run(shared_broker, tmp_path_factory) -> Iterator[Run]:
    from lifelong.datasets import build_scenario

    tmp = tmp_path_factory.mktemp("deploy")
    topic = f"deploy-{os.getpid()}"
    create_topic(shared_broker.bootstrap, topic, 1)
    port = free_port()
    scenario = build_scenario("split", dataset="digits", seed=0, tasks=2, classes_per_task=5)
    x = scenario.x.reshape(len(scenario.y), -1)

    sock_dir = Path(tempfile.mkdtemp(prefix="lifelong-notify-"))  # short path: AF_UNIX names are <108 bytes
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_dir / "notify"))
    notifications: list[tuple[float, str]] = []
    stop_listening = threading.Event()
    listener = threading.Thread(target=_listen, args=(sock, notifications, stop_listening), daemon=True)
    listener.start()

    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NOTIFY_SOCKET": str(sock_dir / "notify"),
           "WATCHDOG_USEC": str(WATCHDOG_USEC)}
    env.pop("WATCHDOG_PID", None)
    log_path = tmp / "daemon.log"
    scrapes = tmp / "scrapes.jsonl"
    url = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "lifelong.cli", "run", "--config", str(_config(tmp, shared_broker.bootstrap,
                                                                                 topic, port))],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp)
    recorder = subprocess.Popen(
        [sys.executable, "-m", "lifelong.cli", "scrape", "--url", url + "/metrics", "--interval", "0.5",
         "--out", str(scrapes), "--stop-after-down", "1.5"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, "NOTIFY_SOCKET": ""})
    try:
        deadline = time.monotonic() + 90
        while not any(m.startswith("READY=1") for _, m in notifications):
            assert time.monotonic() < deadline, "no READY=1 within 90 s:\n" + log_path.read_text()[-3000:]
            assert daemon.poll() is None, log_path.read_text()[-3000:]
            time.sleep(0.05)
        readyz = 0
        for _ in range(40):  # READY=1 goes out as readiness is set: /readyz agrees within moments
            readyz = http_get(url + "/readyz")[0]
            if readyz == 200:
                break
            time.sleep(0.05)

        # Concept 1, a few malformed records, concept 2: paced so the 0.5 s scrapes see the curve.
        half = scenario.task_starts()[1]
        feed_arrays(x[:half], scenario.y[:half], topic=topic, bootstrap_servers=shared_broker.bootstrap,
                    codec="f32", rate=400, progress=False)
        producer = KafkaProducer(bootstrap_servers=[shared_broker.bootstrap], enable_idempotence=False)
        for value in BAD_RECORDS:
            producer.send(topic, value)
        producer.flush()
        producer.close()
        feed_arrays(x[half:], scenario.y[half:], topic=topic, bootstrap_servers=shared_broker.bootstrap,
                    codec="f32", rate=400, progress=False)

        total = len(scenario.y) + len(BAD_RECORDS)
        handled = 0.0
        deadline = time.monotonic() + 60
        while handled < total and time.monotonic() < deadline:
            text = http_get(url + "/metrics")[1]
            handled = sum(s for line in text.splitlines() if line.startswith("lifelong_events_total{")
                          for s in [float(line.rsplit(" ", 1)[1])])
            time.sleep(0.2)
        assert handled == total, log_path.read_text()[-3000:]
        time.sleep(1.5)  # a few more scrapes of the settled state

        sigterm_at = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        exit_code = daemon.wait(timeout=60)
        recorder.wait(timeout=30)  # stops by itself once the daemon is gone (--stop-after-down)
        time.sleep(0.3)
    finally:
        for proc in (daemon, recorder):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        stop_listening.set()
        listener.join()
        sock.close()
        shutil.rmtree(sock_dir, ignore_errors=True)

    png = tmp / "report.png"
    report = subprocess.run([sys.executable, "-m", "lifelong.cli", "report", str(scrapes), "--out", str(png)],
                            capture_output=True, text=True, timeout=120)
    yield Run(notifications, scrapes, report, png, int(handled), exit_code, readyz, log_path.read_text(),
              sigterm_at)


def test_systemd_notifications(run: Run) -> None:
    assert run.exit_code == 0, run.log[-3000:]
    messages = [m for _, m in run.notifications]
    ready = [i for i, m in enumerate(messages) if m.split("\n")[0] == "READY=1"]
    stopping = [i for i, m in enumerate(messages) if m.split("\n")[0] == "STOPPING=1"]
    pings = [t for t, m in run.notifications if m == "WATCHDOG=1"]
    assert len(ready) == 1, messages[:10]
    assert run.ready_at_readyz == 200
    assert stopping and stopping[0] > ready[0]
    stop_time = run.notifications[stopping[0]][0]
    assert stop_time >= run.sigterm_at  # STOPPING=1 answers the SIGTERM, not the end of the stream
    assert len(pings) >= 5, f"{len(pings)} watchdog pings"
    # Rate-limited to half of WATCHDOG_USEC, and still coming while the stream flowed.
    gaps = np.diff(pings)
    assert gaps.min() >= WATCHDOG_USEC / 2 / 1e6 * 0.9, gaps.min()
    assert any(t < stop_time for t in pings)


def _recorded_names() -> set[str]:
    text = (ROOT / "deploy" / "prometheus" / "recording.rules.yml").read_text()
    return {rule["record"] for group in yaml.safe_load(text)["groups"] for rule in group["rules"]}


def _queries() -> dict[str, list[str]]:
    """Every PromQL expression of the dashboard (panels, annotation, variables) and of the rules."""
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "lifelong.json").read_text())
    grafana = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    grafana += [a["expr"] for a in dashboard["annotations"]["list"] if "expr" in a]
    grafana += [v["definition"].removeprefix("label_values(").rsplit(",", 1)[0]
                for v in dashboard["templating"]["list"] if v["type"] == "query"]
    rules = [rule["expr"] for name in ("recording.rules.yml", "alerts.rules.yml")
             for group in yaml.safe_load((ROOT / "deploy" / "prometheus" / name).read_text())["groups"]
             for rule in group["rules"]]
    return {"dashboard": grafana, "rules": rules}


def test_every_queried_metric_is_in_the_real_scrape(run: Run) -> None:
    lines = [json.loads(line) for line in run.scrapes.read_text().splitlines()]
    answered = [line for line in lines if line["up"] == 1]
    assert answered, "the recorder never reached /metrics"
    exposed = exposed_names(answered[-1]["text"])
    sampled = {line.split("{")[0].split(" ")[0] for line in answered[-1]["text"].splitlines()
               if line and not line.startswith("#")}
    recorded = _recorded_names()
    for source, exprs in _queries().items():
        used = set().union(*(metric_names(expr) for expr in exprs)) - recorded - {"up"}
        assert len(used) >= 5, source
        missing = used - exposed
        assert not missing, f"{source} reads metrics the daemon does not export: {sorted(missing)}"
        # Not just declared: after this run each one has a real sample (lag needs a lag estimate).
        unsampled = used - sampled - {"lifelong_consumer_lag_messages"}
        assert not unsampled, f"{source}: declared but never sampled in this run: {sorted(unsampled)}"


def test_report_draws_the_run(run: Run) -> None:
    assert run.report.returncode == 0, run.report.stderr
    assert run.png.exists() and run.png.stat().st_size > 50_000
    from PIL import Image

    with Image.open(run.png) as image:
        assert image.format == "PNG" and image.size[0] >= 1500
    rec = load_scrapes(run.scrapes)
    assert rec.up[0] in (0, 1) and rec.up[-1] == 0 and rec.up.sum() >= 10  # recorded until the daemon left
    window = 4 * rec.interval
    classes = {line.labels["class"] for line in EVALUATORS["class_accuracy"](rec, window)
               if np.isfinite(line.values).any()}
    assert classes == {str(c) for c in range(10)}
    trained = [line for line in EVALUATORS["events_rate"](rec, window) if line.labels["outcome"] == "trained"]
    assert np.nanmax(trained[0].values) > 50
    dead = EVALUATORS["dead_letters"](rec, window)
    assert dead and sum(np.nanmax(line.values) > 0 for line in dead) >= 1
    (age,) = EVALUATORS["checkpoint_now"](rec, window)
    assert 0 <= np.nanmin(age.values) < 10
