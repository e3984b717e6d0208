"""daemon.flush_denormal: the learner's thread treats subnormal floats as zero on the CPU (benchmarks/denormals.py
shows why: Adam's moments of weights that never get a gradient decay into subnormals and slow every step)."""

from __future__ import annotations

import torch

from lifelong.config import Settings
from lifelong.daemon.factory import build_learner


def _subnormal_survives() -> bool:
    return torch.tensor([1e-40], dtype=torch.float32).mul(1.0).item() != 0.0


def test_build_learner_sets_the_flush_mode_the_config_asks_for():
    settings = Settings(model={"name": "mlp", "input_shape": [4], "hidden": [8], "max_classes": 3})
    assert settings.daemon.flush_denormal is True  # the default
    try:
        build_learner(settings, torch.device("cpu"))
        assert not _subnormal_survives()
        settings.daemon.flush_denormal = False
        build_learner(settings, torch.device("cpu"))
        assert _subnormal_survives()
    finally:
        torch.set_flush_denormal(False)
