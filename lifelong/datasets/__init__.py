"""Offline datasets and continual-learning scenario builders (numpy only: no torch import here)."""

from lifelong.datasets.base import Dataset
from lifelong.datasets.sources import load_dataset

__all__ = ["Dataset", "load_dataset"]
