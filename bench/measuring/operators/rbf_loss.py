"""The RBF loss operator: LeCun et al.'s (1998) loss on features x and prototypes, forward and
backward (gradients for x and the centers).

Inputs and oracle extend the distance operator's: the oracle is (loss, grad_x, grad_centers) in
float64 autograd. Cost: three B*K*D products (forward distances, grad_x, grad_centers) and the
fewest bytes (x, centers, targets read; gradients and loss written). Providers: document 002's
Criterion as written (the baseline), a stable logsumexp form, torch.compile of it, and the fused
Triton forward + backward kernels.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from functools import cached_property

import torch

from bench.measuring import roofline
from bench.measuring.operators.base import (
    Operator,
    Prepared,
    Provider,
    kernel,
    library_rows,
    registrar,
)
from bench.measuring.operators.rbf_distance import RBF_J, RbfSetting, distances64
from bench.measuring.suites import RbfShape
from kernels.reference import rbf_distance_reference, rbf_loss_from_distances, rbf_loss_reference


def doc002_loss(distances: torch.Tensor, target: torch.Tensor, j: float = 0.3) -> torch.Tensor:
    """Document 002's Criterion as written: mean of d_target + log(e^-j + sum e^-d), unstabilised
    (e^-d underflows to 0 for d > ~104 in float32, then the log sees only e^-j)."""
    true_terms = distances[torch.arange(distances.shape[0], device=distances.device), target]
    log_term = torch.log(math.exp(-j) + torch.exp(-distances).sum(dim=1))
    return (true_terms + log_term).mean()


def loss_oracle(x: torch.Tensor, centers: torch.Tensor, target: torch.Tensor) -> tuple:
    """(loss, grad_x, grad_centers) in float64: the fused provider returns the same triple."""
    x, centers = x.clone().requires_grad_(True), centers.clone().requires_grad_(True)
    loss = rbf_loss_from_distances(distances64(x, centers), target, RBF_J)
    gx, gc = torch.autograd.grad(loss, (x, centers))
    return loss.detach(), gx, gc


def loss_baselines(
    centers: torch.Tensor, target: torch.Tensor, j: float = RBF_J
) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """Forward + backward of the mean RBF loss; fns take x (B, D) and return the detached loss
    after gradients for x and centers have been computed (fresh leaves each call)."""

    def doc002(x_leaf: torch.Tensor, c_leaf: torch.Tensor) -> torch.Tensor:
        return doc002_loss(rbf_distance_reference(x_leaf, c_leaf), target, j)

    def stable(x_leaf: torch.Tensor, c_leaf: torch.Tensor) -> torch.Tensor:
        return rbf_loss_reference(x_leaf, c_leaf, target, j)

    compiled: list[Callable[..., torch.Tensor]] = []

    def compiled_stable(x_leaf: torch.Tensor, c_leaf: torch.Tensor) -> torch.Tensor:
        if not compiled:  # built on first call
            compiled.append(torch.compile(stable))
        return compiled[0](x_leaf, c_leaf)

    forms = {"doc002_eager": doc002, "eager_stable": stable, "compile": compiled_stable}
    return {name: functools.partial(_backward, form, centers) for name, form in forms.items()}


def _backward(form: Callable, centers: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    x_leaf = x.detach().requires_grad_(True)
    c_leaf = centers.detach().requires_grad_(True)
    loss = form(x_leaf, c_leaf)
    loss.backward()
    return loss.detach()


class RbfLossSetting(RbfSetting):
    @cached_property
    def macs(self) -> int:
        return 3 * self.fwd_macs  # forward distances + grad_x + grad_centers

    @cached_property
    def nbytes(self) -> int:
        s = self.shape
        return roofline.rbf_loss_bytes(s.batch, s.dim, s.centers, self.elem)

    @property
    def macs_fvcore(self) -> float:
        return math.nan  # fvcore traces forward graphs only

    def oracle(self) -> object:
        x64, c64, target = self.data[:3]
        return loss_oracle(x64, c64, target)


PROVIDERS: list[Provider] = []
provider = registrar(PROVIDERS)


def _baseline(s: RbfLossSetting, name: str, backend: str) -> Prepared:
    _, _, target, x, c = s.data
    fn = loss_baselines(c.clone().requires_grad_(True), target)[name]
    # the baselines return the detached loss only (their grads live on fresh leaves)
    return s.prepared(lambda: fn(x), backend=backend, oracle=lambda: s.oracle()[0])


library_rows(
    PROVIDERS,
    _baseline,
    (
        ("doc002_eager", "eager", "aten", "document 002's Criterion as written, fwd + bwd"),
        ("eager_stable", "eager", "aten", "the loss by logsumexp, fwd + bwd"),
        ("compile", "compile", "inductor", "torch.compile of the logsumexp form, fwd + bwd"),
    ),
    layout="row-major",
)


@provider(
    "triton_fused",
    "fused",
    layout="row-major",
    times="kernels.rbf_loss: Triton forward, grad_x and grad_centers kernels",
)
def _triton_fused(s: RbfLossSetting) -> Prepared:
    rbf_loss = kernel("rbf_loss")
    note = "fused Triton kernel"
    x64, c64, target = s.data[:3]
    if s.interpreted:
        (x64, c64, target), note = s.interpreter_inputs()
    xg = x64.to(s.dtype).requires_grad_(True)
    cg = c64.to(s.dtype).requires_grad_(True)

    def fn() -> tuple[torch.Tensor, ...]:
        loss = rbf_loss(xg, cg, target, RBF_J)
        return (loss.detach(), *torch.autograd.grad(loss, (xg, cg)))

    return s.prepared(fn, oracle=lambda: loss_oracle(x64, c64, target), **s.kernel_fields(note))


OPERATOR = Operator(
    "rbfloss",
    RbfShape,
    RbfLossSetting,
    tuple(PROVIDERS),
    "LeCun et al.'s RBF loss on features and prototypes, forward and backward",
    title="RBF loss fwd+bwd",
)
