"""Every memory round-trips exactly through its state, as checkpoints store it (weights_only torch.load)."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
import torch

from lifelong.learner import Learner
from lifelong.models.zoo import build_model
from lifelong.replay import ClassBalancedBuffer, GenerativeReplay, HerdingBuffer, ReplayPlugin, ReservoirBuffer
from lifelong.strategies.base import Plugin


def through_disk(state: dict) -> dict:
    blob = io.BytesIO()
    torch.save(state, blob)
    blob.seek(0)
    return torch.load(blob, weights_only=True)


def stream(seed: int, n: int = 180) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) * 3 // n  # three classes, in order (class-incremental)
    return torch.rand(n, 16, generator=gen), y


def make_learner(plugin: Plugin, seed: int) -> Learner:
    torch.manual_seed(seed)
    model = build_model("mlp", [16], 6, [24])
    return Learner(model, torch.optim.SGD(model.parameters(), lr=0.05), [plugin], batch_size=20)


MEMORIES: dict[str, Callable[[int], Plugin]] = {
    "reservoir": lambda seed: ReplayPlugin(lambda d: ReservoirBuffer(50, d, seed), batch_size=8),
    "class_balanced": lambda seed: ReplayPlugin(lambda d: ClassBalancedBuffer(50, d, seed), batch_size=8),
    "herding": lambda seed: ReplayPlugin(lambda d: HerdingBuffer(48, d, seed), batch_size=8, nme=True),
    "generative": lambda seed: GenerativeReplay(batch_size=8, latent=4, hidden=16, seed=seed),
}


def draw(plugin: Plugin, n: int) -> dict[str, torch.Tensor]:
    if isinstance(plugin, GenerativeReplay):
        return plugin.sample(n)
    assert isinstance(plugin, ReplayPlugin) and plugin.buffer is not None
    return plugin.buffer.sample(n)


@pytest.mark.parametrize("kind", sorted(MEMORIES))
def test_memory_state_round_trips_exactly(kind: str):
    x, y = stream(0)
    original = MEMORIES[kind](1)
    learner = make_learner(original, 0)
    for i in range(0, 180, 20):
        if i in (60, 120):
            learner.boundary()
        learner.process(x[i : i + 20], y[i : i + 20])
    state = through_disk(learner.state_dict())

    restored = MEMORIES[kind](99)  # a different seed: everything must come from the state
    twin = make_learner(restored, 5)
    twin.load_state_dict(state)
    assert restored.metrics() == original.metrics()
    assert restored.metrics()["samples_per_class"]
    for _ in range(3):
        a, b = draw(original, 16), draw(restored, 16)
        assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    # and both go on identically: same inserts, same boundary, same samples, same predictions (classes seen
    # before the checkpoint only: a new class's head row is initialised from the global RNG, not the state)
    for learner_ in (learner, twin):
        learner_.process(x[160:180], y[160:180])
        learner_.boundary()
        learner_.process(x[20:60], y[20:60])
    a, b = draw(original, 16), draw(restored, 16)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(learner.scores(x[:50]), twin.scores(x[:50]))


def test_a_buffer_refuses_a_state_of_another_capacity():
    buf = ReservoirBuffer(10)
    buf.insert(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long))
    other = ReservoirBuffer(20)
    with pytest.raises(ValueError, match="capacity"):
        other.load_state_dict(through_disk(buf.state_dict()))
