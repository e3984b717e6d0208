"""Read kafka-python's plaintext sockets in large chunks instead of 4 KiB at a time.

kafka-python 3.0 drains a readable socket with ``sock.recv(4096)`` in a loop
(``kafka.net.transport.KafkaTCPTransport._sock_recv``) and has no setting for the size. A fetch response of
thousands of 3 KB records is then thousands of Python-level reads, each a new bytes object that is joined again
afterwards. Reading up to ``kafka.recv_chunk_bytes`` per call, and stopping at the first short read (the kernel
buffer is then empty; the client's selector is level-triggered, so bytes that arrive later wake the reader
again), takes the same bytes in a few calls: ``benchmarks/socket_reads.py`` measures the raw consume rate both
ways on the same topic.

The client offers no hook, so this replaces that one method on the class, for the whole process (every
kafka-python client in it reads the same way; the latest call wins). It does so only when the method is the one
measured: a kafka-python whose ``_sock_recv`` no longer reads 4 KiB keeps its own, with one log line. SSL
connections keep their own reads (``KafkaSSLTransport`` overrides the method): an SSL object holds decrypted
bytes the selector cannot see, so there a short read does not mean the socket is drained.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["chunked_recv", "recv_chunk_in_effect", "set_recv_chunk"]

_MEASURED_READ = "recv(4096)"  # what the replaced method does, in kafka-python 3.0.x's source
_original: Callable[[Any], tuple[bytes, Exception | None]] | None = None
_chunk = 0
_refused = False


def chunked_recv(chunk: int) -> Callable[[Any], tuple[bytes, Exception | None]]:
    """A ``_sock_recv`` for a non-blocking ``self._sock``: ``(bytes read, error or None)`` as kafka-python's is.

    Reads until the socket would block, it returns fewer than ``chunk`` bytes, or the peer closes (an error, as
    in kafka-python, with whatever was read before it)."""
    from kafka import errors

    def _sock_recv(self: Any) -> tuple[bytes, Exception | None]:
        parts: list[bytes] = []
        err: Exception | None = None
        while True:
            try:
                data = self._sock.recv(chunk)
            except (BlockingIOError, InterruptedError):
                break
            except BaseException as exc:  # as kafka-python's: any failure closes this connection, not the process
                log.exception("%s: error receiving network data, closing the socket", self)
                err = errors.KafkaConnectionError(exc)
                break
            if not data:
                log.error("%s: socket disconnected", self)
                err = errors.KafkaConnectionError("socket disconnected")
                break
            parts.append(data)
            if len(data) < chunk:
                break
        return (parts[0] if len(parts) == 1 else b"".join(parts)), err

    return _sock_recv


def _transport() -> Any | None:
    try:
        from kafka.net.transport import KafkaTCPTransport
    except ImportError:
        return None
    return KafkaTCPTransport if callable(getattr(KafkaTCPTransport, "_sock_recv", None)) else None


def _is_measured(method: Callable[..., Any]) -> bool:
    try:
        return _MEASURED_READ in inspect.getsource(method)
    except (OSError, TypeError):  # no source shipped: cannot tell what it does
        return False


def set_recv_chunk(chunk: int) -> bool:
    """Make kafka-python's plaintext connections read up to ``chunk`` bytes per call; 0 restores its own reads.

    Returns whether chunked reads are in effect afterwards."""
    global _original, _chunk, _refused
    transport = _transport()
    if transport is None:
        return False
    if _original is None:
        if not _is_measured(transport._sock_recv):
            if chunk and not _refused:
                log.info("kafka-python's socket reads are not the 4 KiB loop that kafka.recv_chunk_bytes "
                         "replaces; its own are kept")
                _refused = True
            return False
        _original = transport._sock_recv
    if chunk != _chunk:
        transport._sock_recv = chunked_recv(chunk) if chunk else _original
        _chunk = chunk
    return bool(chunk)


def recv_chunk_in_effect() -> int:
    """The chunk size kafka-python's plaintext reads use now (0: its own 4 KiB reads)."""
    return _chunk
