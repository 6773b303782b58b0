"""LeNet-5 three ways.

- LeNet5Paper: LeCun, Bottou, Bengio, Haffner 1998 (document 002 follows it): C3 wired by the
  paper's Table I, trainable subsampling (sum of 2x2, one coefficient and one bias per map, then
  squashing), the scaled tanh 1.7159 tanh(2x/3), F6, and a Euclidean RBF output whose prototypes
  are fixed +-1 vectors (trainable as an option, as document 002 trains them). ``separable=True``
  is document 002's depthwise-separable variant.
- LeNet5: the modern form of documents 003/004 (ReLU, average pooling, linear output).
- LeNet5Depthwise: document 000's LeNet-5 with each convolution made depthwise-separable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kernels.reference import rbf_distance_reference, rbf_loss_from_distances, rbf_loss_reference
from models.blocks import DepthwiseSeparable

# Table I of the 1998 paper: which S2 maps (0..5) feed each of the 16 C3 maps. Six maps see three
# contiguous inputs, six see four contiguous, three see four non-contiguous, one sees all six.
C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2),
    (1, 2, 3),
    (2, 3, 4),
    (3, 4, 5),
    (4, 5, 0),
    (5, 0, 1),
    (0, 1, 2, 3),
    (1, 2, 3, 4),
    (2, 3, 4, 5),
    (3, 4, 5, 0),
    (4, 5, 0, 1),
    (5, 0, 1, 2),
    (0, 1, 3, 4),
    (1, 2, 4, 5),
    (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)

RBF_BACKENDS = ("torch", "triton")


class ScaledTanh(nn.Module):
    """The paper's squashing function A tanh(S x) with A = 1.7159, S = 2/3 (so f(+-1) = +-1)."""

    def __init__(self, amplitude: float = 1.7159, slope: float = 2.0 / 3.0) -> None:
        super().__init__()
        self.amplitude, self.slope = amplitude, slope

    def forward(self, x: Tensor) -> Tensor:
        return self.amplitude * torch.tanh(self.slope * x)


class Subsampling(nn.Module):
    """Sum of each non-overlapping KxK window, times a trainable coefficient, plus a trainable
    bias: two parameters per feature map (S2: 12, S4: 32)."""

    def __init__(self, channels: int, kernel: int = 2) -> None:
        super().__init__()
        self.kernel = kernel
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        pooled = F.avg_pool2d(x, self.kernel) * (self.kernel * self.kernel)
        return pooled * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class SparseConv2d(nn.Module):
    """A convolution whose output map o sees only the input maps ``table[o]``.

    Only the connected kernels are parameters (C3: 60 kernels x 25 + 16 biases = 1,516). The
    forward scatters them into a dense weight and runs one dense conv: simple and fast at this
    size, which is why fvcore counts the dense 6x16 conv while the formula counts connections.
    """

    def __init__(self, table: tuple[tuple[int, ...], ...], in_ch: int, kernel: int) -> None:
        super().__init__()
        self.table, self.in_ch, self.kernel = table, in_ch, kernel
        out_idx = [o for o, ins in enumerate(table) for _ in ins]
        in_idx = [i for ins in table for i in ins]
        self.register_buffer("out_idx", torch.tensor(out_idx), persistent=False)
        self.register_buffer("in_idx", torch.tensor(in_idx), persistent=False)
        fan_in = [len(table[o]) * kernel * kernel for o in out_idx]
        weight = torch.empty(len(in_idx), kernel, kernel)
        for n, fan in enumerate(fan_in):  # the paper's init: uniform in +-2.4 / fan_in
            weight[n].uniform_(-2.4 / fan, 2.4 / fan)
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.zeros(len(table)))

    @property
    def out_channels(self) -> int:
        return len(self.table)

    def dense_weight(self) -> Tensor:
        dense = self.weight.new_zeros(len(self.table), self.in_ch, self.kernel, self.kernel)
        return dense.index_put((self.out_idx, self.in_idx), self.weight)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.dense_weight(), self.bias)


class EuclideanRBF(nn.Module):
    """Output layer: squared Euclidean distance from the input to one prototype per class.

    Prototypes are +-1 (random with a fixed seed here; the paper drew stylised 7x12 bitmaps of
    the digits) and fixed unless ``trainable``. backend "triton" computes distances and the loss
    with the fused kernels (kernels.rbf_distance / kernels.rbf_loss).
    """

    def __init__(
        self,
        in_features: int = 84,
        classes: int = 10,
        *,
        trainable: bool = False,
        backend: str = "torch",
        seed: int = 0,
    ) -> None:
        super().__init__()
        if backend not in RBF_BACKENDS:
            raise ValueError(f"RBF backend must be one of {RBF_BACKENDS}, got {backend!r}")
        self.backend = backend
        gen = torch.Generator().manual_seed(seed)
        centers = torch.randint(0, 2, (classes, in_features), generator=gen).float() * 2 - 1
        if trainable:
            self.centers = nn.Parameter(centers)
        else:
            self.register_buffer("centers", centers)

    def forward(self, x: Tensor) -> Tensor:
        if self.backend == "triton":
            import kernels

            return kernels.rbf_distance(x, self.centers)
        return rbf_distance_reference(x, self.centers)

    def loss(self, x: Tensor, target: Tensor, j: float = 0.3, reduction: str = "mean") -> Tensor:
        """The paper's loss on features ``x`` (not distances), fused when backend is triton."""
        if self.backend == "triton":
            import kernels

            return kernels.rbf_loss(x, self.centers, target, j=j, reduction=reduction)
        return rbf_loss_reference(x, self.centers, target, j=j, reduction=reduction)


def rbf_loss(distances: Tensor, target: Tensor, j: float = 0.3, reduction: str = "mean") -> Tensor:
    """The paper's loss from a (B, classes) distance matrix (e.g. LeNet5Paper's output)."""
    return rbf_loss_from_distances(distances, target, j=j, reduction=reduction)


def _conv_or_separable(
    in_ch: int, out_ch: int, kernel: int, separable: bool, backend: str
) -> nn.Module:
    if not separable:
        return nn.Conv2d(in_ch, out_ch, kernel)
    # One convolution replaced by depthwise + pointwise (pw carries the bias); the paper's
    # squashing follows outside, so the block itself applies no activation.
    return DepthwiseSeparable(
        in_ch,
        out_ch,
        kernel,
        activation=None,
        backend=backend,
        padding=0,
        batch_norm=False,
        dw_activation=None,
    )


class LeNet5Paper(nn.Module):
    """Input (B, 1, 32, 32) -> (B, 10) squared distances; the prediction is the argmin."""

    def __init__(
        self,
        *,
        separable: bool = False,
        trainable_prototypes: bool = False,
        backend: str = "torch",
        conv_backend: str = "torch",
    ) -> None:
        super().__init__()
        self.separable = separable
        self.c1 = _conv_or_separable(1, 6, 5, separable, conv_backend)
        self.act1 = ScaledTanh()
        self.s2 = Subsampling(6)
        self.act2 = ScaledTanh()
        # Document 002's depthwise variant replaces every convolution, C3's sparse one too.
        self.c3 = (
            _conv_or_separable(6, 16, 5, True, conv_backend)
            if separable
            else SparseConv2d(C3_TABLE, 6, 5)
        )
        self.act3 = ScaledTanh()
        self.s4 = Subsampling(16)
        self.act4 = ScaledTanh()
        self.c5 = _conv_or_separable(16, 120, 5, separable, conv_backend)
        self.act5 = ScaledTanh()
        self.f6 = nn.Linear(120, 84)
        self.act6 = ScaledTanh()
        self.output = EuclideanRBF(84, 10, trainable=trainable_prototypes, backend=backend)
        self._paper_init()

    def _paper_init(self) -> None:
        # LeCun 1998 (appendix): weights uniform in +-2.4 / F_i, F_i the unit's fan-in.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                nn.init.uniform_(m.weight, -2.4 / fan_in, 2.4 / fan_in)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def features(self, x: Tensor) -> Tensor:
        x = self.act2(self.s2(self.act1(self.c1(x))))
        x = self.act4(self.s4(self.act3(self.c3(x))))
        x = self.act5(self.c5(x)).flatten(1)
        return self.act6(self.f6(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.output(self.features(x))

    def loss(
        self, features: Tensor, target: Tensor, j: float = 0.3, reduction: str = "mean"
    ) -> Tensor:
        """The paper's RBF loss on F6 features (fused when backend is "triton")."""
        return self.output.loss(features, target, j=j, reduction=reduction)


class LeNet5(nn.Module):
    """Documents 003/004: C1-S2-C3-S4-C5-F6-F7 with ReLU, 2x2 average pooling, full C3."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 5)
        self.s2 = nn.AvgPool2d(2)
        self.c3 = nn.Conv2d(6, 16, 5)
        self.s4 = nn.AvgPool2d(2)
        self.c5 = nn.Conv2d(16, 120, 5)
        self.f6 = nn.Linear(120, 84)
        self.f7 = nn.Linear(84, classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.s2(F.relu(self.c1(x)))
        x = self.s4(F.relu(self.c3(x)))
        x = F.relu(self.c5(x)).flatten(1)
        return self.f7(F.relu(self.f6(x)))


class LeNet5Depthwise(nn.Module):
    """Document 000: LeNet5 with C1, C3 and C5 each a depthwise 5x5 + pointwise 1x1 pair."""

    def __init__(self, classes: int = 10, backend: str = "torch") -> None:
        super().__init__()

        def block(cin: int, cout: int) -> DepthwiseSeparable:
            return DepthwiseSeparable(
                cin,
                cout,
                5,
                activation="relu",
                backend=backend,
                padding=0,
                batch_norm=False,
                dw_activation=None,
            )

        self.c1 = block(1, 6)
        self.s2 = nn.AvgPool2d(2)
        self.c3 = block(6, 16)
        self.s4 = nn.AvgPool2d(2)
        self.c5 = block(16, 120)
        self.f6 = nn.Linear(120, 84)
        self.f7 = nn.Linear(84, classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.s4(self.c3(self.s2(self.c1(x))))
        x = self.c5(x).flatten(1)
        return self.f7(F.relu(self.f6(x)))
