"""`lifelong check-config --connect` against the real broker: what the daemon would meet, before it is started."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from daemon_helpers import Running, daemon_settings, fed_topic
from typer.testing import CliRunner

from lifelong.cli import app
from lifelong.daemon.checkpoint import DirectoryLock
from lifelong.daemon.service import Daemon
from lifelong.stream.broker import EmbeddedBroker

pytestmark = pytest.mark.integration

N, FEATURES = 200, 16


def check(tmp_path: Path, kafka: dict, port: int = 0) -> tuple[int, str]:
    config = {"kafka": kafka, "codec": {"name": "f32", "num_features": FEATURES},
              "model": {"name": "mlp", "input_shape": [FEATURES], "hidden": [16], "max_classes": 10},
              "metrics": {"port": port}, "checkpoint": {"dir": str(tmp_path / "ckpt")}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(app, ["check-config", str(path), "--connect"])
    return result.exit_code, " ".join(result.output.split())  # rich wraps the table's cells


def test_what_the_daemon_would_meet_is_said_before_it_starts(
    shared_broker: EmbeddedBroker, make_topic: Callable[..., str], tmp_path: Path,
) -> None:
    topic = make_topic(2)
    kafka = {"bootstrap_servers": [shared_broker.bootstrap], "topics": [topic, "absent-topic"]}
    code, output = check(tmp_path, kafka)
    assert code == 0, output
    assert f"topic {topic} ok 2 partitions, topic ID " in output
    assert "topic absent-topic warn not on the cluster" in output
    assert f"dead-letter topic {topic}.dlq ok missing: the daemon creates it at start" in output
    assert "checkpoint.dir ok" in output and "does not exist yet: created at start, which starts fresh" in output
    assert "metrics.port ok 0: the daemon picks a free port" in output


def test_the_checkpoint_a_daemon_would_resume_from_is_named(
    shared_broker: EmbeddedBroker, make_topic: Callable[..., str], tmp_path: Path,
) -> None:
    topic, _, _ = fed_topic(shared_broker.bootstrap, make_topic, N, FEATURES)
    daemon = Daemon(daemon_settings(shared_broker.bootstrap, topic, tmp_path / "ckpt", FEATURES),
                    install_signal_handlers=False)
    with Running(daemon) as run:
        assert run.wait()
    code, output = check(tmp_path, {"bootstrap_servers": [shared_broker.bootstrap], "topics": [topic]})
    assert code == 0, output
    assert f"checkpoint.dir ok resumes from ckpt-000000000001.pt: {N} events learned, offsets {topic}[0]@{N}" in output
    assert f"dead-letter topic {topic}.dlq ok " in output and "partitions" in output.split(f"{topic}.dlq ok ")[1][:20]


def test_what_would_stop_the_daemon_fails_the_check(tmp_path: Path) -> None:
    (tmp_path / "ckpt").mkdir()
    held = DirectoryLock(tmp_path / "ckpt")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        try:
            code, output = check(tmp_path, {"bootstrap_servers": ["127.0.0.1:1"], "bootstrap_timeout_ms": 1000},
                                 port=taken.getsockname()[1])
        finally:
            held.release()
    assert code == 1, output
    assert "kafka fail cannot reach 127.0.0.1:1" in output
    assert "checkpoint.dir fail" in output and "in use by another daemon" in output
    assert "metrics.port fail" in output and "Address already in use" in output
    assert "not ready to run: kafka, checkpoint.dir, metrics.port" in output
