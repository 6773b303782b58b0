"""The kernels' operations in plain PyTorch: the float64 oracles of the tests and of the harness
(the baselines it times live in bench.measuring.operators). Nothing here imports Triton."""

from __future__ import annotations

import torch
import torch.nn.functional as F

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


def fold_batchnorm(
    mean: torch.Tensor,
    var: torch.Tensor,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
    conv_bias: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BatchNorm after a convolution as ``conv(x) * scale + shift``: the dw_scale /
    dw_shift (or pw_scale / pw_shift) of kernels.dwsep_block. ``conv_bias`` is the conv's own
    bias, folded in too. Computed in float32 or wider (float64 statistics stay float64)."""
    wide = torch.promote_types(var.dtype, torch.float32)
    scale = torch.rsqrt(var.to(wide) + eps)
    if weight is not None:
        scale = scale * weight.to(wide)
    shift = -mean.to(wide) * scale
    if conv_bias is not None:
        shift = shift + conv_bias.to(wide) * scale
    if bias is not None:
        shift = shift + bias.to(wide)
    return scale, shift


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
