"""Continual-learning strategies as plugins on the learner's loop, and the registry that builds them."""

from lifelong.strategies.ace import ACE
from lifelong.strategies.agem import AGEM
from lifelong.strategies.base import Plugin, StepContext
from lifelong.strategies.derpp import DERpp
from lifelong.strategies.ewc import EWC
from lifelong.strategies.frozen import FrozenFeatures
from lifelong.strategies.lwf import LwF
from lifelong.strategies.mas import MAS
from lifelong.strategies.naive import Naive
from lifelong.strategies.registry import STRATEGIES, build_memory, build_plugins, build_strategy
from lifelong.strategies.si import SI

__all__ = [
    "ACE",
    "AGEM",
    "EWC",
    "MAS",
    "SI",
    "STRATEGIES",
    "DERpp",
    "FrozenFeatures",
    "LwF",
    "Naive",
    "Plugin",
    "StepContext",
    "build_memory",
    "build_plugins",
    "build_strategy",
]
