"""Checkpoints: atomic, checksummed, safe to load; a corrupt or incompatible one falls back to the one before."""

from pathlib import Path

import numpy as np
import pytest
import torch

from lifelong.daemon.checkpoint import CheckpointError, CheckpointStore


def state(value: float) -> dict:
    return {"learner": {"w": torch.full((3,), value)}, "window": np.arange(4.0)}


def test_round_trip_keeps_offsets_and_numpy(tmp_path):
    store = CheckpointStore(tmp_path, keep=2, config_digest="abc")
    store.save(state(1.0), {("t", 0): 10, ("t.x", 3): 7})
    latest = store.latest()
    assert latest.offsets == {("t", 0): 10, ("t.x", 3): 7}
    assert torch.equal(latest.state["learner"]["w"], torch.ones(3))
    assert np.array_equal(np.asarray(latest.state["window"]), np.arange(4.0))


def test_keeps_last_k(tmp_path):
    store = CheckpointStore(tmp_path, keep=2)
    for i in range(5):
        store.save(state(float(i)), {("t", 0): i})
    assert [seq for seq, _ in store.paths()] == [5, 4]
    assert store.latest().offsets == {("t", 0): 4}


def test_corrupt_latest_falls_back(tmp_path, caplog):
    store = CheckpointStore(tmp_path, keep=3)
    store.save(state(1.0), {("t", 0): 1})
    newest = store.save(state(2.0), {("t", 0): 2})
    data = bytearray(newest.read_bytes())
    data[-10] ^= 0xFF
    newest.write_bytes(bytes(data))
    latest = store.latest()
    assert latest.offsets == {("t", 0): 1}
    assert "checksum mismatch" in caplog.text


def test_incompatible_config_refused(tmp_path):
    CheckpointStore(tmp_path, config_digest="aaa").save(state(1.0), {})
    other = CheckpointStore(tmp_path, config_digest="bbb")
    with pytest.raises(CheckpointError, match="incompatible config"):
        other.read(other.paths()[0][1])
    assert other.latest() is None


def test_arbitrary_objects_are_refused(tmp_path):
    store = CheckpointStore(tmp_path)
    path = store.save({"learner": {}}, {})
    import collections
    import fractions
    import hashlib
    import io

    buffer = io.BytesIO()
    payload = {"format": 1, "config_digest": "", "offsets": {}, "x": collections.OrderedDict(a=1),
               "y": fractions.Fraction(1, 3)}
    torch.save(payload, buffer)
    data = buffer.getvalue()
    path.write_bytes(b"LIFELONG-CKPT-1\n" + hashlib.sha256(data).hexdigest().encode() + b"\n" + data)
    with pytest.raises(CheckpointError, match="safe loader"):
        store.read(path)


def test_one_daemon_per_checkpoint_dir_and_a_killed_one_leaves_no_stale_lock(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    from lifelong.daemon.checkpoint import DirectoryInUse, DirectoryLock

    script = ("import time; from pathlib import Path; from lifelong.daemon.checkpoint import DirectoryLock; "
              f"lock = DirectoryLock(Path({str(tmp_path)!r})); print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(DirectoryInUse, match=f"pid {holder.pid} on "):
            DirectoryLock(tmp_path)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    lock = DirectoryLock(tmp_path)  # the kernel released it with the process
    lock.release()
    DirectoryLock(tmp_path).release()  # and a released lock can be taken again
