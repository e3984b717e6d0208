"""iCaRL herding picks the exemplars whose mean best matches the class mean; NME predicts with those means."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from lifelong.learner import Learner
from lifelong.models.zoo import ContinualNet
from lifelong.replay import HerdingBuffer, ReplayPlugin, herd


def brute_force_next(features: torch.Tensor, chosen: list[int]) -> int:
    """The remaining row that brings the running mean closest to the mean of all rows (naive loops)."""
    mean = features.double().mean(0)
    best, best_dist = -1, float("inf")
    for i in range(features.shape[0]):
        if i in chosen:
            continue
        subset = features.double()[[*chosen, i]]
        dist = float((subset.mean(0) - mean).norm())
        if dist < best_dist:
            best, best_dist = i, dist
    return best


def test_every_herding_step_is_the_brute_force_best():
    gen = torch.Generator().manual_seed(0)
    for trial in range(20):
        feats = torch.randn(9, 4, generator=gen) * (1 + trial % 3)
        order = herd(feats, 6)
        for k in range(len(order)):
            assert order[k] == brute_force_next(feats, order[:k])


def test_herding_subsets_against_brute_force_over_all_subsets():
    """m=1: the brute-force best. Larger m: greedy herding is an approximation; over tiny random examples its
    subset must rank near the top of all C(n, m) subsets (a random pick ranks 0.5 on average)."""
    gen = torch.Generator().manual_seed(0)
    ranks: dict[int, list[float]] = {1: [], 2: [], 3: []}
    for _ in range(40):
        feats = torch.randn(9, 3, generator=gen)
        mean = feats.mean(0)

        def dist(idx: tuple[int, ...] | list[int], feats: torch.Tensor = feats, mean: torch.Tensor = mean) -> float:
            return float((feats[list(idx)].mean(0) - mean).norm())

        for m in ranks:
            subsets = [dist(c) for c in itertools.combinations(range(9), m)]
            mine = dist(herd(feats, m))
            ranks[m].append(sum(d < mine - 1e-9 for d in subsets) / len(subsets))
    assert max(ranks[1]) == 0.0
    assert sum(ranks[2]) / 40 < 0.1 and sum(ranks[3]) / 40 < 0.1


def test_boundary_ranks_by_herding_and_classes_giving_room_keep_their_herding_prefix():
    buf = HerdingBuffer(capacity=12, seed=0)
    gen = torch.Generator().manual_seed(1)
    identity = lambda x: x  # noqa: E731 - features = inputs
    x01 = torch.randn(40, 3, generator=gen) + torch.tensor([3.0, 0, 0])
    y01 = torch.arange(40) % 2
    buf.insert(x01, y01)
    assert buf.samples_per_class() == {0: 6, 1: 6} and len(buf) == 12  # candidates: 6 per class
    stored = {cls: buf.items_of(cls)["x"] for cls in (0, 1)}
    buf.on_boundary(identity)
    ranked = {}
    for cls in (0, 1):  # every class's samples, best-ranked first = herding order over them
        expected = stored[cls][herd(nn.functional.normalize(stored[cls], dim=1), 6)]
        ranked[cls] = buf.exemplars_of(cls)["x"]
        assert torch.equal(ranked[cls], expected)
    buf.insert(torch.randn(10, 3, generator=gen), torch.full((10,), 2))  # a new class takes its share
    assert buf.samples_per_class() == {0: 4, 1: 4, 2: 4} and len(buf) == 12
    for cls in (0, 1):  # iCaRL's reduction: the first 4 in herding order stay
        assert torch.equal(buf.exemplars_of(cls)["x"], ranked[cls][:4])


def test_candidates_give_way_before_ranked_exemplars_of_the_same_class():
    buf = HerdingBuffer(capacity=6, seed=0)
    buf.insert(torch.arange(4.0).unsqueeze(1), torch.zeros(4, dtype=torch.long))
    buf.on_boundary(lambda x: torch.cat([x, torch.ones_like(x)], dim=1))
    ranked = buf.exemplars_of(0)["x"].flatten().tolist()
    buf.insert(torch.full((2, 1), 100.0), torch.zeros(2, dtype=torch.long))  # the class comes back: candidates
    assert buf.exemplars_of(0)["x"].flatten().tolist() == ranked + [100.0, 100.0]
    buf.insert(torch.full((3, 1), -5.0), torch.ones(3, dtype=torch.long))  # a new class needs three slots
    assert buf.samples_per_class() == {0: 3, 1: 3}
    assert buf.exemplars_of(0)["x"].flatten().tolist() == ranked[:3]  # candidates first, then the worst-ranked


def test_nme_predicts_the_nearest_class_mean_in_feature_space():
    model = ContinualNet(nn.Identity(), feature_dim=2, max_classes=4, input_shape=(2,))
    plugin = ReplayPlugin(lambda device: HerdingBuffer(40, device, seed=0), batch_size=8, nme=True,
                          nme_refresh_steps=1)
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.0), [plugin], batch_size=16)
    centres = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(30) % 3
    x = centres[y] + 0.1 * torch.randn(30, 2, generator=gen)
    learner.process(x, y)
    learner.boundary()
    probe = torch.tensor([[0.9, 0.2], [0.1, 0.8], [-0.7, -0.1], [0.6, 0.5]])
    means = torch.stack([nn.functional.normalize(nn.functional.normalize(x[y == c], dim=1).mean(0), dim=0)
                         for c in range(3)])
    expected = torch.cdist(nn.functional.normalize(probe, dim=1), means).argmin(1)
    assert learner.predict(probe).tolist() == expected.tolist() == [0, 1, 2, 0]
    assert plugin.metrics()["samples_per_class"] == {0: 10, 1: 10, 2: 10}
