"""Models for `sepbench count package.module:callable` tests (tests/ is on sys.path)."""

from __future__ import annotations

import torch
from torch import nn


class Gram(nn.Module):
    """A leaf layer without a rule of its own: x @ W with a learned W (counted from its matmul)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(features, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight


class TinyResidual(nn.Module):
    """Conv-BN-ReLU with a residual add and an attention-like matmul in its own forward."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(3)
        self.relu = nn.ReLU()
        self.head = nn.Linear(64, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn(self.conv(x))) + x  # residual add: a functional op
        tokens = y.flatten(2)  # (N, 3, 64)
        scores = tokens @ tokens.transpose(1, 2)  # (N, 3, 3): matmul in the own forward
        return self.head(torch.softmax(scores, -1) @ tokens)


def tiny_residual() -> nn.Module:
    return TinyResidual()


def with_unknown_layer() -> nn.Module:
    return nn.Sequential(nn.Flatten(1), nn.Linear(12, 4), Gram(4))


class Sorted(nn.Module):
    """A leaf whose one op, torch.sort, has no formula (comparisons are no multiply-adds)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sort(x, dim=-1).values


def with_uncounted_layer() -> nn.Module:
    return nn.Sequential(nn.Flatten(1), nn.Linear(12, 4), Sorted())


def not_a_model() -> int:
    return 3
