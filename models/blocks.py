"""Drop-in depthwise-separable block (document 001's conv_dw), in three backends."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor, nn

from kernels.reference import apply_activation, fold_batchnorm

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
        # (id(self), compiled forward), built on the first "compile" call; the id makes a
        # deepcopy (which shares the function, and so the original's weights) rebuild its own.
        self._compiled: tuple[int, Callable[[Tensor], Tensor]] | None = None
        self._folded: tuple[tuple, dict[str, Tensor | None]] | None = None  # (versions, affine)
        self._warned_fallback = False

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
        if self.backend == "compile":
            return self._compiled_forward()(x)
        if self.backend == "triton":
            return self.forward_triton(x)
        return self.forward_torch(x)

    def _compiled_forward(self) -> Callable[[Tensor], Tensor]:
        """torch.compile of forward_torch in a frame of this module's own: Dynamo caches graphs
        per code object (8 at most), and a model's blocks of different shapes sharing
        forward_torch's would, past 8, silently run eagerly."""
        if self._compiled is None or self._compiled[0] != id(self):

            def forward(x: Tensor) -> Tensor:
                return self.forward_torch(x)

            forward.__code__ = forward.__code__.replace(co_name=f"dwsep_block_{id(self):x}")
            self._compiled = (id(self), torch.compile(forward))
        return self._compiled[1]

    def forward_triton(self, x: Tensor) -> Tensor:
        """The fused kernel with both BNs folded (inference). Falls back to the torch path, with
        one warning per module, where the kernel would give wrong results: in training mode
        (batch statistics, running-stat updates) and where autograd needs a gradient (the kernel
        has no backward yet), and for BNs without running statistics."""
        reason = self._triton_fallback_reason(x)
        if reason is not None:
            if not self._warned_fallback:
                self._warned_fallback = True
                warnings.warn(
                    f"DepthwiseSeparable(backend='triton') runs the torch path: {reason}",
                    stacklevel=2,
                )
            return self.forward_torch(x)
        from kernels import dwsep_block  # lazy: importing models must not import Triton

        operands = self._kernel_operands()
        return dwsep_block(
            x,
            operands["dw_weight"],
            self.pw.weight,
            stride=self.dw.stride[0],
            padding=self.padding,
            activation=self.dw_activation,
            pw_activation=self.activation,
            **{k: v for k, v in operands.items() if k != "dw_weight"},
        )

    def _triton_fallback_reason(self, x: Tensor) -> str | None:
        if self.training:
            return "training mode needs batch statistics and a backward kernel; use eval()"
        if torch.is_grad_enabled() and (
            x.requires_grad or any(p.requires_grad for p in self.parameters())
        ):
            return (
                "autograd is recording and the kernel has no backward; "
                "wrap inference in torch.no_grad() or torch.inference_mode()"
            )
        for bn in (self.bn_dw, self.bn_pw):
            if bn is not None and bn.running_mean is None:
                return "a BatchNorm without running statistics cannot be folded"
        return None

    def _kernel_operands(self) -> dict[str, Tensor | None]:
        """The depthwise weight packed channel-innermost (kernels.pack_dw_weight) and
        dw_scale/dw_shift/pw_scale/pw_shift in float32, BN folded (and the pw bias into
        pw_shift). Cached until a parameter or buffer changes (tensor version counters): nine
        tiny kernel launches per forward would dominate a batch-1 block on GPU."""
        from kernels import pack_dw_weight

        tensors = [*self.parameters(), *self.buffers()]
        versions = tuple((id(t), t._version) for t in tensors)
        if self._folded is None or self._folded[0] != versions:
            with torch.no_grad():
                dw_scale, dw_shift = fold_batch_norm(self.bn_dw, None)
                pw_scale, pw_shift = fold_batch_norm(self.bn_pw, self.pw.bias)
                operands = {
                    "dw_weight": pack_dw_weight(self.dw.weight.detach()),
                    "dw_scale": dw_scale,
                    "dw_shift": dw_shift,
                    "pw_scale": pw_scale,
                    "pw_shift": pw_shift,
                }
            self._folded = (versions, operands)
        return self._folded[1]


def fold_batch_norm(
    bn: nn.BatchNorm2d | None, conv_bias: Tensor | None
) -> tuple[Tensor | None, Tensor | None]:
    """(scale, shift) in float32 with bn(conv(x) + bias) == conv(x) * scale + shift in eval."""
    if bn is None:
        return None, None if conv_bias is None else conv_bias.float()
    return fold_batchnorm(
        bn.running_mean.float(), bn.running_var.float(), bn.weight, bn.bias, bn.eps, conv_bias
    )
