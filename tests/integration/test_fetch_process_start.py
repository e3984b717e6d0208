"""A script that starts the daemon with ``daemon.fetcher: process`` at import time (no ``__main__`` guard) must
fail at once with a message that says so, not spawn children of children or retry forever; the same script
with the guard runs on the real broker and exits cleanly."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from lifelong.stream.broker import EmbeddedBroker

pytestmark = pytest.mark.integration

SCRIPT = """
from lifelong.config import Settings
from lifelong.daemon.service import Daemon

settings = Settings(kafka={{"bootstrap_servers": [{bootstrap!r}], "topics": [{topic!r}], "assign": True}},
                    metrics={{"port": 0}}, checkpoint={{"dir": {ckpt!r}}},
                    daemon={{"device": "cpu", "fetcher": "process", "prefetch": 2, "idle_exit_s": 2}})
{start}
"""


def run_script(tmp_path: Path, bootstrap: str, topic: str, start: str) -> subprocess.CompletedProcess:
    script = tmp_path / "embed.py"
    script.write_text(SCRIPT.format(bootstrap=bootstrap, topic=topic, ckpt=str(tmp_path / "ckpt"),
                                    start=textwrap.dedent(start)))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)


def test_an_unguarded_main_module_fails_fast_and_says_why(
    shared_broker: EmbeddedBroker, make_topic: Callable[..., str], tmp_path: Path,
) -> None:
    done = run_script(tmp_path, shared_broker.bootstrap, make_topic(1),
                      "Daemon(settings, install_signal_handlers=False).run()\n")
    assert done.returncode != 0
    assert "FetchProcessFailed: daemon.fetcher: process starts its fetch processes" in done.stderr  # the child
    assert str(tmp_path / "embed.py") in done.stderr  # names the module to fix
    assert "FetchProcessFailed: fetch process 0 exited with code 1 before it was ready" in done.stderr  # the parent
    assert "cannot reach Kafka" not in done.stderr  # not taken for a broker error and retried


def test_a_guarded_main_module_runs_and_exits_cleanly(
    shared_broker: EmbeddedBroker, make_topic: Callable[..., str], tmp_path: Path,
) -> None:
    done = run_script(tmp_path, shared_broker.bootstrap, make_topic(1), """
        if __name__ == "__main__":
            Daemon(settings, install_signal_handlers=False).run()
        """)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "FetchProcessFailed" not in done.stderr
