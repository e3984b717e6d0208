"""A-GEM: the projected gradient never has a negative dot product with the memory gradient."""

from __future__ import annotations

import torch
from torch import nn

from lifelong.learner import Learner
from lifelong.models.zoo import build_model
from lifelong.strategies import AGEM
from lifelong.strategies.agem import project
from lifelong.strategies.base import Plugin


def test_projection_removes_exactly_the_conflicting_component():
    gen = torch.Generator().manual_seed(0)
    conflicts = 0
    for _ in range(200):
        g, g_ref = torch.randn(30, generator=gen), torch.randn(30, generator=gen)
        out = project(g, g_ref)
        assert float(out @ g_ref) >= -1e-5
        if float(g @ g_ref) >= 0:
            assert out is g
        else:
            conflicts += 1
            assert abs(float(out @ g_ref)) < 1e-4  # projected onto the plane orthogonal to g_ref
            assert torch.allclose(out + (float(g @ g_ref) / float(g_ref @ g_ref)) * g_ref, g, atol=1e-5)
    assert conflicts > 50


def test_agem_plugin_projects_the_real_gradient():
    torch.manual_seed(0)
    model = build_model("mlp", [8], 4, [16])
    agem = AGEM(memory=64, sample_size=64)
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.5), [agem], batch_size=32)
    gen = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 8, generator=gen) * 3
    old_y = torch.arange(64) % 2
    for _ in range(5):  # learn classes 0 and 1; the memory ends up holding exactly these 64 samples
        old_x = centres[old_y] + torch.randn(64, 8, generator=gen)
        learner.process(old_x, old_y)
    mem = agem.buffer
    assert mem is not None and len(mem) == 64 and set(mem.samples_per_class()) == {0, 1}

    seen: list[float] = []

    class Check(Plugin):  # runs right after A-GEM: measure the final gradient against the memory gradient
        name = "check"

        def after_backward(self, ctx):
            params = [p for p in ctx.model.parameters() if p.requires_grad]
            rows = mem.store.read(torch.arange(len(mem)))
            logits = ctx.model(rows["x"]).masked_fill(~ctx.class_mask, -1e9)
            ref = torch.autograd.grad(nn.functional.cross_entropy(logits, rows["y"]), params)
            seen.append(float(sum((p.grad * r).sum() for p, r in zip(params, ref, strict=True))))

    learner.plugins.append(Check())
    new_y = 2 + torch.arange(64) % 2
    for _ in range(4):  # new classes: their gradient conflicts with the old classes' memory
        learner.process(centres[new_y] + torch.randn(64, 8, generator=gen), new_y)
    assert agem.projections > 0
    assert seen and min(seen) >= -1e-5
