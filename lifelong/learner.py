"""The learner: prequential test-then-train on micro-batches. It knows nothing of Kafka.

``Learner.process(x, y)`` first predicts every sample with the model as it stands, scores it, and only then
learns from it. Scores are therefore honest held-out figures on data the model has not been trained on.
Strategies and memories join through the plugin hooks in ``lifelong.strategies.base``.

Where nothing makes prediction differ from the training forward pass (no BatchNorm or dropout, no plugin that
replaces predictions), the predictions are read off the training step's own forward pass, taken before its
optimizer step (``shared_forward``): the same scores as a separate no-grad pass, for one forward pass fewer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lifelong.strategies.base import Plugin, StepContext

log = logging.getLogger(__name__)

MASKED_LOGIT = -1e9
# Modules whose output differs between train() and eval(): prediction then needs its own eval-mode pass.
MODE_DEPENDENT = (nn.modules.batchnorm._NormBase, nn.modules.dropout._DropoutNd)


BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of CPUs with bf16 matrix instructions


def cpu_bf16_flags(cpuinfo: str = "/proc/cpuinfo") -> list[str]:
    """Which of :data:`BF16_CPU_FLAGS` this CPU has (empty where unknown: no /proc/cpuinfo)."""
    try:
        with open(cpuinfo) as info:
            flags = next((line.split(":", 1)[-1].split() for line in info if line.startswith("flags")), [])
    except OSError:
        return []
    return [flag for flag in BF16_CPU_FLAGS if flag in flags]


def fast_bf16(device: torch.device, cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether bf16 autocast is known to speed this device's learner up: a CPU with bf16 matrix instructions,
    AMX-BF16 tiles (Intel Sapphire Rapids and later: 1.37x the MLP benchmark's end-to-end rate) or AVX512-BF16
    dot products (AMD Zen 4 and later, Intel Cooper Lake; benchmarks/autocast.py times the learner alone), at
    the same accuracy (benchmarks/RESULTS.md). Not on CPUs without them (no native bf16 dot product to gain from),
    and not on CUDA until a GPU run shows it helps there."""
    return device.type == "cpu" and bool(cpu_bf16_flags(cpuinfo))


def resolve_autocast(requested: str, device: torch.device) -> torch.dtype | None:
    """``daemon.autocast``: off, bf16, or auto (bf16 where :func:`fast_bf16` says so)."""
    if requested == "bf16" or (requested == "auto" and fast_bf16(device)):
        return torch.bfloat16
    return None


def resolve_device(requested: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; ``cuda`` without a GPU falls back with one log line."""
    if requested in ("auto", "cuda") and torch.cuda.is_available():
        device = torch.device("cuda")
        log.info("device: cuda (%s)", torch.cuda.get_device_name(device))
        return device
    if requested == "cuda":
        log.warning("device: cuda requested but no CUDA GPU is available; falling back to the CPU")
    else:
        log.info("device: cpu")
    return torch.device("cpu")


@dataclass
class StepResult:
    """What one micro-batch produced, as numpy arrays aligned with the input rows."""

    predictions: np.ndarray
    correct: np.ndarray
    losses: np.ndarray
    train_loss: float
    train_seconds: float
    new_classes: list[int]
    skipped_steps: int = 0

    def __len__(self) -> int:
        return int(self.predictions.shape[0])


@dataclass
class _Capture:
    """What a micro-batch's first training pass leaves for its prequential scores: each stream row's logits, and
    its cross-entropy while every step's loss was the plain masked one (None once a step's was not)."""

    logits: Tensor
    losses: Tensor | None


class Learner:
    """A model, its optimizer and plugins, fed micro-batches in stream order."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        plugins: Sequence[Plugin] = (),
        device: torch.device | str = "cpu",
        batch_size: int = 32,
        steps_per_batch: int = 1,
        grad_clip: float | None = None,
        shared_forward: bool | None = None,
        autocast: torch.dtype | None = None,
    ):
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self._params = list(self.model.parameters())  # read every step: a list, not a walk of the module tree
        self.optimizer = optimizer
        self.plugins = list(plugins)
        self.batch_size = batch_size
        self.steps_per_batch = steps_per_batch
        self.grad_clip = grad_clip
        self.max_classes = int(model.head.out_features)
        self.class_mask = torch.zeros(self.max_classes, dtype=torch.bool, device=self.device)
        self._seen_host = np.zeros(self.max_classes, dtype=bool)  # class_mask's host copy: no device read per batch
        self.events_seen = 0
        self.train_steps = 0
        self.skipped_steps = 0
        self.boundaries = 0
        self.oom_events = 0
        self._base_lrs = [group["lr"] for group in optimizer.param_groups]
        self._lr_boost_until = -1
        self._pin = self.device.type == "cuda"
        for plugin in self.plugins:
            plugin.setup(self)
        self.shared_forward = self._resolve_shared_forward(shared_forward)
        self.autocast = autocast  # predict and train steps run under it; weights and optimizer stay float32

    def _resolve_shared_forward(self, requested: bool | None) -> bool:
        """None: on when safe. True where it is not safe is refused: the predictions would not be honest."""
        reasons = []
        moded = sorted({type(m).__name__ for m in self.model.modules() if isinstance(m, MODE_DEPENDENT)})
        if moded:
            reasons.append(f"the model has {', '.join(moded)} (train and eval outputs differ)")
        replacing = [p.name for p in self.plugins if p.replaces_predictions()]
        if replacing:
            reasons.append(f"plugin {', '.join(replacing)} replaces the model's predictions")
        if requested and reasons:
            raise ValueError("optim.shared_forward: true is not possible: " + "; ".join(reasons))
        return not reasons if requested is None else bool(requested)

    # ---- classes -------------------------------------------------------------------------------------------
    @property
    def seen_classes(self) -> list[int]:
        return np.flatnonzero(self._seen_host).tolist()

    def _new_classes(self, labels: np.ndarray) -> list[int]:
        """The classes in ``labels`` not seen before, from the host copy of the mask (numpy: about 5 us for 256
        labels, where torch.unique and a mask lookup on the device cost several small operations and a sync)."""
        present = np.unique(labels)
        if present.size and (present[0] < 0 or present[-1] >= self.max_classes):
            raise ValueError(f"label {present[0] if present[0] < 0 else present[-1]} is outside the model's "
                             f"classes 0..{self.max_classes - 1}")
        return present[~self._seen_host[present]].tolist()

    def _activate(self, new: list[int]) -> None:
        """Open ``new`` classes: their head rows reset, their logits unmasked from now on."""
        if not new:
            return
        for cls in new:
            self.model.reset_class(cls)
        self.class_mask[torch.tensor(new, device=self.device)] = True
        self._seen_host[new] = True

    def masked(self, logits: Tensor) -> Tensor:
        """Logits with never-seen classes pushed out of reach (as they are once every class has been seen)."""
        if self._seen_host.all():
            return logits
        return logits.masked_fill(~self.class_mask, MASKED_LOGIT)

    # ---- data movement -------------------------------------------------------------------------------------
    def to_device(self, array: np.ndarray | Tensor, dtype: torch.dtype | None = None) -> Tensor:
        tensor = torch.as_tensor(array)
        if dtype is not None:
            tensor = tensor.to(dtype)
        if self._pin and tensor.device.type == "cpu":
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.to(self.device)

    # ---- prediction ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def scores(self, x: Tensor) -> Tensor:
        """Class scores for ``x`` (already on the device), after any plugin's prediction override."""
        was_training = self.model.training
        self.model.eval()
        logits = self.masked(self.model(x))
        for plugin in self.plugins:
            replaced = plugin.predict(self, x, logits)
            if replaced is not None:
                logits = replaced
        self.model.train(was_training)
        return logits

    def predict(self, x: np.ndarray | Tensor) -> np.ndarray:
        return self.scores(self.to_device(x, torch.float32)).argmax(1).cpu().numpy()

    # ---- prequential step ----------------------------------------------------------------------------------
    def process(self, x: np.ndarray | Tensor, y: np.ndarray | Tensor) -> StepResult:
        """Predict every sample, score it, then train on it. Returns per-sample predictions and losses."""
        with torch.autocast(self.device.type, dtype=self.autocast or torch.bfloat16, enabled=bool(self.autocast)):
            return self._process(x, y)

    def _process(self, x: np.ndarray | Tensor, y: np.ndarray | Tensor) -> StepResult:
        xt = self.to_device(x, torch.float32)
        yt = self.to_device(y, torch.long)
        labels = (y.cpu().numpy() if isinstance(y, Tensor) else np.asarray(y)).astype(np.int64, copy=False)
        anything_seen = bool(self._seen_host.any())
        scores = None
        if anything_seen and not self.shared_forward:
            scores = self.scores(xt)
        new_classes = self._new_classes(labels)
        seen_before = self.class_mask.clone() if new_classes else self.class_mask
        self._activate(new_classes)
        start = time.perf_counter()
        capture = None
        if self.shared_forward:
            rows = xt.shape[0]
            # with no new class the training loss of a stream row is its prequential loss: the same logits,
            # masked the same way, against the same label (while no plugin masks the loss, as ACE does)
            capture = _Capture(torch.empty(rows, self.max_classes, device=self.device),
                               torch.empty(rows, device=self.device) if anything_seen and not new_classes else None)
        train_loss, skipped = self.train(xt, yt, capture=capture)
        losses = None
        if capture is not None and anything_seen:
            # read off the training forward, before its optimizer step; classes first seen in this batch are
            # masked as they were when it arrived, so a prediction never names a class the model had not seen
            scores = capture.logits.masked_fill(~seen_before, MASKED_LOGIT) if new_classes else capture.logits
            losses = capture.losses
        for plugin in self.plugins:
            plugin.after_batch(self, xt, yt)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - start
        if scores is not None:
            preds = scores.argmax(1)
            if losses is None:
                losses = nn.functional.cross_entropy(scores.float(), yt, reduction="none")
            if new_classes:
                # a class never seen cannot be predicted: its loss (against a masked logit) says nothing
                losses = losses.masked_fill(~seen_before[yt], float("nan"))
        else:  # nothing learned yet: no prediction is possible, count it as wrong
            preds = torch.full_like(yt, -1)
            losses = torch.full(yt.shape, float("nan"), device=self.device)
        preds_np = preds.cpu().numpy()
        self.events_seen += len(labels)
        self._update_lr()
        return StepResult(
            predictions=preds_np,
            correct=preds_np == labels,
            losses=losses.float().cpu().numpy(),
            train_loss=train_loss,
            train_seconds=seconds,
            new_classes=new_classes,
            skipped_steps=skipped,
        )

    def train(self, x: Tensor, y: Tensor, capture: _Capture | None = None) -> tuple[float, int]:
        """Gradient steps over ``x, y`` in chunks of ``batch_size``.

        A step whose loss or gradients are not finite is skipped (weights kept, counted). On CUDA out-of-memory the
        batch size is halved and the same chunk retried, so a too-large setting degrades instead of crashing.
        ``capture`` receives each stream row's logits (and cross-entropy, where it asks for them) from its first
        pass, taken before that step's optimizer update.
        """
        self.model.train()
        total, count, skipped = None, 0, 0
        for epoch in range(self.steps_per_batch):
            start = 0
            while start < x.shape[0]:
                size = self.batch_size
                try:
                    loss, logits, row_losses = self._step(x[start : start + size], y[start : start + size])
                except torch.cuda.OutOfMemoryError:
                    if size == 1:
                        raise
                    self._on_oom()
                    continue
                if capture is not None and epoch == 0:
                    capture.logits[start : start + size] = logits
                    if capture.losses is not None:
                        if row_losses is None:
                            capture.losses = None
                        else:
                            capture.losses[start : start + size] = row_losses
                start += size
                if loss is None:
                    skipped += 1
                else:
                    total = loss if total is None else total + loss
                    count += 1
        self.skipped_steps += skipped
        return (float(total) / count if count else float("nan")), skipped

    def _on_oom(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        self.batch_size = max(1, self.batch_size // 2)
        self.oom_events += 1
        log.warning("CUDA out of memory: batch size halved to %d and the step retried", self.batch_size)

    def _step(self, x: Tensor, y: Tensor) -> tuple[Tensor | None, Tensor, Tensor | None]:
        """One gradient step; returns its loss (None: skipped as non-finite), the stream rows' logits and their
        cross-entropy (None where a plugin masked the loss)."""
        ctx = StepContext(model=self.model, x=x, y=y, inputs=x, targets=y, class_mask=self.class_mask,
                          step=self.train_steps)
        for plugin in self.plugins:
            plugin.before_step(ctx)
        features = self.model.features(ctx.inputs)
        ctx.features = features
        ctx.logits = self.masked(self.model.head(features))
        scored = ctx.logits if ctx.loss_mask is None else ctx.logits.masked_fill(~ctx.loss_mask, MASKED_LOGIT)
        row_losses = nn.functional.cross_entropy(scored, ctx.targets, reduction="none")
        loss = row_losses.mean()
        for plugin in self.plugins:
            extra = plugin.loss(ctx)
            if extra is not None:
                loss = loss + extra
        ctx.loss = loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        stream_logits = ctx.logits[: ctx.n_stream].detach()
        stream_losses = row_losses[: ctx.n_stream].detach() if ctx.loss_mask is None else None
        if not self._finite(loss):
            self.optimizer.zero_grad(set_to_none=True)
            log.warning("non-finite loss or gradient at step %d: step skipped, weights kept", self.train_steps)
            return None, stream_logits, stream_losses
        for plugin in self.plugins:
            plugin.after_backward(ctx)
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self._params, self.grad_clip)
        self.optimizer.step()
        self.train_steps += 1
        for plugin in self.plugins:
            plugin.after_step(ctx)
        return loss.detach(), stream_logits, stream_losses

    def _finite(self, loss: Tensor) -> bool:
        """Whether the loss and every gradient entry are finite: a sum is finite exactly when all its terms are
        (NaN and infinities propagate; finite float32 gradients overflowing a sum are far rarer than in the
        squares of a norm). One sum per tensor, about half of ``get_total_norm``'s cost in the learner's step
        on the CPU (its grouping by device and dtype is Python)."""
        sums = [p.grad.sum() for p in self._params if p.grad is not None]  # stack promotes mixed dtypes
        total = loss.detach() + torch.stack(sums).sum() if sums else loss.detach()
        return bool(torch.isfinite(total))

    # ---- reactions (drift, schedule) -----------------------------------------------------------------------
    def boundary(self) -> None:
        """Tell every plugin a task or concept boundary passed."""
        self.boundaries += 1
        for plugin in self.plugins:
            plugin.on_boundary(self)

    def boost_lr(self, factor: float, events: int) -> None:
        """Multiply the learning rate by ``factor`` for the next ``events`` events."""
        for group, base in zip(self.optimizer.param_groups, self._base_lrs, strict=True):
            group["lr"] = base * factor
        self._lr_boost_until = self.events_seen + events

    def _update_lr(self) -> None:
        if 0 <= self._lr_boost_until <= self.events_seen:
            for group, base in zip(self.optimizer.param_groups, self._base_lrs, strict=True):
                group["lr"] = base
            self._lr_boost_until = -1

    def reset_optimizer(self) -> None:
        """Forget momentum/Adam moments (they point the old concept's way)."""
        self.optimizer.state.clear()

    def _load_optimizer(self, state: dict[str, Any]) -> None:
        configured = [{key: value for key, value in group.items() if key != "params"}
                      for group in self.optimizer.param_groups]
        saved = state["optimizer"]
        saved_name = state.get("optimizer_name")
        same = (saved_name == type(self.optimizer).__name__ if saved_name is not None  # older checkpoints: by keys
                else [set(g) - {"params"} for g in saved["param_groups"]] == [set(c) for c in configured])
        saved_base = [float(v) for v in state["base_lrs"].tolist()]
        if same:
            self.optimizer.load_state_dict(saved)  # replaces the param_groups with the checkpoint's
            for group, conf, base in zip(self.optimizer.param_groups, configured, saved_base, strict=True):
                boost = group["lr"] / base if base else 1.0  # a drift reaction's lr boost under way
                group.update(conf)
                group["lr"] = conf["lr"] * boost
        else:
            log.info("optimizer changed (%s in the checkpoint, %s now): its state starts afresh, the model's "
                     "weights are kept", saved_name or "another kind", type(self.optimizer).__name__)
        self._base_lrs = [conf["lr"] for conf in configured]
        if [round(b, 12) for b in saved_base] != [round(b, 12) for b in self._base_lrs]:
            log.info("optim.lr %s applies (the checkpoint's was %s)", self._base_lrs, saved_base)

    def plugin_metrics(self) -> dict[str, Any]:
        """Every plugin's gauges; per-class counts reported by several plugins (a replay memory and DER++'s own
        buffer, say) are summed rather than overwritten."""
        merged: dict[str, Any] = {}
        for plugin in self.plugins:
            for key, value in plugin.metrics().items():
                if isinstance(value, dict) and isinstance(merged.get(key), dict):
                    merged[key] = {k: merged[key].get(k, 0) + value.get(k, 0) for k in merged[key] | value}
                else:
                    merged[key] = value
        return merged

    # ---- state ---------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "optimizer_name": type(self.optimizer).__name__,
            "class_mask": self.class_mask.cpu(),
            "counters": torch.tensor([self.events_seen, self.train_steps, self.skipped_steps, self.boundaries,
                                      self._lr_boost_until]),
            "base_lrs": torch.tensor(self._base_lrs, dtype=torch.float64),
            "plugins": {plugin.name: plugin.state_dict() for plugin in self.plugins},
            # torch's global generator initialises new class rows: restoring it keeps a resumed run identical
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from ``state``. The configured optimizer's hyperparameters (lr, weight decay, momentum, betas)
        apply, not the checkpoint's, so a changed ``optim`` setting takes effect on restart; its per-parameter
        state (moments, momentum buffers) is kept when the optimizer is the same kind, else it starts afresh."""
        self.model.load_state_dict(state["model"])
        self._load_optimizer(state)
        self.class_mask.copy_(state["class_mask"].to(self.device))
        self._seen_host = state["class_mask"].cpu().numpy().astype(bool, copy=True)
        counters = [int(v) for v in state["counters"].tolist()]
        self.events_seen, self.train_steps, self.skipped_steps, self.boundaries, self._lr_boost_until = counters
        for plugin in self.plugins:
            plugin.load_state_dict(state["plugins"].get(plugin.name, {}))
        if "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"])


def build_optimizer(name: str, params: Any, lr: float, momentum: float = 0.0,
                    weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """The configured optimizer; fused/foreach kernels are left to PyTorch's defaults for the device."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}")
