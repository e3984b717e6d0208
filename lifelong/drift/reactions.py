"""What the learner does about a drift: the configured ``drift.reactions``, composed in their order.

* ``boundary``: ``learner.boundary()``: every plugin's ``on_boundary`` runs (EWC consolidates its Fisher, LwF
  snapshots the model it distils from, iCaRL re-selects exemplars). Skipped when ``boundaries.from_drift`` is off.
* ``lr_boost`` (``factor``, ``events``): the learning rate times ``factor`` for the next ``events`` events, then back
  (``learner.boost_lr``); a fresh concept is learned faster, the old one is not yet worth protecting.
* ``reset_optimizer``: drop momentum / Adam moments, which still point along the old concept's gradients.
* ``reset_detectors``: every detector restarts; done by the monitor itself at the detection's position (see
  :mod:`lifelong.drift.monitor`), listed here so one config list holds all reactions.
* ``alert``: nothing beyond the log line the monitor writes for every detection.

Warnings (``Detection.warning``) trigger no reaction. A call with several drifts reacts once: they come from the same
micro-batch, and boosting or consolidating twice in a row would not mean twice the change. The learner is used only
through the three methods of :class:`LearnerLike`, so this module needs no torch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from lifelong.config import ReactionSpec
from lifelong.drift.monitor import Detection

log = logging.getLogger("lifelong.drift")

# name -> {parameter: (type, default)}
REACTIONS: dict[str, dict[str, tuple[type, Any]]] = {
    "boundary": {},
    "lr_boost": {"factor": (float, 2.0), "events": (int, 1000)},
    "reset_optimizer": {},
    "reset_detectors": {},
    "alert": {},
}


class LearnerLike(Protocol):
    def boundary(self) -> None: ...

    def boost_lr(self, factor: float, events: int) -> None: ...

    def reset_optimizer(self) -> None: ...


@dataclass(frozen=True)
class Reaction:
    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        if not self.params:
            return self.name
        return f"{self.name}(" + ", ".join(f"{k}={v}" for k, v in self.params.items()) + ")"


def build_reaction(spec: ReactionSpec, *, path: str) -> Reaction:
    """Check the reaction's parameters (ValueError naming ``path.param``) and fill in defaults."""
    schema = REACTIONS.get(spec.name)
    if schema is None:
        raise ValueError(f"{path}.name: unknown reaction {spec.name!r} (known: {', '.join(REACTIONS)})")
    given = spec.params()
    params: dict[str, Any] = {}
    for key, value in given.items():
        if key not in schema:
            known = ", ".join(schema) or "none"
            raise ValueError(f"{path}.{key}: unknown parameter of {spec.name} (known: {known})")
        kind = schema[key][0]
        if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and value != int(value)):
            raise ValueError(f"{path}.{key}: expected {kind.__name__}, got {value!r}")
        if value <= 0:
            raise ValueError(f"{path}.{key}: must be > 0, got {value!r}")
        params[key] = kind(value)
    for key, (_, default) in schema.items():
        params.setdefault(key, default)
    return Reaction(spec.name, params)


class Reactor:
    """Applies the configured reactions to a learner when the monitor reports a drift.

    >>> class Stub:
    ...     def boundary(self): print("boundary")
    ...     def boost_lr(self, factor, events): print("boost", factor, events)
    ...     def reset_optimizer(self): print("reset")
    >>> reactor = Reactor([ReactionSpec(name="boundary"), ReactionSpec(name="lr_boost", factor=3, events=500)])
    >>> reactor.apply([Detection("DDM/error", "DDM", "error", position=1234)], Stub())
    boundary
    boost 3.0 500
    ['boundary', 'lr_boost(factor=3.0, events=500)']
    """

    def __init__(self, specs: Sequence[ReactionSpec], *, boundary_from_drift: bool = True,
                 path: str = "drift.reactions"):
        self.reactions = [build_reaction(spec, path=f"{path}[{i}]") for i, spec in enumerate(specs)]
        self.boundary_from_drift = boundary_from_drift
        self.counts = {r.name: 0 for r in self.reactions}

    def apply(self, detections: Sequence[Detection], learner: LearnerLike) -> list[str]:
        """React once if any detection is a drift (warnings are ignored); returns what was done."""
        drifts = [d for d in detections if not d.warning]
        if not drifts:
            return []
        done: list[str] = []
        for reaction in self.reactions:
            if reaction.name == "boundary":
                if not self.boundary_from_drift:
                    continue
                learner.boundary()
            elif reaction.name == "lr_boost":
                learner.boost_lr(float(reaction.params["factor"]), int(reaction.params["events"]))
            elif reaction.name == "reset_optimizer":
                learner.reset_optimizer()
            self.counts[reaction.name] += 1
            done.append(reaction.describe())
        first = drifts[0]
        log.info("drift reactions position=%d detector=%s applied=%s", first.position, first.detector,
                 ",".join(done) or "none", extra={"drift_reactions": {"position": first.position, "applied": done}})
        return done
