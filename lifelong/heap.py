"""Keep the cyclic garbage collector off the objects that live for the whole run.

CPython's collector walks every tracked object of the oldest generation on each full collection, and a
process that has imported torch holds about 150,000 more of them (measured: 56,001 objects after importing
the stream layer, 208,972 after ``import torch``). The hot loops allocate (records, batches, tensors) and so
trigger full collections that walk all of those again, though none of them will ever be garbage: with torch
imported, one plain consumer loop ran about a sixth slower with kafka-python and about a third slower with
confluent-kafka than after :func:`gc.freeze` (benchmarks/RESULTS.md, ablation ``gc_freeze=false``).
:func:`frozen_heap` moves what is alive at start into the permanent generation and gives it back at the end.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["freeze", "frozen_heap"]


def freeze() -> None:
    """Move every object alive now into the permanent generation, after one full collection (so that no
    garbage is frozen with them). For a process whose objects at this point live as long as it does."""
    gc.collect()
    gc.freeze()


@contextlib.contextmanager
def frozen_heap(enabled: bool = True) -> Iterator[None]:
    """Freeze every object alive now for the duration of the block (after one full collection, so no garbage
    is frozen). A caller that had frozen objects itself keeps them frozen: only a freeze made here is undone."""
    if not enabled:
        yield
        return
    ours = gc.get_freeze_count() == 0
    freeze()
    try:
        yield
    finally:
        if ours:
            gc.unfreeze()
