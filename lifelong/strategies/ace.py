"""ER-ACE: asymmetric cross-entropy, so learning new classes does not push the old classes' logits down.

Caccia, L., Aljundi, R., Asadi, N., Tuytelaars, T., Pineau, J. & Belilovsky, E. (2022). New Insights on Reducing
Abrupt Representation Change in Online Continual Learning. ICLR. The stream's own samples are scored only over
the classes present in their micro-batch; replayed samples over every class seen so far. Compose it after a
replay memory (``replay: class_balanced`` + ``strategies: [ace]``); without replay it only masks the stream.
"""

from __future__ import annotations

import torch

from lifelong.strategies.base import Plugin, StepContext


class ACE(Plugin):
    """Sets the per-row loss mask; has no parameters and no state."""

    name = "ace"

    def before_step(self, ctx: StepContext) -> None:
        mask = ctx.class_mask.unsqueeze(0).expand(ctx.targets.shape[0], -1).clone()
        present = torch.zeros_like(ctx.class_mask)
        present[ctx.y] = True
        mask[: ctx.n_stream] = present & ctx.class_mask
        ctx.loss_mask = mask
