"""Backbones and the continual-learning network around them.

The head is allocated for ``max_classes`` outputs once, and classes are *activated* as their first label arrives
(see ``lifelong.learner``): logits of classes never seen are masked out. This is how the head grows while every
parameter keeps its shape, so optimizer state, Fisher information and checkpoints never need resizing, and an
earlier class's weights are never touched by a new class's arrival.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn


class ContinualNet(nn.Module):
    """``backbone`` maps inputs to a feature vector; ``head`` maps features to one logit per possible class."""

    def __init__(self, backbone: nn.Module, feature_dim: int, max_classes: int, input_shape: Sequence[int]):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(feature_dim, max_classes)
        self.feature_dim = feature_dim
        self.max_classes = max_classes
        self.input_shape = tuple(input_shape)

    def features(self, x: Tensor) -> Tensor:
        return self.backbone(x.reshape(x.shape[0], *self.input_shape))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

    @torch.no_grad()
    def reset_class(self, cls: int) -> None:
        """Fresh initialisation of one class's head row (used when the class is first activated)."""
        bound = 1.0 / math.sqrt(self.feature_dim)
        self.head.weight[cls].uniform_(-bound, bound)
        self.head.bias[cls].uniform_(-bound, bound)


def mlp(input_dim: int, hidden: Sequence[int]) -> tuple[nn.Module, int]:
    layers: list[nn.Module] = [nn.Flatten()]
    width = input_dim
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    return nn.Sequential(*layers), width


def small_cnn(channels: int) -> tuple[nn.Module, int]:
    """Two conv blocks and global pooling: cheap enough for a CPU stream of 28x28 or 32x32 images."""
    net = nn.Sequential(
        nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    return net, 128


class _BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


def reduced_resnet18(channels: int, nf: int = 20) -> tuple[nn.Module, int]:
    """ResNet-18 with nf=20 base filters for 32x32 inputs, as in GEM (Lopez-Paz & Ranzato 2017) and ER."""
    layers: list[nn.Module] = [nn.Conv2d(channels, nf, 3, 1, 1, bias=False), nn.BatchNorm2d(nf), nn.ReLU()]
    in_planes = nf
    for mult, stride in ((1, 1), (2, 2), (4, 2), (8, 2)):
        for block_stride in (stride, 1):
            layers.append(_BasicBlock(in_planes, nf * mult, block_stride))
            in_planes = nf * mult
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers), nf * 8


def torchvision_backbone(name: str, weights: Path | None) -> tuple[nn.Module, int]:
    """Any torchvision classifier by name, its last linear layer removed; weights only from a local file."""
    import torchvision

    try:
        net = torchvision.models.get_model(name, weights=None)
    except ValueError as exc:
        raise ValueError(f"unknown torchvision model {name!r}") from exc
    if weights is not None:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    for attr in ("fc", "classifier", "head", "heads"):
        last = getattr(net, attr, None)
        if last is None:
            continue
        linear = last if isinstance(last, nn.Linear) else [m for m in last.modules() if isinstance(m, nn.Linear)][-1]
        setattr(net, attr, nn.Identity())
        return net, linear.in_features
    raise ValueError(f"torchvision model {name!r} has no recognisable classifier layer")


def build_model(name: str, input_shape: Sequence[int], max_classes: int, hidden: Sequence[int] = (256, 256),
                weights: Path | None = None) -> ContinualNet:
    """Build a network from the config's ``model`` section."""
    shape = tuple(int(s) for s in input_shape)
    if name == "mlp":
        backbone, dim = mlp(math.prod(shape), hidden)
    elif name == "cnn":
        if len(shape) != 3:
            raise ValueError(f"cnn needs input_shape [channels, height, width], got {list(shape)}")
        backbone, dim = small_cnn(shape[0])
    elif name == "resnet18_reduced":
        if len(shape) != 3:
            raise ValueError(f"resnet18_reduced needs input_shape [channels, height, width], got {list(shape)}")
        backbone, dim = reduced_resnet18(shape[0])
    elif name.startswith("torchvision:"):
        backbone, dim = torchvision_backbone(name.split(":", 1)[1], weights)
    else:
        raise ValueError(f"unknown model {name!r}")
    return ContinualNet(backbone, dim, max_classes, shape)
