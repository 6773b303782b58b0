"""The RBF loss operator: LeCun et al.'s (1998) loss on features x and prototypes, forward and
backward (gradients for x and the centers).

Inputs and oracle extend the distance operator's: the oracle is (loss, grad_x, grad_centers) in
float64 autograd. Cost: three B*K*D products (forward distances, grad_x, grad_centers) and the
fewest bytes (x, centers, targets read; gradients and loss written). Providers: document 002's
Criterion as written (the baseline), a stable logsumexp form, torch.compile of it, and the fused
Triton forward + backward kernels, and KeOps' log-sum-exp reduction with autograd (a peer).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from functools import cached_property

import torch

from bench.measuring import roofline
from bench.measuring.operators import peers
from bench.measuring.operators.base import Operator, Prepared, compiles_here, installed, kernel
from bench.measuring.operators.compiling import StaticCompile
from bench.measuring.operators.rbf_distance import RBF_J, RbfSetting, broadcast_bytes, distances64
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


def backward_of(
    form: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    centers: torch.Tensor,
) -> torch.Tensor:
    """Forward + backward of ``form(x, centers)`` on fresh leaves (gradients for both); returns
    the detached loss."""
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
        return loss_oracle(self.inputs.x64, self.inputs.centers64, self.inputs.target)


RBF_LOSS = Operator(
    "rbfloss",
    RbfShape,
    RbfLossSetting,
    title="RBF loss fwd+bwd",
    description="LeCun et al.'s RBF loss on features and prototypes, forward and backward",
)
provider = RBF_LOSS.provider


def _eager(
    s: RbfLossSetting,
    form: Callable[..., torch.Tensor],
    backend: str,
    compiled: StaticCompile | None = None,
) -> Prepared:
    """An autograd form of the loss, fwd + bwd; its row checks the loss value (the gradients
    live on fresh leaves each call)."""
    x, c = s.operands
    target = s.inputs.target
    loss = functools.partial(form, target=target, j=RBF_J)
    return s.prepared(
        lambda: backward_of(loss, x, c),
        backend=backend,
        oracle=lambda: s.oracle()[0],
        compiled=compiled,
    )


def doc002_form(
    x: torch.Tensor, centers: torch.Tensor, target: torch.Tensor, j: float
) -> torch.Tensor:
    return doc002_loss(rbf_distance_reference(x, centers), target, j)


@provider(
    "doc002_eager",
    "eager",
    baseline=True,
    document=True,
    layout="row-major",
    times="document 002's Criterion as written, fwd + bwd",
    memory=broadcast_bytes(3),  # differences, their squares, and the gradient of the differences
)
def doc002_eager(s: RbfLossSetting) -> Prepared:
    return _eager(s, doc002_form, "aten")


@provider(
    "eager_stable",
    "eager",
    layout="row-major",
    times="the loss by logsumexp, fwd + bwd",
    memory=broadcast_bytes(3),
)
def eager_stable(s: RbfLossSetting) -> Prepared:
    return _eager(s, rbf_loss_reference, "aten")


@provider(
    "compile",
    "compile",
    layout="row-major",
    applies=compiles_here,
    times="torch.compile of the logsumexp form, fwd + bwd",
)
def compile_stable(s: RbfLossSetting) -> Prepared:
    frame = StaticCompile(rbf_loss_reference, name=f"{s.workload.id}_{s.dtype}")

    def form(
        x: torch.Tensor, centers: torch.Tensor, target: torch.Tensor, j: float
    ) -> torch.Tensor:
        return frame(x, centers, target, j)

    return _eager(s, form, "inductor", compiled=frame)


@provider(
    "triton_fused",
    "fused",
    layout="row-major",
    times="kernels.rbf_loss: Triton forward, grad_x and grad_centers kernels",
)
def triton_fused(s: RbfLossSetting) -> Prepared:
    rbf_loss = kernel("rbf_loss")
    note, inputs = "fused Triton kernel", s.inputs
    if s.interpreted:
        inputs, note = s.interpreter_inputs()
    x, c = inputs.cast(s.dtype)
    xg, cg, target = x.requires_grad_(True), c.requires_grad_(True), inputs.target

    def fn() -> tuple[torch.Tensor, ...]:
        loss = rbf_loss(xg, cg, target, RBF_J)
        return (loss.detach(), *torch.autograd.grad(loss, (xg, cg)))

    oracle = functools.partial(loss_oracle, inputs.x64, inputs.centers64, target)
    return s.prepared(fn, oracle=oracle, **s.kernel_fields(note))


@provider(
    "keops",
    "peer",
    layout="row-major",
    enabled=installed("pykeops"),
    times="the loss with KeOps' log-sum-exp over the centers (no B x K matrix), fwd + bwd",
)
def keops_loss(s: RbfLossSetting) -> Prepared:
    x, c = s.operands
    xg, cg = x.detach().clone().requires_grad_(True), c.detach().clone().requires_grad_(True)
    target = s.inputs.target

    def fn() -> tuple[torch.Tensor, ...]:
        loss = peers.keops_rbf_loss(xg, cg, target, RBF_J)
        return (loss.detach(), *torch.autograd.grad(loss, (xg, cg)))

    fn()  # KeOps compiles the forward and both gradient formulas here, not in the warm-up
    note = (
        "KeOps LogSumExp reduction over the K centers and its autograd formulas (grad_x, "
        "grad_centers); d_target by torch; compiled once per D into the KeOps cache before timing"
    )
    return s.prepared(fn, backend=peers.keops_backend(s.device), oracle=s.oracle, note=note)
