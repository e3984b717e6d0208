"""Chunked socket reads for kafka-python: the same bytes and errors as its own 4 KiB loop, in far fewer reads;
installed and restored on the plaintext transport only, and refused (with one log line) when the client's
method is not the one it replaces."""

from __future__ import annotations

import inspect
import logging
import os
import select
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kafka import errors
from kafka.net.transport import KafkaSSLTransport, KafkaTCPTransport
from pydantic import ValidationError

from lifelong.config import KafkaConfig
from lifelong.stream import socket_reads
from lifelong.stream.socket_reads import chunked_recv, recv_chunk_in_effect, set_recv_chunk

PAYLOAD = 100_000  # well inside a local socket pair's buffer (Linux: 208 KiB): sendall returns before any read


class CountingSocket:
    """A non-blocking socket that counts its ``recv`` calls."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.calls = sock, 0

    def recv(self, n: int) -> bytes:
        self.calls += 1
        return self.sock.recv(n)


class Conn:
    """What ``_sock_recv`` needs of a transport: ``self._sock``."""

    def __init__(self, sock: CountingSocket) -> None:
        self._sock = sock


@pytest.fixture(autouse=True)
def _restore_chunk() -> Iterator[None]:
    before = recv_chunk_in_effect()
    yield
    set_recv_chunk(before)


def _pair_with(payload: bytes, close: bool) -> tuple[Conn, socket.socket]:
    reader, writer = socket.socketpair()
    writer.sendall(payload)
    if close:
        writer.close()
    reader.setblocking(False)
    return Conn(CountingSocket(reader)), writer


def _read_all(recv: Callable[[Any], tuple[bytes, Exception | None]], conn: Conn, want: int) -> tuple[bytes, Any]:
    """Call ``recv`` as kafka-python's reader does: whenever the socket is readable, until ``want`` bytes."""
    got, err = b"", None
    while len(got) < want and err is None:
        select.select([conn._sock.sock], [], [], 5)
        data, err = recv(conn)
        got += data
    return got, err


def test_chunked_reads_return_the_same_bytes_as_kafka_pythons_in_fewer_calls() -> None:
    payload = os.urandom(PAYLOAD)
    ours, _ours_writer = _pair_with(payload, close=False)
    theirs, _theirs_writer = _pair_with(payload, close=False)  # writers kept open: no end of stream
    set_recv_chunk(0)
    original = KafkaTCPTransport._sock_recv

    got, err = _read_all(chunked_recv(1 << 20), ours, PAYLOAD)
    expected, expected_err = _read_all(original, theirs, PAYLOAD)

    assert (got, err) == (payload, None)
    assert (expected, expected_err) == (payload, None)
    assert theirs._sock.calls >= PAYLOAD // 4096  # kafka-python's own: 4 KiB per call
    assert ours._sock.calls <= 4, ours._sock.calls


def test_a_read_that_would_block_returns_nothing_and_no_error() -> None:
    conn, _writer = _pair_with(b"", close=False)
    assert chunked_recv(65536)(conn) == (b"", None)


def test_a_closed_peer_is_a_connection_error_after_the_bytes_before_it() -> None:
    conn, _ = _pair_with(b"last words", close=True)
    recv = chunked_recv(4096)
    data, err = recv(conn)
    if err is None:  # the short read stopped before the end of stream; the next call sees it
        more, err = recv(conn)
        data += more
    assert data == b"last words"
    assert isinstance(err, errors.KafkaConnectionError)


def test_a_socket_failure_is_a_connection_error_not_an_exception() -> None:
    class Broken:
        def recv(self, n: int) -> bytes:
            raise ConnectionResetError("reset by peer")

    data, err = chunked_recv(65536)(Conn(Broken()))  # type: ignore[arg-type]
    assert data == b""
    assert isinstance(err, errors.KafkaConnectionError) and "reset by peer" in str(err)


def test_set_recv_chunk_installs_on_the_plaintext_transport_and_restores_kafka_pythons() -> None:
    ssl_recv = KafkaSSLTransport.__dict__["_sock_recv"]
    assert set_recv_chunk(0) is False
    own = KafkaTCPTransport.__dict__["_sock_recv"]
    assert "recv(4096)" in inspect.getsource(own)

    assert set_recv_chunk(256 * 1024) is True
    assert recv_chunk_in_effect() == 256 * 1024
    assert KafkaTCPTransport.__dict__["_sock_recv"] is not own
    assert KafkaSSLTransport.__dict__["_sock_recv"] is ssl_recv  # SSL keeps its own reads

    assert set_recv_chunk(0) is False
    assert KafkaTCPTransport.__dict__["_sock_recv"] is own
    assert recv_chunk_in_effect() == 0


def test_a_kafka_python_whose_reads_changed_keeps_them_with_one_log_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    def _sock_recv(self: Any) -> tuple[bytes, None]:
        return self._sock.recv(1 << 16), None  # a future kafka-python that reads larger chunks itself

    monkeypatch.setattr(KafkaTCPTransport, "_sock_recv", _sock_recv)
    monkeypatch.setattr(socket_reads, "_original", None)
    monkeypatch.setattr(socket_reads, "_chunk", 0)
    monkeypatch.setattr(socket_reads, "_refused", False)
    with caplog.at_level(logging.INFO, logger="lifelong.stream.socket_reads"):
        assert set_recv_chunk(1 << 20) is False
        assert set_recv_chunk(1 << 20) is False
    assert KafkaTCPTransport._sock_recv is _sock_recv
    assert len([r for r in caplog.records if "its own are kept" in r.getMessage()]) == 1


def test_reads_from_threads_do_not_mix_connections() -> None:
    """Every connection reads its own socket: the function keeps no state between calls."""
    recv = chunked_recv(1 << 20)
    payloads = [os.urandom(PAYLOAD) for _ in range(4)]
    pairs = [_pair_with(p, close=False) for p in payloads]
    conns = [conn for conn, _writer in pairs]
    results: list[bytes] = [b""] * 4

    def read(i: int) -> None:
        results[i] = _read_all(recv, conns[i], PAYLOAD)[0]

    threads = [threading.Thread(target=read, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == payloads


def test_config_rejects_a_chunk_below_kafka_pythons_own_reads() -> None:
    from lifelong.bench.throughput import Options

    assert KafkaConfig().recv_chunk_bytes == Options().recv_chunk_bytes == 256 * 1024  # the bench runs the default
    assert KafkaConfig(recv_chunk_bytes=0).recv_chunk_bytes == 0
    with pytest.raises(ValidationError, match="recv_chunk_bytes") as info:
        KafkaConfig(recv_chunk_bytes=1000)
    assert "below kafka-python's own 4096-byte reads" in str(info.value)


def test_the_benchmark_pairs_each_round_with_the_4k_reads_of_the_same_round() -> None:
    from bench_scripts import benchmark_script

    script = benchmark_script("socket_reads")
    rates = {0: [100.0, 50.0, 80.0], 1 << 20: [120.0, 70.0, 80.0]}  # round 2 was slow for both
    gains = script.speedups(rates)
    assert gains[0] == 1.0
    assert gains[1 << 20] == pytest.approx(1.2)  # median of 1.2, 1.4, 1.0; not 90/80 of the medians
