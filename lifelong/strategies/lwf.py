"""Learning without Forgetting: distil the previous model's answers on the current inputs.

Li, Z. & Hoiem, D. (2016/2018). Learning without Forgetting. ECCV 2016; TPAMI 40(12). At each boundary the model
is frozen as a teacher; each step adds ``alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T))`` on the
stream's own inputs, over the classes the teacher knew (temperature ``T``; Hinton et al. 2015's T^2 scaling).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from lifelong.strategies.anchor import frozen_copy
from lifelong.strategies.base import Plugin, StepContext

if TYPE_CHECKING:
    from lifelong.learner import Learner


class LwF(Plugin):
    """``alpha``: weight of the distillation term; ``temperature``: softening of both distributions."""

    name = "lwf"

    def __init__(self, alpha: float = 1.0, temperature: float = 2.0):
        self.alpha, self.temperature = float(alpha), float(temperature)
        self.teacher: nn.Module | None = None
        self.teacher_mask: Tensor | None = None

    def setup(self, learner: Learner) -> None:
        self.template = learner.model
        self.device = learner.device

    def on_boundary(self, learner: Learner) -> None:
        if bool(learner.class_mask.any()):
            self.teacher = frozen_copy(learner.model)
            self.teacher_mask = learner.class_mask.clone()

    def loss(self, ctx: StepContext) -> Tensor | None:
        if self.teacher is None or self.teacher_mask is None or ctx.logits is None:
            return None
        t = self.temperature
        with torch.no_grad():
            target = torch.softmax(self.teacher(ctx.x)[:, self.teacher_mask] / t, dim=1)
        student = torch.log_softmax(ctx.logits[: ctx.n_stream, self.teacher_mask] / t, dim=1)
        return self.alpha * t * t * nn.functional.kl_div(student, target, reduction="batchmean")

    def state_dict(self) -> dict[str, Any]:
        if self.teacher is None or self.teacher_mask is None:
            return {}
        return {"teacher": self.teacher.state_dict(), "teacher_mask": self.teacher_mask.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.teacher = self.teacher_mask = None
        if state:
            self.teacher = frozen_copy(self.template)
            self.teacher.load_state_dict(state["teacher"])
            self.teacher_mask = state["teacher_mask"].to(self.device, torch.bool)
