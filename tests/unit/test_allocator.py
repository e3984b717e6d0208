"""lifelong.stream.allocator: a fetch process's large buffers are reused, not faulted in again each time."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# A fresh process (the allocator's state is per process) allocates, copies and drops a 6 MB buffer 100 times on a
# thread, as kafka-python's IO thread does with fetch responses, and prints the minor page faults that took.
PROBE = """
import resource, sys, threading
if sys.argv[1] == "reuse":
    from lifelong.stream.allocator import reuse_large_buffers
    assert reuse_large_buffers()
def work():
    for _ in range(100):
        buffer = bytearray(6_000_000)
        buffer[::4096] = b"1" * len(buffer[::4096])
        copy = bytes(buffer)  # a second large buffer alive beside the first, as a response's copies are
        del buffer, copy
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
thread = threading.Thread(target=work)
thread.start()
thread.join()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_large_buffers_are_reused_instead_of_faulted_in_again() -> None:
    default, reused = _faults("default"), _faults("reuse")
    assert default > 100 * 1_000  # each 6 MB buffer came back from the kernel: about 1,465 pages a time
    assert reused < default / 10


def test_a_refused_or_missing_mallopt_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    import ctypes

    from lifelong.stream import allocator

    class NoMallopt:
        def __init__(self, *_: object) -> None:
            pass

    monkeypatch.setattr(ctypes, "CDLL", NoMallopt)
    assert allocator.reuse_large_buffers() is False
