"""The kernels' operations in plain PyTorch: the test oracle (run it in float64) and the
baselines the harness times. Nothing here imports Triton."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Provider:
    """One way of computing a workload, as the harness times it.

    ``fn`` takes the input already in ``memory_format`` (converted outside the timed region) and
    returns the output. ``backend`` names the library that really ran ("cudnn",
    "native-depthwise", "oneDNN", "inductor", "triton", "triton-interpreter", "aten", ...).
    """

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    backend: str
    memory_format: torch.memory_format = torch.contiguous_format
    note: str = ""


ACTIVATIONS = ("relu", "relu6", None)


def apply_activation(x: torch.Tensor, activation: str | None) -> torch.Tensor:
    """relu, relu6 or identity; anything else is a ValueError naming what is accepted."""
    if activation is None:
        return x
    if activation == "relu":
        return torch.relu(x)
    if activation == "relu6":
        return torch.clamp(x, 0.0, 6.0)
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")


def dwsep_reference(
    x: torch.Tensor,
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
) -> torch.Tensor:
    """pw_act(conv1x1(act(dwconv(x) * dw_scale + dw_shift)) * pw_scale + pw_shift), unfused."""
    c = x.shape[1]
    k = dw_weight.shape[-1]
    pad = k // 2 if padding is None else padding
    y = F.conv2d(x, dw_weight, stride=stride, padding=pad, groups=c)
    if dw_scale is not None:
        y = y * dw_scale.view(1, -1, 1, 1)
    if dw_shift is not None:
        y = y + dw_shift.view(1, -1, 1, 1)
    y = apply_activation(y, activation)
    z = F.conv2d(y, pw_weight)
    if pw_scale is not None:
        z = z * pw_scale.view(1, -1, 1, 1)
    if pw_shift is not None:
        z = z + pw_shift.view(1, -1, 1, 1)
    return apply_activation(z, pw_activation)


def rbf_distance_reference(x: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances by explicit differences (document 002's broadcast formula).

    Exact up to rounding of each difference: the oracle, in float64, for the fused kernel.
    """
    return ((x.unsqueeze(1) - centers.unsqueeze(0)) ** 2).sum(dim=-1)


def rbf_loss_from_distances(
    distances: torch.Tensor, target: torch.Tensor, j: float = 0.3, reduction: str = "mean"
) -> torch.Tensor:
    """LeCun et al. 1998, eq. (9): y_correct + log(e^-j + sum_i e^-y_i), computed stably.

    log(e^-j + sum e^-y) = logsumexp over [-j, -y_0, ..., -y_{K-1}].
    """
    neg = torch.cat([torch.full_like(distances[:, :1], -j), -distances], dim=1)
    per_sample = distances.gather(1, target.view(-1, 1)).squeeze(1) + torch.logsumexp(neg, dim=1)
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    if reduction == "none":
        return per_sample
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def rbf_loss_reference(
    x: torch.Tensor,
    centers: torch.Tensor,
    target: torch.Tensor,
    j: float = 0.3,
    reduction: str = "mean",
) -> torch.Tensor:
    """The paper's RBF loss on features x and class prototypes ``centers``."""
    return rbf_loss_from_distances(rbf_distance_reference(x, centers), target, j, reduction)


# ------------------------------------------------------------------ RBF baselines (issue 4)


def rbf_distance_providers(centers: torch.Tensor) -> list[Provider]:
    """The PyTorch ways to get (B, K) squared distances to fixed ``centers``; fns take x (B, D).

    The harness adds the fused "triton_fused" provider. ||c||^2 is recomputed per call in
    "expansion_mm", as the fused kernel recomputes everything per call.
    """

    def broadcast(x: torch.Tensor) -> torch.Tensor:
        return rbf_distance_reference(x, centers)  # document 002: (B, K, D) intermediate

    def cdist_mm(x: torch.Tensor) -> torch.Tensor:
        return torch.cdist(x, centers, compute_mode="use_mm_for_euclid_dist") ** 2

    def cdist_exact(x: torch.Tensor) -> torch.Tensor:
        return torch.cdist(x, centers, compute_mode="donot_use_mm_for_euclid_dist") ** 2

    def expansion_mm(x: torch.Tensor) -> torch.Tensor:
        norms = (x * x).sum(1, keepdim=True) + (centers * centers).sum(1)
        return torch.addmm(norms, x, centers.t(), alpha=-2.0)

    compiled: list[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = []

    def compile_broadcast(x: torch.Tensor) -> torch.Tensor:
        if not compiled:  # built on first call: torch.compile is slow to set up
            compiled.append(torch.compile(rbf_distance_reference))
        return compiled[0](x, centers)

    return [
        Provider("broadcast", broadcast, "aten", note="document 002's broadcast formula"),
        Provider("cdist_mm", cdist_mm, "aten", note="torch.cdist use_mm_for_euclid_dist, squared"),
        Provider("cdist_exact", cdist_exact, "aten", note="torch.cdist donot_use_mm, squared"),
        Provider("expansion_mm", expansion_mm, "aten", note="||x||^2+||c||^2-2 x@c.T by addmm"),
        Provider("compile_broadcast", compile_broadcast, "inductor", note="torch.compile"),
    ]


def rbf_loss_doc002(distances: torch.Tensor, target: torch.Tensor, j: float = 0.3) -> torch.Tensor:
    """Document 002's Criterion as written: mean of d_target + log(e^-j + sum e^-d), unstabilised
    (e^-d underflows to 0 for d > ~104 in float32, then the log sees only e^-j)."""
    true_terms = distances[torch.arange(distances.shape[0], device=distances.device), target]
    log_term = torch.log(math.exp(-j) + torch.exp(-distances).sum(dim=1))
    return (true_terms + log_term).mean()


def rbf_loss_providers(
    centers: torch.Tensor, target: torch.Tensor, j: float = 0.3
) -> list[Provider]:
    """Forward + backward of the mean RBF loss; fns take x (B, D) and return the detached loss
    after gradients for x and centers have been computed (fresh leaves each call)."""

    def run(loss_fn: Callable[..., torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        x_leaf = x.detach().requires_grad_(True)
        c_leaf = centers.detach().requires_grad_(True)
        loss = loss_fn(x_leaf, c_leaf)
        loss.backward()
        return loss.detach()

    def doc002(x_leaf: torch.Tensor, c_leaf: torch.Tensor) -> torch.Tensor:
        return rbf_loss_doc002(rbf_distance_reference(x_leaf, c_leaf), target, j)

    def stable(x_leaf: torch.Tensor, c_leaf: torch.Tensor) -> torch.Tensor:
        return rbf_loss_reference(x_leaf, c_leaf, target, j)

    compiled: list[Callable[..., torch.Tensor]] = []

    def compiled_stable(x_leaf: torch.Tensor, c_leaf: torch.Tensor) -> torch.Tensor:
        if not compiled:  # built on first call
            compiled.append(torch.compile(stable))
        return compiled[0](x_leaf, c_leaf)

    return [
        Provider("doc002_eager", lambda x: run(doc002, x), "aten", note="document 002 Criterion"),
        Provider("eager_stable", lambda x: run(stable, x), "aten", note="logsumexp"),
        Provider("compile", lambda x: run(compiled_stable, x), "inductor", note="torch.compile"),
    ]


# ---- dwsep baselines (the harness adds "triton_fused" itself) -----------------------------

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
    memory_format: torch.memory_format = torch.contiguous_format,
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
            return "cudnn" if memory_format == torch.channels_last else "native-depthwise"
        return "aten-cpu"
    name = str(choice).rsplit(".", 1)[-1]
    return _CONV_BACKEND_NAMES.get(name, name.lower())


class _ScaleShift(nn.Module):
    """y * scale + shift per channel, as two plain elementwise ops (bn_modules=False)."""

    def __init__(self, scale: torch.Tensor | None, shift: torch.Tensor | None) -> None:
        super().__init__()
        self.scale = None if scale is None else nn.Parameter(scale.view(1, -1, 1, 1))
        self.shift = None if shift is None else nn.Parameter(shift.view(1, -1, 1, 1))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        if self.scale is not None:
            y = y * self.scale
        if self.shift is not None:
            y = y + self.shift
        return y


def _affine_module(
    channels: int, scale: torch.Tensor | None, shift: torch.Tensor | None, bn_modules: bool
) -> nn.Module:
    if scale is None and shift is None:
        return nn.Identity()
    if not bn_modules:
        return _ScaleShift(scale, shift)
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


def _dwsep_modules(
    dw_weight: torch.Tensor,
    pw_weight: torch.Tensor,
    *,
    stride: int,
    padding: int,
    dw_scale: torch.Tensor | None,
    dw_shift: torch.Tensor | None,
    activation: str | None,
    pw_scale: torch.Tensor | None,
    pw_shift: torch.Tensor | None,
    pw_activation: str | None,
    bn_modules: bool,
    fold: bool,
) -> nn.Sequential:
    """dw conv -> BN -> act -> pw conv -> BN -> act as eval-mode nn.Modules on the weights'
    device and dtype; ``fold`` puts each scale/shift into its conv's weight and bias instead."""
    c, cout, k = dw_weight.shape[0], pw_weight.shape[0], dw_weight.shape[-1]
    dw = nn.Conv2d(c, c, k, stride, padding, groups=c, bias=fold and dw_shift is not None)
    pw = nn.Conv2d(c, cout, 1, bias=fold and pw_shift is not None)
    with torch.no_grad():
        for conv, weight, scale, shift in ((dw, dw_weight, dw_scale, dw_shift),
                                           (pw, pw_weight, pw_scale, pw_shift)):  # fmt: skip
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
        layers.append(_affine_module(c, dw_scale, dw_shift, bn_modules))
    layers += [_activation_module(activation), pw]
    if not fold:
        layers.append(_affine_module(cout, pw_scale, pw_shift, bn_modules))
    layers.append(_activation_module(pw_activation))
    return nn.Sequential(*layers).to(dw_weight.device, dw_weight.dtype).eval().requires_grad_(False)


def _no_grad_call(module: Callable[[torch.Tensor], torch.Tensor]) -> Callable:
    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return module(x)

    return run


def _lazy_compiled(module: nn.Module, mode: str | None) -> Callable[[torch.Tensor], torch.Tensor]:
    """torch.compile(module, mode=mode), built on the first call (compiling costs seconds).

    Each provider gets its own frame: Dynamo caches compiled graphs on the code object of the
    frame it compiles, at most 8 per code object (torch._dynamo.config.recompile_limit), and
    every provider would otherwise share nn.Sequential.forward's, so after 8 shapes the rest
    would silently run eagerly. dynamic=False: one static graph per shape, as a benchmark wants.
    """

    def forward(x: torch.Tensor) -> torch.Tensor:
        return module(x)

    forward.__code__ = forward.__code__.replace(co_name=f"dwsep_compiled_{id(module):x}")
    compiled: list[Callable] = []

    def run(x: torch.Tensor) -> torch.Tensor:
        if not compiled:
            compiled.append(torch.compile(forward, mode=mode, dynamic=False))
        with torch.no_grad():
            return compiled[0](x)

    return run


def dwsep_providers(
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
    bn_modules: bool = True,
    input_shape: tuple[int, int, int, int] | None = None,
) -> list[Provider]:
    """The PyTorch baselines for kernels.dwsep_block, same arguments and result.

    "eager_nchw" / "eager_channels_last": dw conv -> BN -> act -> pw conv -> BN -> act as
    eval-mode nn.Modules (``bn_modules=False``: scale/shift as plain mul/add) in that layout.
    "eager_folded": BN folded into the convs' weights and bias (NCHW). "compile_default" and
    "compile_max_autotune": torch.compile of the unfolded NCHW modules, compiled on first call.
    ``backend`` names the depthwise conv's library (decided exactly when ``input_shape`` is
    given, see depthwise_conv_backend).
    """
    c, k = dw_weight.shape[0], dw_weight.shape[-1]
    pad = k // 2 if padding is None else padding
    spec = dict(stride=stride, padding=pad, dw_scale=dw_scale, dw_shift=dw_shift,
                activation=activation, pw_scale=pw_scale, pw_shift=pw_shift,
                pw_activation=pw_activation, bn_modules=bn_modules)  # fmt: skip
    unfolded = _dwsep_modules(dw_weight, pw_weight, fold=False, **spec)
    folded = _dwsep_modules(dw_weight, pw_weight, fold=True, **spec)
    nhwc = torch.channels_last
    channels_last = copy.deepcopy(unfolded).to(memory_format=nhwc)
    bn_kind = "BatchNorm2d modules" if bn_modules else "mul/add"

    def backend(memory_format: torch.memory_format) -> str:
        return depthwise_conv_backend(
            dw_weight.device, dw_weight.dtype, memory_format, channels=c, kernel=k,
            stride=stride, padding=pad, input_shape=input_shape,
        )  # fmt: skip

    inductor_note = (
        "Inductor fuses BN/act; convolutions stay extern ATen calls (cuDNN) unless max-autotune "
        "picks a Triton conv template"
    )
    return [
        Provider("eager_nchw", _no_grad_call(unfolded), backend(torch.contiguous_format),
                 note=f"eager, NCHW, BN as {bn_kind}"),
        Provider("eager_channels_last", _no_grad_call(channels_last), backend(nhwc), nhwc,
                 note=f"eager, channels_last, BN as {bn_kind}"),
        Provider("eager_folded", _no_grad_call(folded), backend(torch.contiguous_format),
                 note="eager, NCHW, BN folded into conv weight + bias"),
        Provider("compile_default", _lazy_compiled(copy.deepcopy(unfolded), None), "inductor",
                 note=f"torch.compile default, NCHW input; {inductor_note}"),
        Provider("compile_max_autotune",
                 _lazy_compiled(copy.deepcopy(unfolded), "max-autotune"), "inductor",
                 note=f"torch.compile max-autotune, NCHW input; {inductor_note}"),
    ]  # fmt: skip
