"""Reservoir sampling: a uniform sample of the whole stream in a fixed memory.

Vitter, J. S. (1985). Random sampling with a reservoir. ACM Transactions on Mathematical Software 11(1), 37-57
(algorithm R). After ``n`` samples every one of them is in memory with probability ``capacity / n``; used as the
memory of experience replay (Chaudhry et al. 2019, "On Tiny Episodic Memories in Continual Learning").
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from lifelong.replay.buffer import Buffer
from lifelong.replay.store import last_wins


class ReservoirBuffer(Buffer):
    """Algorithm R over micro-batches: sample ``i`` of the stream (0-based) replaces slot ``j ~ U{0..i}`` if
    ``j < capacity``; repeated slots within a batch resolve as sequential insertion would (the later wins).

    >>> buf = ReservoirBuffer(capacity=3, seed=0)
    >>> buf.insert(torch.arange(10.0).unsqueeze(1), torch.zeros(10, dtype=torch.long))
    >>> len(buf), buf.seen
    (3, 10)
    """

    kind = "reservoir"

    def insert(self, x: Tensor, y: Tensor, **extra: Tensor) -> None:
        b = int(y.shape[0])
        if b == 0:
            return
        # the slot arithmetic in numpy (a few us, where each torch operation costs more than that); the draws stay
        # those of the buffer's torch generator, so a checkpoint's RNG state resumes the same sequence
        position = np.arange(self.seen, self.seen + b, dtype=np.float64)
        draw = torch.rand(b, generator=self.generator, dtype=torch.float64).numpy()
        slot = np.where(position < self.capacity, position, np.floor(draw * (position + 1))).astype(np.int64)
        accepted = np.flatnonzero(slot < self.capacity)
        self.seen += b
        if accepted.size == 0:
            return
        slots, sources = last_wins(slot[accepted], accepted)
        self.labels[slots] = self._write(slots, sources, x, y, extra).to("cpu", torch.long)
        self.size = min(self.capacity, self.seen)
