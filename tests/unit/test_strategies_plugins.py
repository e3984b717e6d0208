"""Behaviour of each strategy plugin, and exact resumption of every one from a weights-only checkpoint."""

from __future__ import annotations

import io

import pytest
import torch

from lifelong.config import ReplayConfig
from lifelong.learner import Learner
from lifelong.models.zoo import build_model
from lifelong.strategies import MAS, SI, DERpp, FrozenFeatures, LwF
from lifelong.strategies.base import Plugin, StepContext
from lifelong.strategies.registry import STRATEGIES, build_memory, build_strategy


def blobs(seed: int, classes: list[int], n: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(6, 10, generator=torch.Generator().manual_seed(42)) * 2
    y = torch.tensor(classes)[torch.randint(len(classes), (n,), generator=gen)]
    return centres[y] + torch.randn(n, 10, generator=gen), y


def learner_with(plugins: list[Plugin], seed: int = 0, lr: float = 0.1) -> Learner:
    torch.manual_seed(seed)
    model = build_model("mlp", [10], 6, [16])
    return Learner(model, torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9), plugins, batch_size=16)


def ctx_for(learner: Learner, x: torch.Tensor, y: torch.Tensor) -> StepContext:
    ctx = StepContext(model=learner.model, x=x, y=y, inputs=x, targets=y, class_mask=learner.class_mask)
    ctx.logits = learner.masked(learner.model(x))
    return ctx


def value(loss: torch.Tensor | None) -> float:
    assert loss is not None
    return float(loss.detach())


def params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_lwf_distillation_is_zero_at_the_snapshot_and_positive_after_drift():
    lwf = LwF(alpha=1.0, temperature=2.0)
    learner = learner_with([lwf])
    x, y = blobs(0, [0, 1])
    learner.process(x, y)
    assert lwf.loss(ctx_for(learner, x, y)) is None
    learner.boundary()
    assert value(lwf.loss(ctx_for(learner, x, y))) == pytest.approx(0.0, abs=1e-6)
    for i in range(4):
        learner.process(*blobs(10 + i, [2, 3]))
    assert value(lwf.loss(ctx_for(learner, x, y))) > 1e-3
    assert lwf.teacher is not None and not any(p.requires_grad for p in lwf.teacher.parameters())


def test_si_and_mas_importances_are_nonnegative_and_anchor_at_boundaries():
    si, mas = SI(c=1.0), MAS(lam=1.0)
    learner = learner_with([si, mas])
    for i in range(4):
        learner.process(*blobs(i, [0, 1]))
    assert not si.anchor and not mas.anchor
    assert any(float(w.abs().sum()) > 0 for w in si.path.values()) and mas.count == 4 * 48
    learner.boundary()
    for plugin in (si, mas):
        assert plugin.anchor and all(float(v.min()) >= 0 for v in plugin.anchor.importance.values())
        assert sum(float(v.sum()) for v in plugin.anchor.importance.values()) > 0
        assert value(plugin.loss(ctx_for(learner, *blobs(9, [0])))) == 0.0  # at the anchor
    for i in range(3):
        learner.process(*blobs(20 + i, [2, 3]))
    assert value(si.loss(ctx_for(learner, *blobs(9, [0])))) > 0
    assert value(mas.loss(ctx_for(learner, *blobs(9, [0])))) > 0


def test_frozen_features_train_the_head_only_after_the_first_boundary():
    frozen = FrozenFeatures(after_boundaries=1)
    learner = learner_with([frozen])
    before = params(learner.model)
    learner.process(*blobs(0, [0, 1]))
    after_first = params(learner.model)
    assert not torch.equal(before["backbone.1.weight"], after_first["backbone.1.weight"])
    learner.boundary()
    for i in range(3):
        learner.process(*blobs(1 + i, [2, 3]))
    now = params(learner.model)
    assert all(torch.equal(now[n], after_first[n]) for n in now if not n.startswith("head."))
    assert not torch.equal(now["head.weight"], after_first["head.weight"])


def test_derpp_logit_term_is_zero_right_after_storing():
    der = DERpp(alpha=1.0, beta=0.0, memory=100, batch_size=32)
    learner = learner_with([der])
    x, y = blobs(0, [0, 1])
    learner.process(x, y)
    assert der.buffer is not None and len(der.buffer) == 48
    learner.model.eval()  # no dropout/BN here: eval and train forward agree
    assert value(der.loss(ctx_for(learner, x, y))) == pytest.approx(0.0, abs=1e-10)
    learner.process(*blobs(1, [2, 3]))
    assert value(der.loss(ctx_for(learner, x, y))) > 0


def through_disk(state: dict) -> dict:
    blob = io.BytesIO()
    torch.save(state, blob)
    blob.seek(0)
    return torch.load(blob, weights_only=True)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_resumes_exactly_from_a_weights_only_checkpoint(name: str):
    def build(seed: int) -> list[Plugin]:
        memory = build_memory(ReplayConfig(kind="reservoir", capacity=64, batch_size=8), seed)
        assert memory is not None
        return [memory, build_strategy(name, {}, seed)]

    first = learner_with(build(1))
    for i in range(3):
        first.process(*blobs(i, [0, 1, 2, 3]))  # every class activated before the checkpoint
    first.boundary()
    first.process(*blobs(3, [0, 1]))
    state = through_disk(first.state_dict())
    second = learner_with(build(77), seed=5)
    second.load_state_dict(state)
    for learner in (first, second):
        learner.process(*blobs(4, [2, 3]))
        learner.boundary()
        learner.process(*blobs(5, [0, 3]))
    a, b = params(first.model), params(second.model)
    assert all(torch.equal(a[n], b[n]) for n in a), name


def test_ace_scores_stream_rows_only_over_their_own_classes():
    from lifelong.replay import ReplayPlugin, ReservoirBuffer
    from lifelong.strategies import ACE

    memory = ReplayPlugin(lambda d: ReservoirBuffer(64, d, 0), batch_size=16)
    learner = learner_with([memory, ACE()], lr=0.0)
    learner.process(*blobs(0, [0, 1]))
    seen: dict[str, torch.Tensor] = {}

    class Grab(Plugin):
        name = "grab"

        def after_backward(self, ctx):
            seen["mask"] = ctx.loss_mask.clone()
            seen["grad"] = ctx.model.head.bias.grad.clone()
            seen["rows"] = torch.tensor([ctx.n_stream, ctx.targets.shape[0]])

    learner.plugins.append(Grab())
    x, y = blobs(1, [2])  # a new class alone in the micro-batch
    learner.process(x, y)
    n, total = seen["rows"].tolist()
    assert total > n  # replayed rows were appended
    mask = seen["mask"]
    assert mask[:n].sum(1).eq(1).all() and mask[:n, 2].all()  # stream rows: only their own class
    assert mask[n:, :3].all() and not mask[n:, 3:].any()  # replayed rows: every seen class
    # old classes' logits get gradient only from replayed rows: with ACE their bias is not pushed by class 2
    assert float(seen["grad"][0]) != 0.0
