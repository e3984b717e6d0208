"""lifelong.bench.process_cpu: the CPU of the processes a benchmark started, by role, from /proc."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from lifelong.bench import process_cpu

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="/proc is Linux's")

BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass\ntime.sleep(30)\n"


def test_a_busy_child_is_found_and_its_cpu_counted() -> None:
    child = subprocess.Popen([sys.executable, "-c", BURN.format(s=0.6)])
    try:
        before = process_cpu.sample()
        assert child.pid in process_cpu.descendants()
        assert before[child.pid][0] == "other"  # not the broker, not a multiprocessing spawn child
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            after = process_cpu.sample()
            if after[child.pid][1] - before[child.pid][1] >= 0.3:
                break
            time.sleep(0.05)
        spent = process_cpu.cpu_by_role(before, after)
        assert 0.3 <= spent["other"] <= 1.0
        assert spent["fetch"] == spent["broker"] == 0.0
    finally:
        child.kill()
        child.wait()


def test_processes_that_start_or_end_between_samples_are_left_out() -> None:
    before = {1: ("fetch", 5.0), 2: ("broker", 1.0), 4: ("other", 0.5)}
    # 1 ended, 3 started: neither has a measured span; 4 was caught before its exec: the later role counts
    after = {2: ("broker", 3.5), 3: ("fetch", 9.0), 4: ("fetch", 2.0)}
    assert process_cpu.cpu_by_role(before, after) == {"fetch": 1.5, "broker": 2.5, "other": 0.0}

