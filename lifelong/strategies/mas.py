"""Memory Aware Synapses: importance = sensitivity of the learnt function's output, no labels needed.

Aljundi, R., Babiloni, F., Elhoseiny, M., Rohrbach, M. & Tuytelaars, T. (2018). Memory Aware Synapses: Learning
what (not) to forget. ECCV. ``Omega`` is the running mean over the passing micro-batches of
``| d/dtheta mean_x ||f(x)||_2^2 |`` (``f``: logits of the classes seen so far), as in the authors' code; at a
boundary ``Omega* = gamma * Omega* + Omega`` and the anchor moves. Penalty: ``lam * sum Omega* (theta - theta*)^2``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from lifelong.strategies.anchor import QuadraticAnchor, trainable
from lifelong.strategies.base import Plugin, StepContext

if TYPE_CHECKING:
    from lifelong.learner import Learner


class MAS(Plugin):
    """``lam``: penalty strength; ``gamma``: decay of older importances (1 sums them)."""

    name = "mas"

    def __init__(self, lam: float = 0.1, gamma: float = 1.0):
        self.lam, self.gamma = float(lam), float(gamma)
        self.anchor = QuadraticAnchor()
        self.omega_sum: dict[str, Tensor] = {}
        self.count = 0

    def setup(self, learner: Learner) -> None:
        self.device = learner.device

    def loss(self, ctx: StepContext) -> Tensor | None:
        penalty = self.anchor.penalty(ctx.model)
        return None if penalty is None else self.lam * penalty

    def after_batch(self, learner: Learner, x: Tensor, y: Tensor) -> None:
        params = trainable(learner.model)
        if not params or not bool(learner.class_mask.any()):
            return
        out = learner.model(x)[:, learner.class_mask]
        grads = torch.autograd.grad(out.pow(2).sum(1).mean(), list(params.values()), allow_unused=True)
        n = int(x.shape[0])
        for (name, p), g in zip(params.items(), grads, strict=True):
            value = torch.zeros_like(p) if g is None else g.abs() * n
            self.omega_sum[name] = self.omega_sum[name] + value if name in self.omega_sum else value
        self.count += n

    def on_boundary(self, learner: Learner) -> None:
        if self.count == 0:
            return
        omega = {name: total / self.count for name, total in self.omega_sum.items()}
        self.anchor.consolidate(learner.model, omega, self.gamma)
        self.omega_sum, self.count = {}, 0

    def state_dict(self) -> dict[str, Any]:
        return {**self.anchor.state_dict(), "omega_sum": dict(self.omega_sum), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.anchor.load_state_dict(state, self.device)
            self.omega_sum = {k: v.to(self.device) for k, v in state["omega_sum"].items()}
            self.count = int(state["count"])
