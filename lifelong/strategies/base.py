"""The plugin interface every continual-learning strategy and replay memory implements.

A plugin receives what it needs as arguments (the step context, the learner) and returns what it adds; it never
reaches into the training loop's internals. Hooks run in the order the plugins are configured, so plugins compose:
``replay: reservoir`` with ``strategies: [ewc, lwf]`` is three plugins on one loop, no special cases.

Lifecycle of one micro-batch (see ``lifelong.learner.Learner.process``)::

    predict (eval, no grad; or read off the first forward below: Learner.shared_forward) -> activate new
    classes -> for each gradient step:
        before_step(ctx)          may append replayed samples to ctx.inputs/ctx.targets, or set ctx.loss_mask
        forward                   ctx.logits = model(ctx.inputs), masked to seen classes
        loss(ctx) -> Tensor|None  extra terms added to cross-entropy (EWC penalty, distillation, DER++ ...)
        backward
        after_backward(ctx)       may edit gradients (A-GEM projection)
        optimizer.step()
        after_step(ctx)           update per-step statistics (SI path integral, generator training)
    after_batch(learner, x, y)    once per micro-batch, after all its steps: insert into memories, accumulate
                                  Fisher/importance (once, even with several steps per micro-batch)
    on_boundary(learner)          a task/concept boundary: from drift or from the schedule, never from task labels
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from lifelong.learner import Learner


@dataclass
class StepContext:
    """One gradient step. The first ``n_stream`` rows of ``inputs``/``targets`` are the stream's own samples."""

    model: nn.Module
    x: Tensor
    y: Tensor
    inputs: Tensor
    targets: Tensor
    class_mask: Tensor
    logits: Tensor | None = None
    features: Tensor | None = None
    loss: Tensor | None = None
    step: int = 0
    extras: dict[str, Any] = field(default_factory=dict)
    loss_mask: Tensor | None = None  # (rows, classes) bool: classes each row's cross-entropy spans; None: all seen

    @property
    def n_stream(self) -> int:
        return int(self.x.shape[0])

    def append(self, inputs: Tensor, targets: Tensor) -> None:
        """Add replayed or generated samples after the stream's own."""
        self.inputs = torch.cat([self.inputs, inputs.to(self.inputs.dtype)])
        self.targets = torch.cat([self.targets, targets.to(self.targets.dtype)])


class Plugin:
    """Base class: every hook is a no-op, so a plugin overrides only what it uses."""

    name: str = "plugin"

    def setup(self, learner: Learner) -> None:
        """Called once the learner has its model and device (allocate buffers here)."""

    def before_step(self, ctx: StepContext) -> None:
        """Before the forward pass; may call ``ctx.append`` to add samples."""

    def loss(self, ctx: StepContext) -> Tensor | None:
        """An extra loss term for this step, or None."""
        return None

    def after_backward(self, ctx: StepContext) -> None:
        """Gradients are in ``p.grad``; edit them in place if needed."""

    def after_step(self, ctx: StepContext) -> None:
        """After the optimizer step: update per-step statistics."""

    def after_batch(self, learner: Learner, x: Tensor, y: Tensor) -> None:
        """Once per micro-batch after its gradient steps: memories insert ``x, y`` here, so each stream sample
        is inserted exactly once however many steps it was trained with."""

    def on_boundary(self, learner: Learner) -> None:
        """A boundary passed: consolidate, snapshot, re-select."""

    def predict(self, learner: Learner, x: Tensor, logits: Tensor) -> Tensor | None:
        """Replace the scores used for prediction (e.g. nearest-mean-of-exemplars); None keeps ``logits``."""
        return None

    def replaces_predictions(self) -> bool:
        """Whether ``predict`` may replace the model's scores. The learner then runs a separate prediction pass
        instead of reading predictions off the training step's forward (see ``Learner.shared_forward``)."""
        return type(self).predict is not Plugin.predict

    def metrics(self) -> dict[str, Any]:
        """Gauges the daemon may export (e.g. memory occupancy per class under ``samples_per_class``)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            raise ValueError(f"{self.name}: unexpected state keys {sorted(state)}")


class BufferedPlugin(Plugin):
    """A strategy that keeps its own memory in ``self.buffer`` (DER++, A-GEM): its occupancy and state."""

    buffer: Any = None

    def metrics(self) -> dict[str, Any]:
        return {"samples_per_class": self.buffer.samples_per_class() if self.buffer is not None else {}}

    def state_dict(self) -> dict[str, Any]:
        return {"buffer": self.buffer.state_dict()} if self.buffer is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state and self.buffer is not None:
            self.buffer.load_state_dict(state["buffer"])
