"""torchvision's MobileNetV2, and fuse(): its dw -> BN -> ReLU6 -> pw-linear -> BN chains as one
fused Triton kernel each (inference)."""

from __future__ import annotations

import copy
from typing import Any

import torch
import torchvision
from torch import Tensor, nn
from torchvision.models.mobilenetv2 import InvertedResidual

from models.blocks import fold_batch_norm

_ACTIVATIONS = {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.Identity: None}


def mobilenet_v2(**kwargs: Any) -> nn.Module:
    """torchvision.models.mobilenet_v2 without pretrained weights (nothing is downloaded)."""
    return torchvision.models.mobilenet_v2(weights=None, **kwargs)


class FusedDepthwisePointwise(nn.Module):
    """dw conv -> BN -> act -> 1x1 conv -> BN as one kernels.dwsep_block call (eval only).

    Both BNs are folded into float32 scale/shift buffers when the module is built, so later
    changes to the original BNs do not reach it: fuse again after loading new weights.
    """

    def __init__(
        self,
        dw: nn.Conv2d,
        dw_bn: nn.BatchNorm2d,
        activation: str | None,
        pw: nn.Conv2d,
        pw_bn: nn.BatchNorm2d | None,
    ) -> None:
        super().__init__()
        self.stride = dw.stride[0]
        self.padding = dw.padding[0]
        self.activation = activation
        from kernels import pack_dw_weight  # lazy: importing models must not import Triton

        with torch.no_grad():
            dw_scale, dw_shift = fold_batch_norm(dw_bn, dw.bias)
            pw_scale, pw_shift = fold_batch_norm(pw_bn, pw.bias)
            # channel-innermost once here, not a copy per call inside dwsep_block
            self.register_buffer("dw_weight", pack_dw_weight(dw.weight.detach().clone()))
            self.register_buffer("pw_weight", pw.weight.detach().clone())
            self.register_buffer("dw_scale", dw_scale)
            self.register_buffer("dw_shift", dw_shift)
            self.register_buffer("pw_scale", pw_scale)
            self.register_buffer("pw_shift", pw_shift)

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            raise RuntimeError("FusedDepthwisePointwise is inference-only: call model.eval()")
        if x.requires_grad and torch.is_grad_enabled():
            raise RuntimeError(
                "the fused kernel has no backward; run under torch.no_grad() or use the "
                "unfused model for gradients"
            )
        from kernels import dwsep_block  # lazy: importing models must not import Triton

        return dwsep_block(
            x,
            self.dw_weight,
            self.pw_weight,
            stride=self.stride,
            padding=self.padding,
            dw_scale=self.dw_scale,
            dw_shift=self.dw_shift,
            activation=self.activation,
            pw_scale=self.pw_scale,
            pw_shift=self.pw_shift,
            pw_activation=None,  # MobileNetV2's projection is linear
        )

    def extra_repr(self) -> str:
        c, cout = self.dw_weight.shape[0], self.pw_weight.shape[0]
        k = self.dw_weight.shape[-1]
        return f"{c}->{cout}, kernel={k}, stride={self.stride}, activation={self.activation}"


def _fusable(dw_block: nn.Module, pw: nn.Module, pw_bn: nn.Module) -> bool:
    """Whether (Conv2dNormActivation(dw conv, BN, act), 1x1 conv, BN) fits dwsep_block."""
    if not (isinstance(dw_block, nn.Sequential) and len(dw_block) == 3):
        return False
    dw, dw_bn, act = dw_block
    return (
        isinstance(dw, nn.Conv2d)
        and dw.groups == dw.in_channels == dw.out_channels
        and dw.kernel_size[0] == dw.kernel_size[1] in (3, 5, 7)
        and dw.stride[0] == dw.stride[1] in (1, 2)
        and dw.padding[0] == dw.padding[1]
        and dw.dilation == (1, 1)
        and dw.padding_mode == "zeros"
        and isinstance(dw_bn, nn.BatchNorm2d)
        and dw_bn.running_mean is not None
        and type(act) in _ACTIVATIONS
        and isinstance(pw, nn.Conv2d)
        and pw.kernel_size == (1, 1)
        and pw.stride == (1, 1)
        and pw.groups == 1
        and pw.in_channels == dw.out_channels
        and isinstance(pw_bn, nn.BatchNorm2d)
        and pw_bn.running_mean is not None
    )


def fuse(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (in eval mode) whose InvertedResidual blocks end in one fused kernel.

    In each torchvision InvertedResidual, the last three modules of ``block.conv`` (depthwise
    Conv2dNormActivation with ReLU6, the 1x1 pw-linear conv, its BN) become one
    FusedDepthwisePointwise; the expansion conv and the residual add stay as they are. The
    original model is untouched. Raises ValueError for a model in training mode (BN batch
    statistics cannot be folded) or one with nothing to fuse.
    """
    if model.training:
        raise ValueError("fuse() folds BN running statistics: call model.eval() first")
    fused = copy.deepcopy(model)
    count = 0
    for block in fused.modules():
        if not isinstance(block, InvertedResidual) or len(block.conv) < 3:
            continue
        dw_block, pw, pw_bn = block.conv[-3], block.conv[-2], block.conv[-1]
        if not _fusable(dw_block, pw, pw_bn):
            continue
        dw, dw_bn, act = dw_block
        replacement = FusedDepthwisePointwise(dw, dw_bn, _ACTIVATIONS[type(act)], pw, pw_bn)
        block.conv = nn.Sequential(*block.conv[:-3], replacement)
        count += 1
    if count == 0:
        raise ValueError(
            "fuse() found no torchvision InvertedResidual with a dw conv -> BN -> act -> "
            "1x1 conv -> BN chain to fuse"
        )
    return fused.eval()
