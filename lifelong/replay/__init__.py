"""Replay memories: reservoir, class-balanced reservoir, iCaRL herding exemplars (+ NME) and generative replay."""

from lifelong.replay.buffer import Buffer
from lifelong.replay.class_balanced import ClassBalancedBuffer
from lifelong.replay.generative import ConditionalVAE, GenerativeReplay
from lifelong.replay.herding import HerdingBuffer, herd
from lifelong.replay.plugin import ReplayPlugin
from lifelong.replay.reservoir import ReservoirBuffer
from lifelong.replay.store import SampleStore

__all__ = [
    "Buffer",
    "ClassBalancedBuffer",
    "ConditionalVAE",
    "GenerativeReplay",
    "HerdingBuffer",
    "ReplayPlugin",
    "ReservoirBuffer",
    "SampleStore",
    "herd",
]
