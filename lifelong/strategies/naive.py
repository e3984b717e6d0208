"""Naive fine-tuning: train on the stream and nothing else, the lower bound every method is compared with."""

from __future__ import annotations

from lifelong.strategies.base import Plugin


class Naive(Plugin):
    """No hooks: the learner's cross-entropy on the current micro-batch is the whole loss."""

    name = "naive"
