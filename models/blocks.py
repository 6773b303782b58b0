"""Drop-in depthwise-separable block (document 001's conv_dw), in three backends."""

from __future__ import annotations

from torch import Tensor, nn

from kernels.reference import apply_activation

BACKENDS = ("torch", "compile", "triton")


class DepthwiseSeparable(nn.Module):
    """Depthwise KxK -> [BN] -> act -> pointwise 1x1 -> [BN] -> act.

    batch_norm=True is document 001's block (convs without bias, BN after each). batch_norm=False
    is the plain replacement of one convolution used by the LeNet variants (documents 000, 002):
    depthwise without bias, pointwise with bias, ``dw_activation`` between them ("same" means
    ``activation``; the LeNet variants use None: one convolution, one non-linearity).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int = 3,
        stride: int = 1,
        activation: str | None = "relu",
        backend: str = "torch",
        *,
        padding: int | None = None,
        batch_norm: bool = True,
        dw_activation: str | None = "same",
    ) -> None:
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.backend = backend
        self.activation = activation
        self.dw_activation = activation if dw_activation == "same" else dw_activation
        self.padding = kernel // 2 if padding is None else padding
        self.dw = nn.Conv2d(in_ch, in_ch, kernel, stride, self.padding, groups=in_ch, bias=False)
        self.bn_dw = nn.BatchNorm2d(in_ch) if batch_norm else None
        self.pw = nn.Conv2d(in_ch, out_ch, 1, bias=not batch_norm)
        self.bn_pw = nn.BatchNorm2d(out_ch) if batch_norm else None

    def forward_torch(self, x: Tensor) -> Tensor:
        y = self.dw(x)
        if self.bn_dw is not None:
            y = self.bn_dw(y)
        y = apply_activation(y, self.dw_activation)
        y = self.pw(y)
        if self.bn_pw is not None:
            y = self.bn_pw(y)
        return apply_activation(y, self.activation)

    def forward(self, x: Tensor) -> Tensor:
        # The "compile" and "triton" paths are added by the fused-kernel work (issue 3).
        return self.forward_torch(x)
