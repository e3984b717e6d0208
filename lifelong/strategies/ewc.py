"""Online Elastic Weight Consolidation, with a Fisher accumulated from the stream as it passes.

Kirkpatrick, J. et al. (2017). Overcoming catastrophic forgetting in neural networks. PNAS 114(13).
Online form: Schwarz, J. et al. (2018). Progress & Compress: A scalable framework for continual learning. ICML.
The diagonal Fisher is the mean of per-sample squared gradients of the log-likelihood, taken from up to
``fisher_samples`` samples of every micro-batch right after it was learnt: no second pass over stored data. Labels
are drawn from the model's prediction (the true Fisher, ``fisher_labels="model"``) or taken from the data
(the empirical Fisher, ``"data"``), see ``lifelong.strategies.fisher``.
At a boundary it is consolidated, ``F* = gamma * F* + F``, and the anchor moves to the current weights; the
penalty is ``lam / 2 * sum F* (theta - theta*)^2``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from torch import Tensor

from lifelong.replay.store import make_generator
from lifelong.strategies.anchor import QuadraticAnchor
from lifelong.strategies.base import Plugin, StepContext
from lifelong.strategies.fisher import squared_sample_grads

if TYPE_CHECKING:
    from lifelong.learner import Learner

class EWC(Plugin):
    """Online EWC. ``lam``: penalty strength; ``gamma``: decay of older Fisher; ``fisher_samples``: per batch."""

    name = "ewc"

    def __init__(self, lam: float = 10.0, gamma: float = 1.0, fisher_samples: int = 32,
                 fisher_labels: Literal["model", "data"] = "model", seed: int = 0):
        self.lam, self.gamma, self.fisher_samples = float(lam), float(gamma), int(fisher_samples)
        self.fisher_labels: Literal["model", "data"] = fisher_labels
        self.generator = make_generator(seed)
        self.anchor = QuadraticAnchor()
        self.fisher_sum: dict[str, Tensor] = {}
        self.fisher_count = 0

    def setup(self, learner: Learner) -> None:
        self.device = learner.device

    def loss(self, ctx: StepContext) -> Tensor | None:
        penalty = self.anchor.penalty(ctx.model)
        return None if penalty is None else 0.5 * self.lam * penalty

    def after_batch(self, learner: Learner, x: Tensor, y: Tensor) -> None:
        k = min(self.fisher_samples, int(y.shape[0]))
        if k == 0:
            return
        squared = squared_sample_grads(learner.model, x[:k], y[:k], learner.class_mask, self.fisher_labels,
                                       self.generator)
        for name, value in squared.items():
            self.fisher_sum[name] = self.fisher_sum[name] + value if name in self.fisher_sum else value
        self.fisher_count += k

    def fisher(self) -> dict[str, Tensor]:
        """The running Fisher of the samples since the last boundary."""
        return {name: total / max(self.fisher_count, 1) for name, total in self.fisher_sum.items()}

    def on_boundary(self, learner: Learner) -> None:
        if self.fisher_count == 0:
            return
        self.anchor.consolidate(learner.model, self.fisher(), self.gamma)
        self.fisher_sum, self.fisher_count = {}, 0

    def state_dict(self) -> dict[str, Any]:
        return {**self.anchor.state_dict(), "fisher_sum": dict(self.fisher_sum), "fisher_count": self.fisher_count,
                "rng": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.anchor.load_state_dict(state, self.device)
            self.fisher_sum = {k: v.to(self.device) for k, v in state["fisher_sum"].items()}
            self.fisher_count = int(state["fisher_count"])
            self.generator.set_state(state["rng"])
