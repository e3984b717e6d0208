"""DER++: replay stored samples with the logits the model gave them, plus their labels.

Buzzega, P., Boschini, M., Porrello, A., Abati, D. & Calderara, S. (2020). Dark Experience for General Continual
Learning: a Strong, Simple Baseline. NeurIPS. Its own reservoir buffer keeps (x, y, logits); each step adds
``alpha * MSE(model(x'), logits')`` on one replayed minibatch and ``beta * CE(model(x''), y'')`` on another.
Logits are stored once per micro-batch, after it was learnt, together with the mask of the classes seen then.
``match="seen"`` compares only those entries (a class activated later starts from a fresh head row, see
models.zoo); ``match="all"`` compares every logit, as the paper does with an unmasked head: the stored logits
of classes not yet seen then hold the new classes' logits down on old samples, against recency bias.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor, nn

from lifelong.replay.reservoir import ReservoirBuffer
from lifelong.strategies.base import BufferedPlugin, StepContext

if TYPE_CHECKING:
    from lifelong.learner import Learner

MASKED = -1e9


class DERpp(BufferedPlugin):
    """``alpha``: logit-matching weight; ``beta``: label replay weight (0 gives plain DER)."""

    name = "derpp"

    def __init__(self, alpha: float = 0.3, beta: float = 0.5, memory: int = 500, batch_size: int = 32,
                 match: Literal["seen", "all"] = "seen", seed: int = 0):
        self.alpha, self.beta = float(alpha), float(beta)
        self.match = match
        self.memory, self.batch_size, self.seed = int(memory), int(batch_size), int(seed)
        self.buffer: ReservoirBuffer | None = None

    def setup(self, learner: Learner) -> None:
        self.buffer = ReservoirBuffer(self.memory, learner.device, self.seed)

    def loss(self, ctx: StepContext) -> Tensor | None:
        buf = self.buffer
        if buf is None or len(buf) == 0:
            return None
        terms: list[Tensor] = []
        if self.alpha > 0:
            rows = buf.sample(self.batch_size)
            diff = ctx.model(rows["x"]) - rows["logits"]
            if self.match == "seen":
                diff = diff * rows["mask"]
            terms.append(self.alpha * diff.pow(2).mean())
        if self.beta > 0:
            rows = buf.sample(self.batch_size)
            logits = ctx.model(rows["x"]).masked_fill(~ctx.class_mask, MASKED)
            terms.append(self.beta * nn.functional.cross_entropy(logits, rows["y"]))
        return torch.stack(terms).sum() if terms else None

    @torch.no_grad()
    def after_batch(self, learner: Learner, x: Tensor, y: Tensor) -> None:
        assert self.buffer is not None
        was_training = learner.model.training
        learner.model.eval()
        logits = learner.model(x)
        learner.model.train(was_training)
        mask = learner.class_mask.to(logits.dtype).expand_as(logits)
        self.buffer.insert(x, y, logits=logits, mask=mask)
