"""river's drift detectors, built by name with checked parameters.

Continuous detectors (``river.drift``: ADWIN, PageHinkley, KSWIN) watch any real-valued signal; binary ones
(``river.drift.binary``: DDM, EDDM, HDDMA, HDDMW, FHDDM) watch the 0/1 prediction-error stream, 1 = error.
FHDDM is the exception in direction: river's implementation (after MOA) tracks the *highest* mean seen and fires
when the mean *drops* below it, i.e. it expects 1 = correct. :func:`feeds_correct` says so, and the monitor feeds it
``1 - error`` so that every binary detector reacts to a rise in the error rate.

>>> det = build_detector("DDM", {"warm_start": 50}, path="drift.detectors[0]")
>>> type(det).__name__, det.warm_start
('DDM', 50)
>>> build_detector("ADWIN", {"delt": 0.01}, path="drift.detectors[1]")
Traceback (most recent call last):
...
ValueError: drift.detectors[1].delt: unknown parameter of ADWIN (known: clock, delta, grace_period, ...)
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from river import drift
from river.base import DriftDetector
from river.drift import binary

from lifelong.config import BINARY_DETECTORS, CONTINUOUS_DETECTORS

DETECTORS: dict[str, type[DriftDetector]] = {
    "ADWIN": drift.ADWIN,
    "PageHinkley": drift.PageHinkley,
    "KSWIN": drift.KSWIN,
    "DDM": binary.DDM,
    "EDDM": binary.EDDM,
    "HDDMA": binary.HDDMA,
    "HDDMW": binary.HDDMW,
    "FHDDM": binary.FHDDM,
}
assert set(DETECTORS) == set(CONTINUOUS_DETECTORS) | set(BINARY_DETECTORS)

# Parameters the monitor owns: KSWIN's ``window`` would pre-fill it with data the config cannot hold sensibly.
_RESERVED = {"window"}


def detector_class(name: str, *, path: str) -> type[DriftDetector]:
    try:
        return DETECTORS[name]
    except KeyError:
        known = ", ".join(DETECTORS)
        raise ValueError(f"{path}.detector: unknown detector {name!r} (known: {known})") from None


def is_binary(name: str) -> bool:
    """Whether the detector expects a 0/1 stream."""
    return name in BINARY_DETECTORS


def feeds_correct(name: str) -> bool:
    """FHDDM fires on a drop of its input's mean, so it is fed 1 = correct (its MOA convention), not 1 = error."""
    return name == "FHDDM"


def parameter_names(name: str) -> list[str]:
    cls = DETECTORS[name]
    params = inspect.signature(cls.__init__).parameters
    return sorted(p for p in params if p != "self" and p not in _RESERVED)


def accepts_seed(name: str) -> bool:
    return "seed" in parameter_names(name)


def check_params(name: str, params: Mapping[str, Any], *, path: str) -> None:
    """Raise ValueError naming ``path.param`` for a parameter the river class does not take."""
    detector_class(name, path=path)
    known = parameter_names(name)
    for key in params:
        if key not in known:
            shown = ", ".join(known[:3]) + (", ..." if len(known) > 3 else "")
            raise ValueError(f"{path}.{key}: unknown parameter of {name} (known: {shown})")


def build_detector(name: str, params: Mapping[str, Any], *, path: str, seed: int | None = None) -> DriftDetector:
    """A fresh river detector; ``seed`` is passed to detectors that take one (KSWIN) unless ``params`` set it."""
    cls = detector_class(name, path=path)
    check_params(name, params, path=path)
    kwargs = dict(params)
    if seed is not None and accepts_seed(name) and "seed" not in kwargs:
        kwargs["seed"] = seed
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{path}: {name}({_fmt(kwargs)}): {exc}") from exc


def _fmt(kwargs: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
