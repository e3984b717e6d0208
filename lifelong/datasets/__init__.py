"""Offline datasets and continual-learning scenario builders (numpy only: no torch import here)."""

from lifelong.datasets.base import Dataset
from lifelong.datasets.scenarios import Boundary, Scenario, build_scenario, read_boundaries
from lifelong.datasets.sources import load_dataset

__all__ = ["Boundary", "Dataset", "Scenario", "build_scenario", "load_dataset", "read_boundaries"]
