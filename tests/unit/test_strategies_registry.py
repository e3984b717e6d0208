"""The registry builds memories and strategies from the config, rejecting unknown names and parameters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from lifelong.config import load_settings
from lifelong.learner import Learner, build_optimizer
from lifelong.models.zoo import build_model
from lifelong.replay import ReplayPlugin, ReservoirBuffer
from lifelong.strategies import EWC, LwF, build_plugins
from lifelong.strategies.registry import STRATEGIES, parameter_table

README = Path(__file__).resolve().parents[2] / "lifelong" / "strategies" / "README.md"

COMBINATION = """
model: {name: mlp, input_shape: [64], hidden: [64], max_classes: 10}
optim: {name: sgd, lr: 0.1, batch_size: 16}
replay: {kind: reservoir, capacity: 200, batch_size: 16}
strategies:
  - name: ewc
    lam: 5
  - {name: lwf, temperature: 2.0}
daemon: {seed: 3}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_reservoir_with_ewc_and_lwf_from_yaml_trains_on_digits(tmp_path: Path):
    settings = load_settings(write(tmp_path, COMBINATION))
    plugins = build_plugins(settings)
    assert [type(p) for p in plugins] == [ReplayPlugin, EWC, LwF]
    assert plugins[1].lam == 5.0 and plugins[2].temperature == 2.0
    torch.manual_seed(0)
    m = settings.model
    model = build_model(m.name, m.input_shape, m.max_classes, m.hidden)
    learner = Learner(model, build_optimizer("sgd", model.parameters(), settings.optim.lr), plugins,
                      batch_size=settings.optim.batch_size)
    assert isinstance(plugins[0], ReplayPlugin) and isinstance(plugins[0].buffer, ReservoirBuffer)
    digits = load_digits()
    x = (digits.data / 16).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], digits.target[order]
    losses, correct = [], []
    for epoch in range(2):
        for i in range(0, len(x), 32):
            if i and i % 480 == 0:
                learner.boundary()  # as the daemon's schedule would
            result = learner.process(x[i : i + 32], y[i : i + 32])
            losses.append(result.train_loss)
            if epoch == 1:
                correct.append(result.correct.mean())
    assert np.isfinite(losses).all()
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    assert np.mean(correct) > 0.85  # prequential accuracy of the second pass
    assert plugins[1].anchor and plugins[2].teacher is not None
    assert sum(learner.plugin_metrics()["samples_per_class"].values()) == 200


@pytest.mark.parametrize(
    ("strategies", "message"),
    [
        ([{"name": "ewc"}, {"name": "ewc", "lam": 1, "lamda": 2}], r"strategies\[1\]\.lamda: unknown parameter"),
        ([{"name": "naive"}, {"name": "sgd"}], r"strategies\[1\]\.name: unknown strategy 'sgd'"),
        ([{"name": "ewc", "gamma": 1.5}], r"strategies\[0\]\.gamma: Input should be less than or equal to 1"),
        ([{"name": "lwf", "temperature": "hot"}], r"strategies\[0\]\.temperature: Input should be a valid number"),
        ([{"name": "naive", "x": 1}], r"strategies\[0\]\.x: unknown parameter"),
    ],
)
def test_bad_names_and_parameters_are_reported_with_their_key_path(strategies, message):
    settings = load_settings(None, strategies=strategies)
    with pytest.raises(ValueError, match=message):
        build_plugins(settings)


def test_every_strategy_builds_with_defaults_and_names_stay_unique():
    settings = load_settings(None, replay={"kind": "herding", "nme": True},
                             strategies=[{"name": name} for name in STRATEGIES] + [{"name": "ewc"}])
    plugins = build_plugins(settings)
    names = [p.name for p in plugins]
    assert len(plugins) == len(STRATEGIES) + 2 and len(set(names)) == len(names)
    assert names[0] == "replay" and plugins[0].nme


def test_readme_table_matches_the_registry():
    assert parameter_table() in README.read_text()


def test_per_class_counts_of_several_memories_add_up():
    settings = load_settings(None, model={"input_shape": [4], "hidden": [8], "max_classes": 3},
                             replay={"kind": "class_balanced", "capacity": 6},
                             strategies=[{"name": "derpp", "memory": 5}])
    torch.manual_seed(0)
    model = build_model("mlp", [4], 3, [8])
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.1), build_plugins(settings), batch_size=8)
    learner.process(torch.randn(8, 4), torch.tensor([0, 1] * 4))
    counts = learner.plugin_metrics()["samples_per_class"]
    assert sum(counts.values()) == 11 and set(counts) == {0, 1}


def test_every_yaml_example_in_the_readme_builds(tmp_path: Path):
    blocks = README.read_text().split("```yaml\n")[1:]
    assert len(blocks) >= 2
    for block in blocks:
        settings = load_settings(write(tmp_path, block.split("```")[0]))
        assert build_plugins(settings) or settings.replay.kind == "none"
