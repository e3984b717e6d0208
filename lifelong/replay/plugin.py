"""The replay plugin: puts any ``Buffer`` on the learner's training loop, with an optional NME prediction head.

Each gradient step appends ``batch_size`` stored samples to the stream's own (experience replay: Chaudhry et al.
2019, "On Tiny Episodic Memories in Continual Learning"); each micro-batch is inserted once, after its steps.
With ``nme=True`` predictions come from the nearest mean of the stored samples in normalised feature space
(iCaRL's nearest-mean-of-exemplars classifier, Rebuffi et al. 2017), which is immune to the bias of the linear
head towards the latest classes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from lifelong.replay.buffer import Buffer
from lifelong.strategies.base import Plugin, StepContext

if TYPE_CHECKING:
    from lifelong.learner import Learner

MASKED = -1e9


def feature_fn(model: nn.Module, chunk: int = 1024) -> Callable[[Tensor], Tensor]:
    """Features of ``x`` under the model as it stands (eval mode, no gradient, in chunks)."""

    @torch.no_grad()
    def compute(x: Tensor) -> Tensor:
        was_training = model.training
        model.eval()
        try:
            return torch.cat([model.features(x[i : i + chunk]) for i in range(0, x.shape[0], chunk)])
        finally:
            model.train(was_training)

    return compute


class ReplayPlugin(Plugin):
    """Adapter from a buffer to the plugin hooks. ``make_buffer(device)`` builds the buffer at setup."""

    name = "replay"

    def __init__(self, make_buffer: Callable[[torch.device], Buffer], batch_size: int = 32, nme: bool = False,
                 nme_refresh_steps: int = 10):
        self.make_buffer = make_buffer
        self.batch_size = int(batch_size)
        self.nme = nme
        self.nme_refresh_steps = max(1, int(nme_refresh_steps))
        self.buffer: Buffer | None = None
        self._means: tuple[tuple[Any, ...], Tensor, Tensor] | None = None

    def setup(self, learner: Learner) -> None:
        self.buffer = self.make_buffer(learner.device)

    def _buf(self) -> Buffer:
        if self.buffer is None:
            raise RuntimeError(f"{self.name}: setup() has not run (the Learner calls it)")
        return self.buffer

    def before_step(self, ctx: StepContext) -> None:
        buf = self._buf()
        if len(buf):
            rows = buf.sample(self.batch_size)
            ctx.append(rows["x"], rows["y"])

    def after_batch(self, learner: Learner, x: Tensor, y: Tensor) -> None:
        self._buf().insert(x, y)

    def on_boundary(self, learner: Learner) -> None:
        self._buf().on_boundary(feature_fn(learner.model))

    # ---- nearest mean of exemplars -------------------------------------------------------------------------
    def class_means(self, learner: Learner) -> tuple[Tensor, Tensor]:
        """(max_classes, dim) normalised class means of the stored samples, and which classes have one.

        Computing them costs a forward pass over the whole memory, so they are cached and refreshed every
        ``nme_refresh_steps`` training steps, at every boundary and whenever a class enters or leaves the memory
        (1 refreshes after every step: exact, and slow on a CPU with micro-batches of a few samples)."""
        buf = self._buf()
        key = (learner.train_steps // self.nme_refresh_steps, learner.boundaries, tuple(buf.classes()))
        if self._means is not None and self._means[0] == key:
            return self._means[1], self._means[2]
        features = feature_fn(learner.model)
        means = torch.zeros(learner.max_classes, learner.model.head.in_features, device=learner.device)
        present = torch.zeros(learner.max_classes, dtype=torch.bool, device=learner.device)
        for cls in buf.classes():
            if 0 <= cls < learner.max_classes:
                feats = nn.functional.normalize(features(buf.items_of(cls)["x"]), dim=1)
                means[cls] = nn.functional.normalize(feats.mean(0), dim=0)
                present[cls] = True
        self._means = (key, means, present)
        return means, present

    def replaces_predictions(self) -> bool:
        return self.nme

    def predict(self, learner: Learner, x: Tensor, logits: Tensor) -> Tensor | None:
        if not self.nme or len(self._buf()) == 0:
            return None
        means, present = self.class_means(learner)
        feats = nn.functional.normalize(learner.model.features(x), dim=1)
        scores = -torch.cdist(feats, means)
        return scores.masked_fill(~(present & learner.class_mask), MASKED)

    # ---- gauges and state ----------------------------------------------------------------------------------
    def metrics(self) -> dict[str, Any]:
        return {"samples_per_class": self._buf().samples_per_class()}

    def state_dict(self) -> dict[str, Any]:
        return {"buffer": self._buf().state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self._buf().load_state_dict(state["buffer"])
            self._means = None
