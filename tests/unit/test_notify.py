"""ServiceNotifier speaks sd_notify to a real datagram socket, like systemd's, and is silent without one."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifelong.daemon.notify import ServiceNotifier, watchdog_interval


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify.sock")
    sock.bind(path)
    sock.settimeout(2.0)
    yield sock, path
    sock.close()


def _drain(sock: socket.socket) -> list[str]:
    out = []
    sock.setblocking(False)
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(2.0)
    return out


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_ready_watchdog_stopping_reach_the_socket(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    clock = FakeClock()
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
    with ServiceNotifier(env=env, clock=clock) as notifier:
        assert notifier.enabled and notifier.watchdog_enabled
        assert notifier.ready(status="consuming")
        assert sock.recv(4096).decode() == "READY=1\nSTATUS=consuming"
        assert notifier.watchdog()
        assert sock.recv(4096).decode() == "WATCHDOG=1"
        assert notifier.stopping()
        assert sock.recv(4096).decode() == "STOPPING=1"
        assert notifier.status("42 events/s\nignored second line")
        assert sock.recv(4096).decode() == "STATUS=42 events/s"
        assert notifier.extend_timeout(1.5)
        assert sock.recv(4096).decode() == "EXTEND_TIMEOUT_USEC=1500000"


def test_watchdog_is_rate_limited_to_half_the_timeout(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    clock = FakeClock()
    notifier = ServiceNotifier(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"}, clock=clock)
    assert notifier.watchdog_interval_s == pytest.approx(1.0)
    sent = []
    for _ in range(50):  # 50 loop iterations over 2.5 s of fake time
        sent.append(notifier.watchdog())
        clock.now += 0.05
    assert sum(sent) == 3  # at t=0, 1.0, 2.0
    assert _drain(sock) == ["WATCHDOG=1"] * 3
    notifier.close()


def test_abstract_socket_names(tmp_path: Path) -> None:
    name = f"lifelong-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2.0)
    try:
        notifier = ServiceNotifier(env={"NOTIFY_SOCKET": "@" + name})
        assert notifier.ready()
        assert sock.recv(4096) == b"READY=1"
        notifier.close()
    finally:
        sock.close()


def test_no_socket_is_a_no_op() -> None:
    notifier = ServiceNotifier(env={})
    assert not notifier.enabled
    assert not notifier.ready()
    assert not notifier.watchdog()
    assert not notifier.stopping()
    assert not notifier.status("x")


def test_a_vanished_socket_never_raises(tmp_path: Path) -> None:
    notifier = ServiceNotifier(env={"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert notifier.enabled
    assert not notifier.ready()
    assert not notifier.stopping()


def test_watchdog_interval_rules() -> None:
    pid = os.getpid()
    assert watchdog_interval({}, pid) is None
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}, pid) == pytest.approx(15.0)
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(pid + 1)}, pid) is None
    assert watchdog_interval({"WATCHDOG_USEC": "junk"}, pid) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}, pid) is None
