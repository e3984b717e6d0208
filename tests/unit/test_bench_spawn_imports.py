"""Benchmark scripts that start the daemon's fetch processes stay torch-free at import.

multiprocessing's spawn re-imports the parent's main script in every child (as ``__mp_main__``): a script that
imports torch at the top puts torch into each fetch process, which then measures (start-up, memory, CPU) unlike
the daemon's own fetch processes, whose parent (``lifelong.cli``) does not import torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPAWNING = ["loop_ceiling.py", "stream_throughput.py", "soak.py", "throughput.py"]


@pytest.mark.parametrize("script", SPAWNING)
def test_a_fetch_process_importing_the_script_does_not_import_torch(script: str) -> None:
    probe = ("import runpy, sys; runpy.run_path(sys.argv[1], run_name='__mp_main__'); "
             "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe, str(ROOT / "benchmarks" / script)], capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_the_daemon_cli_does_not_import_torch() -> None:
    out = subprocess.run([sys.executable, "-c", "import sys, lifelong.cli; print('torch' in sys.modules)"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
