"""`lifelong run` with a setting it cannot start with: one line naming the key and why, exit 2, no traceback.
Both are found before any broker is contacted (the config points at a closed port)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lifelong.cli import app


@pytest.fixture(autouse=True)
def logging_restored() -> Iterator[None]:
    """`lifelong run` sets up the process's logging (a handler on CliRunner's stderr, kafka-python quiet)."""
    root, kafka = logging.getLogger(), logging.getLogger("kafka")
    handlers, level, kafka_level = root.handlers[:], root.level, kafka.level
    yield
    root.handlers[:], root.level = handlers, level
    kafka.setLevel(kafka_level)


def run(tmp_path: Path, **sections: dict) -> tuple[int, str]:
    config = {"kafka": {"bootstrap_servers": ["127.0.0.1:1"]}, "metrics": {"port": 0},
              "checkpoint": {"dir": str(tmp_path / "ckpt")}, **sections}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(app, ["run", "--config", str(path), "--idle-exit", "1"])
    return result.exit_code, result.output


def test_a_checkpoint_dir_that_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    code, output = run(tmp_path, checkpoint={"dir": str(tmp_path / "file" / "ckpt")})
    assert code == 2, output
    assert "cannot start: checkpoint.dir" in output and "Traceback" not in output


def test_a_metrics_port_already_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, output = run(tmp_path, metrics={"port": port})
    assert code == 2, output
    assert f"cannot start: metrics.port: 127.0.0.1:{port}" in output and "another daemon" in output


def test_a_checkpoint_dir_of_another_model_is_not_taken_over(tmp_path: Path) -> None:
    """Starting fresh there would prune the other model's checkpoints after checkpoint.keep new ones."""
    from lifelong.daemon.checkpoint import CheckpointStore

    CheckpointStore(tmp_path / "ckpt", config_digest="another-model").save({"learner": {}}, {})
    code, output = run(tmp_path)
    assert code == 2, output
    assert "cannot start: checkpoint.dir" in output and "of another shape" in output
    assert len(list((tmp_path / "ckpt").glob("ckpt-*.pt"))) == 1  # left as it was


def test_a_checkpoint_dir_another_daemon_holds(tmp_path: Path) -> None:
    """Two daemons on one folder would number their checkpoints alike and resume from each other's."""
    import os

    from lifelong.daemon.checkpoint import DirectoryLock

    (tmp_path / "ckpt").mkdir()
    held = DirectoryLock(tmp_path / "ckpt")
    try:
        code, output = run(tmp_path)
    finally:
        held.release()
    assert code == 2, output
    said = " ".join(output.split())  # rich wraps the line at the terminal's width
    assert "cannot start: checkpoint.dir" in said and "in use by another daemon" in said
    assert f"pid {os.getpid()} on " in said and "Traceback" not in said


def test_feed_with_no_broker_at_the_address_says_so(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"kafka": {"bootstrap_timeout_ms": 1000}}))
    result = CliRunner().invoke(app, ["feed", "-b", "127.0.0.1:1", "-t", "x", "-d", "digits", "--limit", "10",
                                      "--config", str(path), "--no-progress"])
    said = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert "feed failed: cannot reach Kafka at 127.0.0.1:1" in said and "lifelong broker" in said
    assert "Traceback" not in said
