"""What EWC, SI and MAS share: an importance-weighted quadratic pull towards an anchor.

``penalty(model) = sum_i importance_i * (theta_i - anchor_i) ** 2`` over the parameters that have an anchor.
Importances are consolidated at boundaries as ``importance = decay * importance + new`` (online EWC's decay,
Schwarz et al. 2018; decay 1 sums them as SI and MAS do), and the anchor moves to the current parameters.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn


def trainable(model: nn.Module) -> dict[str, nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def frozen_copy(model: nn.Module) -> nn.Module:
    """A snapshot for distillation or labelling: eval mode, no gradients, same device."""
    clone = copy.deepcopy(model).eval()
    clone.requires_grad_(False)
    return clone


class QuadraticAnchor:
    """Importances and anchor values per parameter name; empty until the first consolidation."""

    def __init__(self) -> None:
        self.importance: dict[str, Tensor] = {}
        self.anchor: dict[str, Tensor] = {}

    def __bool__(self) -> bool:
        return bool(self.anchor)

    def penalty(self, model: nn.Module) -> Tensor | None:
        if not self.anchor:
            return None
        terms = [
            (self.importance[name] * (p - self.anchor[name]) ** 2).sum()
            for name, p in model.named_parameters()
            if name in self.anchor
        ]
        return torch.stack(terms).sum() if terms else None

    @torch.no_grad()
    def consolidate(self, model: nn.Module, new: dict[str, Tensor], decay: float = 1.0) -> None:
        for name, p in model.named_parameters():
            if name not in new:
                continue
            old = self.importance.get(name)
            self.importance[name] = new[name].detach().clone() if old is None else decay * old + new[name]
            self.anchor[name] = p.detach().clone()

    def state_dict(self) -> dict[str, Any]:
        return {"importance": dict(self.importance), "anchor": dict(self.anchor)}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.importance = {k: v.to(device) for k, v in state.get("importance", {}).items()}
        self.anchor = {k: v.to(device) for k, v in state.get("anchor", {}).items()}
