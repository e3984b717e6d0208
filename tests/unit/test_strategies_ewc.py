"""Online EWC: the penalty is zero at the anchor and grows with distance, weighted by the Fisher."""

from __future__ import annotations

import pytest
import torch

from lifelong.learner import Learner
from lifelong.models.zoo import build_model
from lifelong.strategies import EWC
from lifelong.strategies.base import StepContext
from lifelong.strategies.fisher import squared_sample_grads


def setup_ewc(lam: float = 4.0, gamma: float = 1.0) -> tuple[Learner, EWC]:
    torch.manual_seed(0)
    model = build_model("mlp", [6], 3, [5])
    ewc = EWC(lam=lam, gamma=gamma, fisher_samples=8)
    return Learner(model, torch.optim.SGD(model.parameters(), lr=0.1), [ewc], batch_size=8), ewc


def penalty(learner: Learner, ewc: EWC) -> float:
    ctx = StepContext(model=learner.model, x=torch.zeros(1, 6), y=torch.zeros(1, dtype=torch.long),
                      inputs=torch.zeros(1, 6), targets=torch.zeros(1, dtype=torch.long),
                      class_mask=learner.class_mask)
    value = ewc.loss(ctx)
    return 0.0 if value is None else float(value.detach())


def test_no_penalty_before_the_first_boundary_then_zero_at_the_anchor():
    learner, ewc = setup_ewc()
    gen = torch.Generator().manual_seed(0)
    learner.process(torch.randn(16, 6, generator=gen), torch.randint(3, (16,), generator=gen))
    assert ewc.fisher_count == 8 and penalty(learner, ewc) == 0.0
    learner.boundary()
    assert ewc.fisher_count == 0 and ewc.anchor
    assert penalty(learner, ewc) == 0.0


def test_penalty_grows_with_distance_weighted_by_the_fisher():
    learner, ewc = setup_ewc(lam=4.0)
    learner.boundary()  # nothing learnt yet: nothing to consolidate
    assert not ewc.anchor
    model = learner.model
    fisher = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    fisher["head.bias"] = torch.tensor([0.0, 1.0, 9.0])
    ewc.anchor.consolidate(model, fisher)
    with torch.no_grad():
        model.head.bias[0] += 5.0  # zero Fisher: free to move
    assert penalty(learner, ewc) == 0.0
    values = []
    for delta in (0.1, 0.2, 0.4):
        with torch.no_grad():
            model.head.bias[1] = ewc.anchor.anchor["head.bias"][1] + delta
        values.append(penalty(learner, ewc))
    assert values == pytest.approx([4.0 / 2 * 1.0 * d**2 for d in (0.1, 0.2, 0.4)])
    with torch.no_grad():
        model.head.bias[1] = ewc.anchor.anchor["head.bias"][1]
        model.head.bias[2] += 0.1  # same distance, nine times the Fisher
    assert penalty(learner, ewc) == pytest.approx(9 * values[0])


def test_fisher_is_consolidated_with_decay_gamma():
    learner, ewc = setup_ewc(gamma=0.5)
    gen = torch.Generator().manual_seed(1)
    learner.process(torch.randn(8, 6, generator=gen), torch.randint(3, (8,), generator=gen))
    first = ewc.fisher()
    learner.boundary()
    learner.process(torch.randn(8, 6, generator=gen), torch.randint(3, (8,), generator=gen))
    second = ewc.fisher()
    learner.boundary()
    for name in first:
        assert torch.allclose(ewc.anchor.importance[name], 0.5 * first[name] + second[name])
        assert torch.equal(ewc.anchor.anchor[name], dict(learner.model.named_parameters())[name].detach())


@pytest.mark.parametrize("labels", ["data", "model"])
def test_fast_per_sample_fisher_matches_vmap(labels: str):
    torch.manual_seed(0)
    model = build_model("mlp", [10], 5, [7, 6])
    x, y = torch.randn(12, 10), torch.randint(4, (12,))
    mask = torch.tensor([True, True, True, True, False])
    fast = squared_sample_grads(model, x, y, mask, labels, torch.Generator().manual_seed(3))
    slow = squared_sample_grads(model, x, y, mask, labels, torch.Generator().manual_seed(3), method="vmap")
    assert set(fast) == set(slow) == {n for n, _ in model.named_parameters()}
    for name in fast:
        assert torch.allclose(fast[name], slow[name], rtol=1e-4, atol=1e-7)
    # by hand for the head bias: sum over samples of (softmax - onehot)^2 with data labels
    if labels == "data":
        probs = torch.softmax(model(x).masked_fill(~mask, -1e9), dim=1)
        expected = ((probs - torch.nn.functional.one_hot(y, 5)) ** 2).sum(0)
        assert torch.allclose(fast["head.bias"], expected.detach(), rtol=1e-4, atol=1e-7)
