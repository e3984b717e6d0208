"""Averaged Gradient Episodic Memory: never step against the average gradient of the episodic memory.

Chaudhry, A., Ranzato, M., Rohrbach, M. & Elhoseiny, M. (2019). Efficient Lifelong Learning with A-GEM. ICLR.
After backward, the gradient ``g`` is compared with ``g_ref``, the gradient of the loss on a sample of the
memory; when ``g . g_ref < 0`` it is replaced by ``g - (g . g_ref / g_ref . g_ref) g_ref``, whose dot product
with ``g_ref`` is zero. Task-free here: the memory is its own reservoir over the stream (Chaudhry et al. 2019).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from lifelong.replay.reservoir import ReservoirBuffer
from lifelong.strategies.base import BufferedPlugin, StepContext

if TYPE_CHECKING:
    from lifelong.learner import Learner

MASKED = -1e9


def project(g: Tensor, g_ref: Tensor) -> Tensor:
    """A-GEM's projection of a flat gradient: unchanged unless it conflicts with ``g_ref``."""
    dot = torch.dot(g, g_ref)
    if dot >= 0:
        return g
    return g - (dot / torch.dot(g_ref, g_ref).clamp(min=1e-12)) * g_ref


class AGEM(BufferedPlugin):
    """``memory``: episodic memory size in samples; ``sample_size``: memory samples per reference gradient."""

    name = "agem"

    def __init__(self, memory: int = 500, sample_size: int = 64, seed: int = 0):
        self.memory, self.sample_size, self.seed = int(memory), int(sample_size), int(seed)
        self.buffer: ReservoirBuffer | None = None
        self.projections = 0

    def setup(self, learner: Learner) -> None:
        self.buffer = ReservoirBuffer(self.memory, learner.device, self.seed)

    def after_backward(self, ctx: StepContext) -> None:
        buf = self.buffer
        if buf is None or len(buf) == 0:
            return
        params = [p for p in ctx.model.parameters() if p.requires_grad]
        rows = buf.sample(self.sample_size)
        logits = ctx.model(rows["x"]).masked_fill(~ctx.class_mask, MASKED)
        ref = torch.autograd.grad(nn.functional.cross_entropy(logits, rows["y"]), params, allow_unused=True)
        g = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in params])
        g_ref = torch.cat([(r if r is not None else torch.zeros_like(p)).flatten() for p, r in zip(params, ref,
                                                                                                   strict=True)])
        projected = project(g, g_ref)
        if projected is g:
            return
        self.projections += 1
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = projected[offset : offset + n].view_as(p).clone()
            offset += n

    def after_batch(self, learner: Learner, x: Tensor, y: Tensor) -> None:
        assert self.buffer is not None
        self.buffer.insert(x, y)
