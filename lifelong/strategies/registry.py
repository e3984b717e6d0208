"""Build the configured replay memory and strategies as plugins, checking every name and parameter.

Each strategy declares its parameters as a small pydantic model (unknown keys forbidden, types and ranges
checked), so a typo in the YAML fails at start with the key's path, e.g. ``strategies[1].lam: unknown parameter``.
The replay memory comes first, then the strategies in config order (hooks run in that order).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
)

from lifelong.strategies.ace import ACE
from lifelong.strategies.agem import AGEM
from lifelong.strategies.base import Plugin
from lifelong.strategies.derpp import DERpp
from lifelong.strategies.ewc import EWC
from lifelong.strategies.frozen import FrozenFeatures
from lifelong.strategies.lwf import LwF
from lifelong.strategies.mas import MAS
from lifelong.strategies.naive import Naive
from lifelong.strategies.si import SI

if TYPE_CHECKING:
    from lifelong.config import ReplayConfig, Settings

UnitInterval = Annotated[float, Field(gt=0.0, le=1.0)]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoParams(Params):
    pass


class FrozenParams(Params):
    after_boundaries: NonNegativeInt = Field(1, description="Boundaries before the backbone freezes; 0: from start.")


class EWCParams(Params):
    lam: PositiveFloat = Field(10.0, description="Penalty strength lambda.")
    gamma: UnitInterval = Field(1.0, description="Decay of the older Fisher at each boundary (online EWC).")
    fisher_samples: PositiveInt = Field(32, description="Samples per micro-batch used for the Fisher.")
    fisher_labels: Literal["model", "data"] = Field(
        "model", description="Labels drawn from the model (true Fisher) or taken from the data (empirical)."
    )


class SIParams(Params):
    c: PositiveFloat = Field(1.0, description="Penalty strength.")
    xi: PositiveFloat = Field(0.1, description="Damping of the importance normalisation.")


class MASParams(Params):
    lam: PositiveFloat = Field(0.1, description="Penalty strength.")
    gamma: UnitInterval = Field(1.0, description="Decay of older importances at each boundary.")


class LwFParams(Params):
    alpha: PositiveFloat = Field(1.0, description="Weight of the distillation term.")
    temperature: PositiveFloat = Field(2.0, description="Distillation temperature T.")


class DERppParams(Params):
    alpha: NonNegativeFloat = Field(0.3, description="Weight of the logit-matching (MSE) term.")
    beta: NonNegativeFloat = Field(0.5, description="Weight of the replayed-label term (0: plain DER).")
    memory: PositiveInt = Field(500, description="Samples in its own reservoir buffer.")
    batch_size: PositiveInt = Field(32, description="Replayed samples per term per step.")
    match: Literal["seen", "all"] = Field(
        "seen", description="Logits compared: those of classes seen when stored, or all (as with an unmasked head)."
    )


class AGEMParams(Params):
    memory: PositiveInt = Field(500, description="Samples in its episodic memory (reservoir).")
    sample_size: PositiveInt = Field(64, description="Memory samples per reference gradient.")


@dataclass(frozen=True)
class StrategyEntry:
    params: type[Params]
    build: Callable[[Any, int], Plugin]  # (validated params, seed) -> plugin


STRATEGIES: dict[str, StrategyEntry] = {
    "naive": StrategyEntry(NoParams, lambda p, seed: Naive()),
    "frozen": StrategyEntry(FrozenParams, lambda p, seed: FrozenFeatures(**p.model_dump())),
    "ewc": StrategyEntry(EWCParams, lambda p, seed: EWC(**p.model_dump(), seed=seed)),
    "si": StrategyEntry(SIParams, lambda p, seed: SI(**p.model_dump())),
    "mas": StrategyEntry(MASParams, lambda p, seed: MAS(**p.model_dump())),
    "lwf": StrategyEntry(LwFParams, lambda p, seed: LwF(**p.model_dump())),
    "derpp": StrategyEntry(DERppParams, lambda p, seed: DERpp(**p.model_dump(), seed=seed)),
    "agem": StrategyEntry(AGEMParams, lambda p, seed: AGEM(**p.model_dump(), seed=seed)),
    "ace": StrategyEntry(NoParams, lambda p, seed: ACE()),
}


def _describe(error: ValidationError, prefix: str) -> str:
    problems = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        reason = "unknown parameter" if item["type"] == "extra_forbidden" else item["msg"]
        problems.append(f"{prefix}.{key}: {reason}" if key else f"{prefix}: {reason}")
    return "; ".join(problems)


def build_strategy(name: str, params: dict[str, Any], seed: int = 0, path: str = "strategy") -> Plugin:
    """One strategy plugin by name; ``path`` prefixes error messages (e.g. ``strategies[1]``)."""
    entry = STRATEGIES.get(name)
    if entry is None:
        raise ValueError(f"{path}.name: unknown strategy {name!r} (known: {', '.join(sorted(STRATEGIES))})")
    try:
        checked = entry.params(**params)
    except ValidationError as exc:
        raise ValueError(_describe(exc, path)) from None
    return entry.build(checked, seed)


def build_memory(replay: ReplayConfig, seed: int = 0) -> Plugin | None:
    """The replay memory configured by ``replay`` (None for ``kind: none``)."""
    # imported here: lifelong.replay builds on lifelong.strategies.base, so a top-level import would be circular
    from lifelong.replay import ClassBalancedBuffer, GenerativeReplay, HerdingBuffer, ReplayPlugin, ReservoirBuffer

    cap, kind = replay.capacity, replay.kind
    if kind == "none":
        return None
    if kind == "generative":
        return GenerativeReplay(replay.batch_size, replay.generator_latent, replay.generator_hidden, seed=seed)
    buffers = {"reservoir": ReservoirBuffer, "class_balanced": ClassBalancedBuffer, "herding": HerdingBuffer}
    if kind not in buffers:
        raise ValueError(f"replay.kind: unknown memory {kind!r}")
    cls = buffers[kind]
    return ReplayPlugin(lambda device: cls(cap, device, seed), replay.batch_size, nme=replay.nme)


def build_plugins(settings: Settings) -> list[Plugin]:
    """The replay memory (if any) then every configured strategy, with names unique for checkpoints."""
    seed = settings.daemon.seed
    plugins: list[Plugin] = []
    memory = build_memory(settings.replay, seed)
    if memory is not None:
        plugins.append(memory)
    errors = []
    for i, spec in enumerate(settings.strategies):
        try:
            plugins.append(build_strategy(spec.name, spec.params(), seed + 1 + i, f"strategies[{i}]"))
        except ValueError as exc:
            errors.append(str(exc))
    if errors:
        raise ValueError("; ".join(errors))
    taken: set[str] = set()
    for i, plugin in enumerate(plugins):
        if plugin.name in taken:
            plugin.name = f"{plugin.name}[{i}]"
        taken.add(plugin.name)
    return plugins


_BOUNDS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def parameter_table() -> str:
    """The markdown table of strategies and parameters (kept in sync with README.md by a unit test)."""
    lines = ["| strategy | parameter | type | default | meaning |", "|---|---|---|---|---|"]
    for name, entry in STRATEGIES.items():
        fields = entry.params.model_fields
        if not fields:
            lines.append(f"| `{name}` | — | | | no parameters |")
        for field_name, field in fields.items():
            if get_origin(field.annotation) is Literal:
                kind = " or ".join(f"`{choice}`" for choice in get_args(field.annotation))
            else:
                kind = getattr(field.annotation, "__name__", str(field.annotation))
            bounds = [f"{op} {getattr(m, attr)}" for m in field.metadata for attr, op in _BOUNDS.items()
                      if getattr(m, attr, None) is not None]
            kind += f" ({', '.join(bounds)})" if bounds else ""
            lines.append(f"| `{name}` | `{field_name}` | {kind} | {field.default} | {field.description} |")
    return "\n".join(lines)
