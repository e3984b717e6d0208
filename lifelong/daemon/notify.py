"""systemd service notifications (``sd_notify``) so ``Type=notify`` units know when the daemon is really up.

systemd passes a datagram socket in ``NOTIFY_SOCKET``; the service writes ``READY=1`` once it can do its
job, ``WATCHDOG=1`` at least every ``WATCHDOG_USEC`` microseconds (else systemd kills and restarts it) and
``STOPPING=1`` when it begins shutting down. Outside systemd (no ``NOTIFY_SOCKET``) every call is a no-op,
so the daemon calls these unconditionally. A notification that cannot be delivered is logged once and never
raises: losing the supervisor must not stop the learner.

The protocol is a few lines of ``AF_UNIX``/``SOCK_DGRAM``; see ``sd_notify(3)``. Addresses starting with ``@``
are Linux abstract sockets.

>>> ServiceNotifier(env={}).ready()
False
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

#: Minimum seconds between watchdog pings when systemd set no ``WATCHDOG_USEC`` (nobody is watching then;
#: pinging at most once a second keeps the per-iteration call free of syscalls).
DEFAULT_WATCHDOG_INTERVAL_S = 1.0


def _socket_address(raw: str) -> str:
    """``@name`` is the abstract socket ``\\0name``; anything else is a filesystem path."""
    return "\0" + raw[1:] if raw.startswith("@") else raw


def watchdog_interval(env: Mapping[str, str], pid: int) -> float | None:
    """Seconds between pings systemd asks for (half of ``WATCHDOG_USEC``); None when not meant for ``pid``."""
    usec = env.get("WATCHDOG_USEC")
    if not usec:
        return None
    owner = env.get("WATCHDOG_PID")
    if owner and owner.strip() != str(pid):
        return None  # the watchdog belongs to another process (we were forked from the service's main pid)
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2 / 1_000_000 if value > 0 else None


class ServiceNotifier:
    """Sends ``sd_notify`` messages to the socket named by ``NOTIFY_SOCKET`` (no-op when unset).

    Parameters
    ----------
    env
        Where to read ``NOTIFY_SOCKET``/``WATCHDOG_USEC``/``WATCHDOG_PID`` (default ``os.environ``).
    clock
        Monotonic clock for the watchdog rate limit (injectable for tests).
    """

    def __init__(self, env: Mapping[str, str] | None = None, clock: Callable[[], float] = time.monotonic):
        env = os.environ if env is None else env
        raw = env.get("NOTIFY_SOCKET") or ""
        self._clock = clock
        self._address: str | None = None
        self._sock: socket.socket | None = None
        self._warned = False
        self._last_ping: float | None = None
        interval = watchdog_interval(env, os.getpid())
        self.watchdog_enabled = interval is not None
        self.watchdog_interval_s = interval if interval is not None else DEFAULT_WATCHDOG_INTERVAL_S
        if not raw:
            return
        if not (raw.startswith("/") or raw.startswith("@")):
            log.warning("NOTIFY_SOCKET=%r is not a unix socket path; service notifications disabled", raw)
            return
        self._address = _socket_address(raw)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @property
    def enabled(self) -> bool:
        """True when a supervisor listens (``NOTIFY_SOCKET`` set to a usable address)."""
        return self._sock is not None

    def notify(self, *fields: str) -> bool:
        """Send ``fields`` (``KEY=value`` lines) as one datagram; True when it was delivered."""
        if self._sock is None or self._address is None:
            return False
        try:
            self._sock.sendto("\n".join(fields).encode(), self._address)
        except OSError as exc:
            if not self._warned:
                log.warning("sd_notify to %r failed: %s (not logged again)", self._address, exc)
                self._warned = True
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """The checkpoint is loaded and partitions are assigned: systemd may consider the start complete."""
        fields = ["READY=1"] + ([f"STATUS={status}"] if status else [])
        return self.notify(*fields)

    def watchdog(self) -> bool:
        """Ping the watchdog at most once per half ``WATCHDOG_USEC``: cheap enough for every iteration."""
        if self._sock is None:
            return False
        now = self._clock()
        if self._last_ping is not None and now - self._last_ping < self.watchdog_interval_s:
            return False
        self._last_ping = now
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown began (SIGTERM): systemd waits up to ``TimeoutStopSec`` for the final checkpoint."""
        fields = ["STOPPING=1"] + ([f"STATUS={status}"] if status else [])
        return self.notify(*fields)

    def status(self, text: str) -> bool:
        """A one-line state shown by ``systemctl status`` (e.g. events/s, accuracy)."""
        return self.notify(f"STATUS={text.splitlines()[0] if text else ''}")

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more start/stop time (a slow checkpoint load or write) instead of being killed."""
        return self.notify(f"EXTEND_TIMEOUT_USEC={max(0, int(seconds * 1_000_000))}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> ServiceNotifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
