"""The PyTorch forms of the fused dw-sep block that its baselines time: eval-mode nn.Modules in
each layout, BN folded or as modules, torch.compile of them in a frame of their own, and which
library PyTorch's depthwise convolution really dispatches to.

Each computes exactly what ``kernels.dwsep_block`` computes, from the same weights and folded BN
scale/shift, on the weights' device and dtype.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from kernels.reference import apply_activation

NCHW, NHWC = torch.contiguous_format, torch.channels_last
INDUCTOR_NOTE = (
    "Inductor fuses BN/act; convolutions stay extern ATen calls (cuDNN) unless max-autotune picks "
    "a Triton conv template"
)


_CONV_BACKEND_NAMES = {
    "Cudnn": "cudnn",
    "CudaDepthwise2d": "native-depthwise",
    "Mkldnn": "oneDNN",
    "Slow2d": "aten-cpu",
    "Winograd3x3Depthwise": "aten-cpu-winograd",
    "Xnnpack2d": "xnnpack",
    "Miopen": "miopen",
    "MiopenDepthwise": "miopen",
}


def depthwise_conv_backend(
    device: torch.device | str,
    dtype: torch.dtype,
    memory_format: torch.memory_format = NCHW,
    *,
    channels: int = 32,
    kernel: int = 3,
    stride: int = 1,
    padding: int | None = None,
    input_shape: tuple[int, int, int, int] | None = None,
) -> str:
    """The library PyTorch's eager depthwise conv really dispatches to: "cudnn" or
    "native-depthwise" on CUDA, "oneDNN" or "aten-cpu" on CPU.

    Asks ATen's own selector (torch._C._select_conv_backend, the function F.conv2d consults) on
    empty tensors of the given layout, so the answer follows torch's real rules: on CUDA,
    channels_last always takes cuDNN; NCHW takes cuDNN only for fp16 with >= 32 channels and a
    shape cuDNN's depthwise heuristic accepts, so give ``input_shape`` (N, C, H, W) for an
    exact answer (default: batch 1, 32x32).
    """
    n, c, h, w = input_shape or (1, channels, 32, 32)
    pad = kernel // 2 if padding is None else padding
    x = torch.empty((n, c, h, w), device=device, dtype=dtype, memory_format=memory_format)
    weight = torch.empty((c, 1, kernel, kernel), device=device, dtype=dtype)
    weight = weight.contiguous(memory_format=memory_format)  # nn.Module.to() converts both
    try:
        choice = torch._C._select_conv_backend(
            x, weight, None, [stride, stride], [pad, pad], [1, 1], False, [0, 0], c, None
        )
    except (AttributeError, RuntimeError, TypeError):  # private API: fall back to the rules
        if x.device.type == "cuda":
            return "cudnn" if memory_format == NHWC else "native-depthwise"
        return "aten-cpu"
    name = str(choice).rsplit(".", 1)[-1]
    return _CONV_BACKEND_NAMES.get(name, name.lower())


def _affine_module(
    channels: int, scale: torch.Tensor | None, shift: torch.Tensor | None
) -> nn.Module:
    if scale is None and shift is None:
        return nn.Identity()
    # An eval-mode BatchNorm2d computing y * scale + shift: mean 0 and var 1 - eps make
    # (y - mean) / sqrt(var + eps) == y, so weight and bias are the scale and shift themselves.
    bn = nn.BatchNorm2d(channels)
    with torch.no_grad():
        bn.running_var.fill_(1.0 - bn.eps)
        if scale is not None:
            bn.weight.copy_(scale)
        if shift is not None:
            bn.bias.copy_(shift)
    return bn


def _activation_module(activation: str | None) -> nn.Module:
    apply_activation(torch.zeros(1), activation)  # ValueError naming what is accepted
    return {"relu": nn.ReLU(), "relu6": nn.ReLU6(), None: nn.Identity()}[activation]


def block_modules(
    dw_weight: torch.Tensor,
    pw_weight: torch.Tensor,
    *,
    stride: int = 1,
    padding: int | None = None,
    dw_scale: torch.Tensor | None = None,
    dw_shift: torch.Tensor | None = None,
    activation: str | None = "relu",
    pw_scale: torch.Tensor | None = None,
    pw_shift: torch.Tensor | None = None,
    pw_activation: str | None = None,
    fold: bool = False,
) -> nn.Sequential:
    """dw conv -> BN -> act -> pw conv -> BN -> act as eval-mode nn.Modules on the weights'
    device and dtype; ``fold`` puts each scale/shift into its conv's weight and bias instead."""
    c, cout, k = dw_weight.shape[0], pw_weight.shape[0], dw_weight.shape[-1]
    pad = k // 2 if padding is None else padding
    dw = nn.Conv2d(c, c, k, stride, pad, groups=c, bias=fold and dw_shift is not None)
    pw = nn.Conv2d(c, cout, 1, bias=fold and pw_shift is not None)
    with torch.no_grad():
        for conv, weight, scale, shift in (
            (dw, dw_weight, dw_scale, dw_shift),
            (pw, pw_weight, pw_scale, pw_shift),
        ):
            if fold:  # fold in float32 (or better), then round once to the weights' dtype
                wide = weight.to(torch.promote_types(weight.dtype, torch.float32))
                if scale is not None:
                    wide = wide * scale.to(wide.dtype).view(-1, 1, 1, 1)
                conv.weight.copy_(wide)
                if shift is not None:
                    conv.bias.copy_(shift)
            else:
                conv.weight.copy_(weight)
    layers = [dw]
    if not fold:
        layers.append(_affine_module(c, dw_scale, dw_shift))
    layers += [_activation_module(activation), pw]
    if not fold:
        layers.append(_affine_module(cout, pw_scale, pw_shift))
    layers.append(_activation_module(pw_activation))
    return nn.Sequential(*layers).to(dw_weight.device, dw_weight.dtype).eval().requires_grad_(False)


def standard_modules(
    weight: torch.Tensor,
    *,
    stride: int = 1,
    padding: int | None = None,
    scale: torch.Tensor | None = None,
    shift: torch.Tensor | None = None,
    activation: str | None = "relu",
) -> nn.Sequential:
    """The standard KxK conv -> BN (as scale/shift) -> act the block replaces, as eval-mode
    nn.Modules on the weight's device and dtype (what the peer runtimes export)."""
    cout, cin, k = weight.shape[0], weight.shape[1], weight.shape[-1]
    conv = nn.Conv2d(cin, cout, k, stride, k // 2 if padding is None else padding, bias=False)
    with torch.no_grad():
        conv.weight.copy_(weight)
    layers = [conv, _affine_module(cout, scale, shift), _activation_module(activation)]
    return nn.Sequential(*layers).to(weight.device, weight.dtype).eval().requires_grad_(False)


def no_grad_call(
    module: Callable[[torch.Tensor], torch.Tensor],
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``module(x)`` with autograd off, as inference runs."""

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return module(x)

    return run
