"""The kernels' operations in plain PyTorch: the test oracle (run it in float64) and the
baselines the harness times. Nothing here imports Triton."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


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
