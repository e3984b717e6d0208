"""Synaptic Intelligence: importance from each parameter's contribution to the drop of the loss along its path.

Zenke, F., Poole, B. & Ganguli, S. (2017). Continual Learning Through Synaptic Intelligence. ICML.
Every step adds ``-g * delta_theta`` to a running path integral ``w``; at a boundary
``Omega += max(w, 0) / (Delta^2 + xi)`` (``Delta``: how far the parameter moved since the previous boundary;
negative contributions are clipped as in common implementations), ``w`` restarts and the anchor moves.
Penalty: ``c * sum Omega (theta - theta*)^2``. Fully online: nothing but the training steps themselves is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from lifelong.strategies.anchor import QuadraticAnchor, trainable
from lifelong.strategies.base import Plugin, StepContext

if TYPE_CHECKING:
    from lifelong.learner import Learner


class SI(Plugin):
    """``c``: penalty strength; ``xi``: damping of the importance normalisation."""

    name = "si"

    def __init__(self, c: float = 1.0, xi: float = 0.1):
        self.c, self.xi = float(c), float(xi)
        self.anchor = QuadraticAnchor()
        self.path: dict[str, Tensor] = {}
        self.start: dict[str, Tensor] = {}
        self._before: dict[str, Tensor] = {}

    def setup(self, learner: Learner) -> None:
        self.device = learner.device

    def before_step(self, ctx: StepContext) -> None:
        params = trainable(ctx.model)
        self._before = {name: p.detach().clone() for name, p in params.items()}
        for name, value in self._before.items():
            self.start.setdefault(name, value.clone())
            self.path.setdefault(name, torch.zeros_like(value))

    def loss(self, ctx: StepContext) -> Tensor | None:
        penalty = self.anchor.penalty(ctx.model)
        return None if penalty is None else self.c * penalty

    @torch.no_grad()
    def after_step(self, ctx: StepContext) -> None:
        for name, p in trainable(ctx.model).items():
            if p.grad is not None and name in self._before:
                self.path[name] -= p.grad * (p.detach() - self._before[name])

    @torch.no_grad()
    def on_boundary(self, learner: Learner) -> None:
        if not self.path:
            return
        params = trainable(learner.model)
        omega = {
            name: self.path[name].clamp(min=0) / ((params[name].detach() - self.start[name]) ** 2 + self.xi)
            for name in self.path
            if name in params
        }
        self.anchor.consolidate(learner.model, omega, 1.0)
        self.path = {name: torch.zeros_like(v) for name, v in self.path.items()}
        self.start = {name: p.detach().clone() for name, p in params.items()}

    def state_dict(self) -> dict[str, Any]:
        return {**self.anchor.state_dict(), "path": dict(self.path), "start": dict(self.start)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.anchor.load_state_dict(state, self.device)
            self.path = {k: v.to(self.device) for k, v in state["path"].items()}
            self.start = {k: v.to(self.device) for k, v in state["start"].items()}
