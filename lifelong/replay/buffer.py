"""The common shape of a replay buffer: a policy deciding which samples to keep, over a ``SampleStore``.

Buffers are plain objects (no training hooks): the plugin adapter in ``lifelong.replay.plugin`` feeds them, and
strategies with a memory of their own (DER++, A-GEM) reuse them directly. Filled slots are always ``0..len-1``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from lifelong.replay.store import SampleStore, make_generator

FeatureFn = Callable[[Tensor], Tensor]


class Buffer:
    """Base class: storage, RNG, uniform sampling without replacement, per-class counts and state."""

    kind = "buffer"

    def __init__(self, capacity: int, device: torch.device | str = "cpu", seed: int = 0):
        self.capacity = int(capacity)
        self.store = SampleStore(self.capacity, device)
        self.labels = torch.full((self.capacity,), -1, dtype=torch.long)  # CPU mirror of the stored labels
        self.generator = make_generator(seed)
        self.seen = 0
        self.size = 0
        self.version = 0  # bumped on every change, so derived caches (NME means) know when to refresh

    def __len__(self) -> int:
        return self.size

    @property
    def device(self) -> torch.device:
        return self.store.device

    def insert(self, x: Tensor, y: Tensor, **extra: Tensor) -> None:
        raise NotImplementedError

    def _write(self, slots: Tensor, sources: Tensor, x: Tensor, y: Tensor, extra: dict[str, Tensor]) -> Tensor:
        """Store the batch's rows ``sources`` at ``slots`` (distinct); returns their labels, on the batch's device.
        index_select: a few rows out of a batch cost less than by advanced indexing."""
        src = sources.to(y.device)
        rows = {"x": x.index_select(0, src), "y": y.index_select(0, src),
                **{name: values.index_select(0, src) for name, values in extra.items()}}
        self.store.write(slots, rows)
        self.version += 1
        return rows["y"]

    def _indices(self, n: int, total: int) -> Tensor:
        """``min(n, total)`` distinct indices in ``[0, total)``, drawn from this buffer's generator."""
        k = min(int(n), total)
        if total <= 8192:
            return torch.randperm(total, generator=self.generator)[:k]
        return torch.randint(total, (k,), generator=self.generator)  # large memories: duplicates are harmless

    def sample(self, n: int) -> dict[str, Tensor]:
        """Up to ``n`` stored rows chosen uniformly: ``{"x": ..., "y": ..., <extra fields>}`` on the device."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty buffer")
        return self.store.read(self._indices(n, self.size))

    def items_of(self, cls: int) -> dict[str, Tensor]:
        """Every stored row of one class."""
        slots = torch.nonzero(self.labels[: self.size] == cls).flatten()
        return self.store.read(slots)

    def classes(self) -> list[int]:
        return sorted(set(self.labels[: self.size].tolist()))

    def samples_per_class(self) -> dict[int, int]:
        counts = torch.bincount(self.labels[: self.size]) if self.size else torch.zeros(0, dtype=torch.long)
        return {cls: int(n) for cls, n in enumerate(counts.tolist()) if n}

    def on_boundary(self, features: FeatureFn) -> None:
        """A boundary passed; ``features`` maps inputs to (normalised or not) feature vectors."""

    def state_dict(self) -> dict[str, Any]:
        return {
            "store": self.store.state_dict(),
            "labels": self.labels.clone(),
            "seen": self.seen,
            "size": self.size,
            "rng": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.store.load_state_dict(state["store"])
        labels = state["labels"].to(torch.long)
        if labels.shape != self.labels.shape:
            raise ValueError(f"{self.kind}: checkpoint capacity {labels.shape[0]} != configured {self.capacity}")
        self.labels = labels.clone()
        self.seen = int(state["seen"])
        self.size = int(state["size"])
        self.generator.set_state(state["rng"])
        self.version += 1
