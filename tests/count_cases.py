"""Small models for the cases of `sepbench count` issue 19 (tests/ is on sys.path): each is the
smallest model that shows one way a count went wrong, with its true figures worked by hand in
tests/test_count_cases.py."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class Tied(nn.Module):
    """Two Linear(8, 8) layers sharing one weight: 64 weights + 2 x 8 biases = 80 parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 8)
        self.b.weight = self.a.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


def frozen_conv() -> nn.Module:
    """Conv2d(8, 8, 3) without bias, frozen: 576 parameters, none trainable."""
    conv = nn.Conv2d(8, 8, 3, bias=False)
    conv.requires_grad_(False)
    return nn.Sequential(conv, nn.ReLU())


class FunctionalConvTranspose(nn.Module):
    """F.conv_transpose2d with its own weight in a parent's forward, as a decoder's upsampling
    step writes it: each of the 5 x 8 x 8 inputs meets 12 x 3 x 3 weights, 34,560 MACs (stride 2,
    padding 1 and output_padding 1 give a 16 x 16 output; they move where products land)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(5, 12, 3, 3))
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(F.conv_transpose2d(x, self.weight, stride=2, padding=1, output_padding=1))


class FunctionalConvNd(nn.Module):
    """F.conv1d then F.conv3d in a parent's forward, grouped, strided, dilated and padded."""

    def __init__(self) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(6, 2, 3))  # 4 -> 6 channels, groups=2
        self.w3 = nn.Parameter(torch.randn(4, 6, 3, 3, 3))
        self.b3 = nn.Parameter(torch.zeros(4))
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, 4, 10)
        y = self.act(F.conv1d(x, self.w1, groups=2, stride=2, dilation=2))  # (N, 6, 3)
        cube = y.unsqueeze(-1).unsqueeze(-1).expand(-1, -1, -1, 5, 5)  # (N, 6, 3, 5, 5)
        return F.conv3d(cube, self.w3, self.b3, padding=1)  # (N, 4, 3, 5, 5)


class SqueezeExcite(nn.Module):
    """The squeeze-excite of EfficientNet/MobileNetV3 as timm writes it: x.mean((2, 3))."""

    def __init__(self, channels: int = 8, hidden: int = 2) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.expand = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.expand(F.relu(self.reduce(s))))


class Attention(nn.Module):
    """A leaf (no child modules) that runs attention through F.scaled_dot_product_attention on
    its own projection weights."""

    def __init__(self, dim: int = 8, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Parameter(torch.randn(3 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, L, dim)
        n, length, dim = x.shape
        qkv = F.linear(x, self.qkv).view(n, length, 3, self.heads, dim // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        return out.transpose(1, 2).reshape(n, length, dim)


class OwnSort(nn.Module):
    """A parent whose own forward runs an op without a formula (torch.sort) beside a counted
    matmul."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        return torch.sort(y @ y.transpose(-1, -2), dim=-1).values


class LayerZoo(nn.Module):
    """nn.ConvTranspose1d/2d/3d, Conv1d/3d, GroupNorm and InstanceNorm*: the layers the table
    lacked, each on one small input made from x."""

    def __init__(self) -> None:
        super().__init__()
        self.ct1 = nn.ConvTranspose1d(4, 6, 3, stride=2, padding=1, output_padding=1)
        self.ct2 = nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 3), dilation=(1, 2), groups=2)
        self.ct3 = nn.ConvTranspose3d(4, 2, 2, stride=2, bias=False)
        self.c1 = nn.Conv1d(4, 8, 5, stride=2, padding=2, groups=4)
        self.c3 = nn.Conv3d(4, 6, 3, padding=1, dilation=1)
        self.gn = nn.GroupNorm(2, 4)
        self.gn_plain = nn.GroupNorm(2, 4, affine=False)
        self.in1 = nn.InstanceNorm1d(4, affine=True)
        self.in2 = nn.InstanceNorm2d(4)
        self.in3 = nn.InstanceNorm3d(4, track_running_stats=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 4, 6, 6)
        n = x.shape[0]
        line = x.flatten(2)  # (N, 4, 36)
        cube = x.unsqueeze(2).expand(n, 4, 3, 6, 6)  # (N, 4, 3, 6, 6)
        outs = [
            self.ct1(line),
            self.ct2(x),
            self.ct3(cube),
            self.c1(line),
            self.c3(cube),
            self.gn(x),
            self.gn_plain(x),
            self.in1(line),
            self.in2(x),
            self.in3(cube),
        ]
        return torch.cat([o.flatten(1) for o in outs], 1)
