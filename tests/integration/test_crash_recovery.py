"""Crash test (issue 5): `kill -9` the daemon at 5 random points of a 50,000-event stream, restart it each time.

Checks, from the daemon's audit log (one line per learned micro-batch, with the offsets it covered):
* every event was trained on at least once;
* an event trained more than once lies after the last checkpoint before a kill (bounded by the checkpoint
  interval per kill);
* with a deterministic CPU config (fixed micro-batches, one thread, seeded), the final weights equal those of an
  uninterrupted run over the same stream, tensor for tensor.
"""

from __future__ import annotations

import os
import random
import signal

import pytest
import torch
from daemon_helpers import blobs, read_audit, start_daemon, trained_offsets, wait_for, write_config

from lifelong.daemon.checkpoint import CheckpointStore
from lifelong.stream.broker import free_port
from lifelong.stream.feed import feed_arrays

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N_EVENTS = 50_000
CHECKPOINT_EVERY = 4_096
KILLS = 5


def config_for(path, bootstrap, topic, group):
    path.mkdir(parents=True, exist_ok=True)
    return write_config(
        path, bootstrap, topic, free_port(),
        kafka={"group_id": group, "assign": True, "max_poll_records": 1000},
        codec={"name": "f32", "num_features": 32},
        model={"name": "mlp", "input_shape": [32], "hidden": [64], "max_classes": 10},
        optim={"name": "sgd", "lr": 0.05, "momentum": 0.9, "batch_size": 32},
        replay={"kind": "reservoir", "capacity": 300, "batch_size": 32},
        strategies=[{"name": "ewc", "lam": 10.0}],
        drift={"detectors": [{"detector": "ADWIN", "signal": "error"}], "reactions": [{"name": "boundary"}]},
        checkpoint={"every_events": CHECKPOINT_EVERY, "every_seconds": 3600, "keep": 2},
        daemon={"device": "cpu", "deterministic": True, "seed": 3, "micro_batch": 256, "max_events": N_EVENTS,
                "audit_log": str(path / "audit.jsonl"), "summary_interval_s": 5},
    )


def final_weights(path, config_digest=""):
    checkpoint = CheckpointStore(path / "ckpt").latest()
    assert checkpoint is not None
    return checkpoint.state["learner"]["model"], checkpoint


def test_kill_nine_five_times_loses_nothing_and_matches_uninterrupted_run(broker, make_topic, tmp_path):
    topic = make_topic(1)
    x, y = blobs(N_EVENTS, seed=1)
    feed_arrays(x, y, topic=topic, bootstrap_servers=broker.bootstrap, codec="f32", progress=False)

    # The interrupted run.
    crash_dir = tmp_path / "crash"
    config = config_for(crash_dir, broker.bootstrap, topic, "crash")
    audit_path = crash_dir / "audit.jsonl"
    log_path = crash_dir / "daemon.log"
    rng = random.Random(1234)
    targets = sorted(rng.sample(range(2_000, N_EVENTS - 2_000), KILLS))
    kill_reports = []

    def position() -> int:
        """The offset after the last event learned (the audit log's last line)."""
        audit = read_audit(audit_path)
        return audit[-1]["ends"][0][2] if audit else 0

    for target in targets:
        proc = start_daemon(config, log_path)
        reached = wait_for(lambda t=target: position() >= t, timeout=180, proc=proc, log_path=log_path,
                           interval=0.02)
        assert reached, log_path.read_text()[-3000:]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        checkpoint = CheckpointStore(crash_dir / "ckpt").latest()
        kill_reports.append((position(), checkpoint.offsets.get((topic, 0), 0) if checkpoint else 0))
    proc = start_daemon(config, log_path)
    assert proc.wait(timeout=300) == 0, log_path.read_text()[-3000:]

    counts = trained_offsets(read_audit(audit_path))
    missing = [o for o in range(N_EVENTS) if counts[(0, o)] == 0]
    assert not missing, f"{len(missing)} events never trained on, first {missing[:5]}"
    duplicated = sorted(o for (_, o), c in counts.items() if c > 1)
    # Every duplicate lies between the last checkpoint before a kill and the kill point.
    allowed = set()
    for learned_at_kill, checkpoint_offset in kill_reports:
        assert learned_at_kill - checkpoint_offset <= CHECKPOINT_EVERY + 2 * 1000, (learned_at_kill, checkpoint_offset)
        allowed.update(range(checkpoint_offset, learned_at_kill))
    stray = [o for o in duplicated if o not in allowed]
    assert not stray, f"events trained twice outside the replay windows: {stray[:10]}"
    assert len(duplicated) <= KILLS * (CHECKPOINT_EVERY + 2 * 1000)
    print(f"\nkills at (events learned, checkpoint offset): {kill_reports}; "
          f"{len(duplicated)} events trained twice (bound {KILLS} x checkpoint interval {CHECKPOINT_EVERY})")

    # The uninterrupted run over the same stream.
    clean_dir = tmp_path / "clean"
    clean_config = config_for(clean_dir, broker.bootstrap, topic, "clean")
    proc = start_daemon(clean_config, clean_dir / "daemon.log")
    assert proc.wait(timeout=300) == 0, (clean_dir / "daemon.log").read_text()[-3000:]

    crashed, crashed_ckpt = final_weights(crash_dir)
    clean, clean_ckpt = final_weights(clean_dir)
    assert crashed_ckpt.offsets == clean_ckpt.offsets == {(topic, 0): N_EVENTS}
    assert crashed.keys() == clean.keys()
    for name in clean:
        assert torch.equal(crashed[name], clean[name]), f"{name} differs after {KILLS} kills"
