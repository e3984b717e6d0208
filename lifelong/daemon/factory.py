"""Turn a validated ``Settings`` into the learner and its companions (one place that knows every section)."""

from __future__ import annotations

import logging
import os
import random

import numpy as np
import torch

from lifelong.config import Settings
from lifelong.learner import Learner, build_optimizer, resolve_autocast, resolve_device
from lifelong.models import build_model

log = logging.getLogger(__name__)


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.set_num_threads(1)


def strategy_label(settings: Settings) -> str:
    """A short name for build info and logs, e.g. ``reservoir+ewc+lwf``."""
    parts = [] if settings.replay.kind == "none" else [settings.replay.kind]
    parts += [spec.name for spec in settings.strategies]
    return "+".join(parts) or "naive"


def build_drift(settings: Settings):
    """The drift monitor and its reactions (validates detector and reaction names and parameters)."""
    from lifelong.drift.monitor import DriftMonitor
    from lifelong.drift.reactions import Reactor

    monitor = DriftMonitor(settings.drift, num_features=settings.num_features,
                           max_classes=settings.model.max_classes, seed=settings.daemon.seed)
    reactor = Reactor(settings.drift.reactions, boundary_from_drift=settings.boundaries.from_drift)
    return monitor, reactor


def validate_components(settings: Settings) -> None:
    """Build the parts whose parameters the config models leave open (strategies, detectors, reactions):
    raises ValueError naming the key path, so a bad config is refused at start instead of mid-stream."""
    from lifelong.strategies.registry import build_plugins

    build_plugins(settings)
    build_drift(settings)


def build_learner(settings: Settings, device: torch.device | None = None) -> Learner:
    """Model, optimizer, replay memory and strategies from the config, on the configured device."""
    from lifelong.strategies.registry import build_plugins

    device = device or resolve_device(settings.daemon.device)
    if device.type == "cpu":  # before any torch thread starts: new threads inherit this thread's FP mode
        torch.set_flush_denormal(settings.daemon.flush_denormal)
    m = settings.model
    model = build_model(m.name, m.input_shape, m.max_classes, m.hidden, m.weights).to(device)
    o = settings.optim
    optimizer = build_optimizer(o.name, model.parameters(), o.lr, o.momentum, o.weight_decay)
    plugins = build_plugins(settings)
    return Learner(model, optimizer, plugins, device=device, batch_size=o.batch_size,
                   steps_per_batch=o.steps_per_batch, grad_clip=o.grad_clip,
                   shared_forward=o.shared_forward, autocast=resolve_autocast(settings.daemon.autocast, device))


def tune_for_stream(learner: Learner, settings: Settings) -> None:
    """Tune ``learner`` for running beside its fetchers, once per learner: on the CPU torch keeps the cores the
    fetchers leave (two busy OpenMP threads sharing two cores with a fetcher ran the learner several times
    slower than one), plus torch.compile (``daemon.compile``, ``daemon.compile_mode``) and the fused optimizer
    kernel of ``optim.fused``. bf16 autocast and the shared forward are the Learner's own."""
    if getattr(learner, "_lifelong_tuned", False):
        return
    learner._lifelong_tuned = True  # type: ignore[attr-defined]
    d = settings.daemon
    threads = d.torch_threads
    if threads is None and d.prefetch and learner.device.type == "cpu":
        threads = max(1, (os.cpu_count() or 1) - d.fetch_workers)
    if threads:
        torch.set_num_threads(threads)
    if d.compile:  # in place: parameters and state_dict keys stay as they are
        for part in (getattr(learner.model, "backbone", None), learner.model.head):
            if part is not None:
                part.compile(mode=d.compile_mode)
    fused = apply_fused(learner, settings.optim.fused)
    log.info("learner: %d torch threads, autocast %s, compile %s, fused optimizer %s, shared forward %s, "
             "flush denormal %s", torch.get_num_threads(), learner.autocast or "off",
             d.compile_mode if d.compile else False, bool(fused), learner.shared_forward,
             d.flush_denormal and learner.device.type == "cpu")


def apply_fused(learner: Learner, requested: bool | None) -> bool:
    """``optim.fused``: step with the optimizer's fused kernel (None: where PyTorch has one for this optimizer
    and device). Restored step counters move to where the fused kernels keep them. Returns whether it is on."""
    fused = requested
    if fused is None:
        fused = isinstance(learner.optimizer, torch.optim.SGD | torch.optim.Adam | torch.optim.AdamW) and (
            learner.device.type in ("cpu", "cuda"))
    for group in learner.optimizer.param_groups:  # read by step() on every call
        group["fused"] = bool(fused)
        if fused:
            group["foreach"] = False
    if fused:  # restored step counters as the fused kernels keep them: float32 on the parameters' device
        for state in learner.optimizer.state.values():
            if torch.is_tensor(state.get("step")):
                state["step"] = state["step"].to(learner.device, torch.float32)
    return bool(fused)
