"""Class-balanced reservoir: every class seen keeps an equal share of the memory, however skewed the stream.

Chrysakis, A. & Moens, M.-F. (2020). Online Continual Learning from Imbalanced Data. ICML (class-balancing
reservoir sampling, CBRS). A sample of a class smaller than the largest one evicts a random sample of a largest
class; a sample of a largest class replaces one of its own class by reservoir sampling within that class
(probability ``stored_c / seen_c``), so each class's share is itself a uniform sample of that class.
"""

from __future__ import annotations

from bisect import insort
from typing import Any

import torch
from torch import Tensor

from lifelong.replay.buffer import Buffer
from lifelong.replay.store import last_wins


class ClassBalancedBuffer(Buffer):
    """CBRS. Shares end equal to within one sample for every class that has sent at least its share.

    >>> buf = ClassBalancedBuffer(capacity=4, seed=0)
    >>> buf.insert(torch.zeros(10, 1), torch.tensor([0] * 9 + [1]))
    >>> buf.samples_per_class()
    {0: 3, 1: 1}
    >>> buf.insert(torch.zeros(5, 1), torch.tensor([1] * 5))
    >>> buf.samples_per_class()
    {0: 2, 1: 2}
    """

    kind = "class_balanced"

    def __init__(self, capacity: int, device: torch.device | str = "cpu", seed: int = 0):
        super().__init__(capacity, device, seed)
        self.slots_of: dict[int, list[int]] = {}  # sorted slots per class: rebuilt exactly from ``labels``
        self.class_seen: dict[int, int] = {}

    def insert(self, x: Tensor, y: Tensor, **extra: Tensor) -> None:
        labels = y.to("cpu", torch.long).tolist()
        if not labels:
            return
        draws = torch.rand(len(labels), 2, generator=self.generator, dtype=torch.float64).tolist()
        slots: list[int] = []
        sources: list[int] = []
        for i, cls in enumerate(labels):
            self.seen += 1
            self.class_seen[cls] = self.class_seen.get(cls, 0) + 1
            slot = self._place(cls, draws[i])
            if slot is not None:
                slots.append(slot)
                sources.append(i)
                self.labels[slot] = cls
        if not slots:
            return
        self._write(*last_wins(slots, sources), x, y, extra)

    def _place(self, cls: int, draw: list[float]) -> int | None:
        own = self.slots_of.setdefault(cls, [])
        if self.size < self.capacity:
            slot = self.size
            self.size += 1
            own.append(slot)
            return slot
        largest = max(len(v) for v in self.slots_of.values())
        if len(own) < largest:  # evict a sample of a random largest class
            big = sorted(c for c, v in self.slots_of.items() if len(v) == largest)
            victim = big[int(draw[0] * len(big))]
            slot = self._evict(victim, draw[1])
            self.slots_of[victim].remove(slot)
            insort(own, slot)
            return slot
        j = int(draw[0] * self.class_seen[cls])  # reservoir within the class
        return own[j] if j < len(own) else None

    def _evict(self, cls: int, draw: float) -> int:
        """Which slot of ``cls`` gives way to another class: a random one (reservoir within the class)."""
        own = self.slots_of[cls]
        return own[int(draw * len(own))]

    def samples_per_class(self) -> dict[int, int]:
        return {cls: len(v) for cls, v in sorted(self.slots_of.items()) if v}

    def clear(self) -> None:
        """Forget every sample and count (the herding pool empties at each boundary)."""
        self.labels.fill_(-1)
        self.slots_of.clear()
        self.class_seen.clear()
        self.size = 0
        self.seen = 0
        self.version += 1

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["class_seen"] = torch.tensor(sorted(self.class_seen.items()), dtype=torch.long).reshape(-1, 2)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.class_seen = {int(c): int(n) for c, n in state["class_seen"].tolist()}
        self.slots_of = {cls: [] for cls in self.class_seen}
        for slot, cls in enumerate(self.labels[: self.size].tolist()):
            self.slots_of[cls].append(slot)
