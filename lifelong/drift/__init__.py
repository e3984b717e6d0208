"""Concept drift: river's detectors on the learner's signals, and the learner's reactions to a drift.

``DriftMonitor`` (monitor.py) feeds the configured signals (signals.py) to river detectors (detectors.py) sample by
sample and merges what they report; ``Reactor`` (reactions.py) turns a reported drift into boundary, learning-rate
boost and optimizer reset calls on the learner. Checkpoint state is plain data (snapshot.py). No torch here.
"""

from lifelong.drift.monitor import Detection, DriftMonitor, detector_seed
from lifelong.drift.reactions import Reactor

__all__ = ["Detection", "DriftMonitor", "Reactor", "detector_seed"]
