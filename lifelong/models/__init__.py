"""Model zoo: every model is ``features`` (a backbone) followed by ``head`` (a linear layer over max_classes)."""

from lifelong.models.zoo import ContinualNet, build_model

__all__ = ["ContinualNet", "build_model"]
