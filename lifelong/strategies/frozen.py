"""Frozen feature extractor: after a number of boundaries only the linear head keeps learning.

A classic transfer-learning baseline for continual learning (e.g. "Latent Replay", Pellegrini et al. 2020, and
the frozen-backbone baselines of Lomonaco & Maltoni 2017, CORe50): the representation learnt on the first
task(s) stays fixed, so it cannot be overwritten; only the head adapts. ``after_boundaries=0`` freezes from the
start (a pretrained backbone). Normalisation statistics freeze too (the backbone runs in eval mode).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

from lifelong.strategies.base import Plugin, StepContext

if TYPE_CHECKING:
    from lifelong.learner import Learner


class FrozenFeatures(Plugin):
    """Stops gradients into every parameter outside ``model.head`` once ``after_boundaries`` have passed."""

    name = "frozen"

    def __init__(self, after_boundaries: int = 1):
        self.after_boundaries = int(after_boundaries)
        self.seen_boundaries = 0
        self.frozen = False
        self.model: nn.Module | None = None

    def setup(self, learner: Learner) -> None:
        self.model = learner.model
        if self.after_boundaries == 0:
            self._freeze()

    def _freeze(self) -> None:
        assert self.model is not None
        for name, p in self.model.named_parameters():
            if not name.startswith("head."):
                p.requires_grad_(False)
                p.grad = None
        self.frozen = True

    def before_step(self, ctx: StepContext) -> None:
        if self.frozen:
            for name, child in ctx.model.named_children():
                if name != "head":
                    child.eval()

    def on_boundary(self, learner: Learner) -> None:
        self.seen_boundaries += 1
        if not self.frozen and self.seen_boundaries >= self.after_boundaries:
            self._freeze()

    def state_dict(self) -> dict[str, Any]:
        return {"seen_boundaries": self.seen_boundaries, "frozen": int(self.frozen)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.seen_boundaries = int(state["seen_boundaries"])
            if int(state["frozen"]):
                self._freeze()
