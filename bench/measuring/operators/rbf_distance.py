"""The RBF distance operator: squared Euclidean distances from x (B, D) to centers (K, D).

Inputs: deterministic float64 x, centers and class targets. Oracle: explicit differences in
float64 (the expansion beyond EXACT_ORACLE_ELEMS). Cost: B*K*D MACs (the cross term) and the
fewest bytes (x, centers read once, B*K written). Providers: document 002's broadcast formula
(the baseline), torch.cdist both ways, the addmm expansion, torch.compile, torch.mm of the same
operands (a roof), the fused Triton kernel, and the peers KeOps (LazyTensor) and faiss
(pairwise_distances). The RBF loss operator extends the setting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import nn

from bench import formulas
from bench.counting.counters import fvcore_macs
from bench.measuring import roofline
from bench.measuring.operators import peers
from bench.measuring.operators.base import (
    INTERPRETER_NOTE,
    Operator,
    Prepared,
    Setting,
    compiles_here,
    generator,
    installed,
    kernel,
    matmul_precision,
)
from bench.measuring.operators.compiling import StaticCompile
from bench.measuring.suites import RbfShape
from kernels.reference import rbf_distance_reference

RBF_J = 0.3  # LeCun 1998's constant in the RBF loss
# Largest B*K*D for which the float64 oracle forms the (B, K, D) differences explicitly (256 MB);
# beyond it the oracle uses the float64 expansion |x|^2 + |c|^2 - 2 x.c, whose rounding (~1e-16
# relative to the norms) is still far below any float32 provider's error.
EXACT_ORACLE_ELEMS = 2**25
# The interpreter runs Python per program: the fused kernels are checked on this reduced shape.
INTERPRETER_SHAPE = {"batch": 16, "dim": 32, "centers": 10}


def distances64(x: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    if x.shape[0] * centers.shape[0] * x.shape[1] <= EXACT_ORACLE_ELEMS:
        return rbf_distance_reference(x, centers)
    sq = (x * x).sum(1, keepdim=True) + (centers * centers).sum(1) - 2 * x @ centers.t()
    return sq.clamp_min(0)


@dataclass(frozen=True)
class RbfInputs:
    """Float64 features x (B, D), prototypes (K, D) and int64 class targets (B,), on a device;
    ``random`` makes the seeded ones."""

    x64: torch.Tensor
    centers64: torch.Tensor
    target: torch.Tensor

    @classmethod
    def random(
        cls, b: int, d: int, k: int, device: str, seed: int = 0, offset: float = 0.0
    ) -> RbfInputs:
        """Seeded standard-normal x and centers; with ``offset`` both shifted that far from the
        origin and rounded to float32, so every float32 provider sees exactly the inputs the
        float64 oracle does (its error is then its own arithmetic's, not the input's rounding)."""
        g = generator(seed)
        x = torch.randn(b, d, generator=g, dtype=torch.float64)
        centers = torch.randn(k, d, generator=g, dtype=torch.float64)
        target = torch.randint(0, k, (b,), generator=g)
        if offset:
            x, centers = ((t + offset).float().double() for t in (x, centers))
        return cls(x.to(device), centers.to(device), target.to(device))

    def cast(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, centers) in ``dtype``."""
        return self.x64.to(dtype), self.centers64.to(dtype)


class _MatmulT(nn.Module):
    def forward(self, x: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
        return x @ centers.t()


class RbfSetting(Setting):
    shape: RbfShape

    @cached_property
    def inputs(self) -> RbfInputs:
        s = self.shape
        return RbfInputs.random(s.batch, s.dim, s.centers, self.device, offset=s.offset)

    @cached_property
    def operands(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, centers) in the setting's dtype, shared by its providers."""
        return self.inputs.cast(self.dtype)

    @cached_property
    def fwd_macs(self) -> int:
        s = self.shape
        return formulas.linear(s.dim, s.centers, bias=False).macs * s.batch

    @cached_property
    def macs(self) -> int:
        return self.fwd_macs

    @cached_property
    def nbytes(self) -> int:
        s = self.shape
        return roofline.rbf_distance_bytes(s.batch, s.dim, s.centers, self.elem)

    def working_bytes(self) -> float:
        """Inputs and output twice over in the dtype, plus the float64 oracle: its exact form
        materialises (B, K, D) differences up to EXACT_ORACLE_ELEMS."""
        s = self.shape
        exact = s.batch * s.centers * s.dim
        oracle = 2 * exact * 8 if exact <= EXACT_ORACLE_ELEMS else 0
        return super().working_bytes() + oracle

    @cached_property
    def macs_fvcore(self) -> float:
        s = self.shape
        one_row = fvcore_macs(_MatmulT(), torch.zeros(1, s.dim), torch.zeros(s.centers, s.dim))
        return s.batch * one_row  # linear in B; a 65536-row trace would run a 65536-row mm

    def oracle(self) -> object:
        return distances64(self.inputs.x64, self.inputs.centers64)

    def prepared(self, fn: Callable[[], object], **fields: object) -> Prepared:
        fields.setdefault("oracle", self.oracle)
        return Prepared(
            fn=fn,
            macs=self.macs,
            macs_fvcore=self.macs_fvcore,
            nbytes=self.nbytes,
            **fields,
        )

    def interpreter_inputs(self) -> tuple[RbfInputs, str]:
        """Small odd inputs for the interpreter, and the note saying so."""
        s, small = self.shape, INTERPRETER_SHAPE
        b, d = min(s.batch, small["batch"]), min(s.dim, small["dim"])
        k = min(s.centers, small["centers"])
        note = f"{INTERPRETER_NOTE}; checked on reduced shape B={b} D={d} K={k}"
        return RbfInputs.random(b, d, k, self.device, offset=s.offset), note


RBF = Operator(
    "rbf",
    RbfShape,
    RbfSetting,
    title="RBF distance",
    description="squared Euclidean distances from B features to K prototypes (LeNet-5's RBF layer)",
)
provider = RBF.provider


def expansion(x: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """||x||^2 + ||c||^2 - 2 x.c by one addmm (||c||^2 recomputed per call, as the fused kernel
    recomputes everything)."""
    norms = (x * x).sum(1, keepdim=True) + (centers * centers).sum(1)
    return torch.addmm(norms, x, centers.t(), alpha=-2.0)


def _eager(
    s: RbfSetting, form: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], precision: str = ""
) -> Prepared:
    x, c = s.operands
    return s.prepared(lambda: form(x, c), backend="aten", precision=precision)


def broadcast_bytes(copies: int) -> Callable[[RbfSetting], float]:
    """``memory=`` of a provider that materialises ``copies`` (B, K, D) tensors in the dtype
    (document 002's broadcast form: 67 GB at 65536 x 256 x 1000 in float32, one copy)."""

    def need(s: RbfSetting) -> float:
        b, d, k = s.shape.batch, s.shape.dim, s.shape.centers
        return copies * b * k * d * s.elem + s.working_bytes()

    return need


@provider(
    "broadcast",
    "eager",
    baseline=True,
    document=True,
    layout="row-major",
    times="document 002's broadcast ((x - c)^2).sum(-1), a (B, K, D) intermediate",
    memory=broadcast_bytes(2),
)
def broadcast(s: RbfSetting) -> Prepared:
    return _eager(s, rbf_distance_reference)


@provider("cdist_mm", "eager", layout="row-major", times="torch.cdist(use_mm_for_euclid_dist) ** 2")
def cdist_mm(s: RbfSetting) -> Prepared:
    return _eager(
        s,
        lambda x, c: torch.cdist(x, c, compute_mode="use_mm_for_euclid_dist") ** 2,
        matmul_precision(s.device, s.dtype),
    )


@provider(
    "cdist_exact",
    "eager",
    layout="row-major",
    times="torch.cdist(donot_use_mm_for_euclid_dist) ** 2",
)
def cdist_exact(s: RbfSetting) -> Prepared:
    return _eager(
        s, lambda x, c: torch.cdist(x, c, compute_mode="donot_use_mm_for_euclid_dist") ** 2
    )


@provider(
    "expansion_mm",
    "eager",
    layout="row-major",
    times="||x||^2 + ||c||^2 - 2 x @ c.T by one addmm",
)
def expansion_mm(s: RbfSetting) -> Prepared:
    return _eager(s, expansion, matmul_precision(s.device, s.dtype))


@provider(
    "compile_broadcast",
    "compile",
    layout="row-major",
    applies=compiles_here,
    times="torch.compile of the broadcast formula",
)
def compile_broadcast(s: RbfSetting) -> Prepared:
    x, c = s.operands
    frame = StaticCompile(rbf_distance_reference, name=f"{s.workload.id}_{s.dtype}")
    return s.prepared(lambda: frame(x, c), backend="inductor", compiled=frame)


@provider(
    "mm_same_size",
    "roofline",
    layout="row-major",
    times="torch.mm of the same operands: the matmul roof, not a distance",
)
def mm_same_size(s: RbfSetting) -> Prepared:
    x, c = s.operands
    ct = c.t()
    x64, c64 = s.inputs.x64, s.inputs.centers64
    backend = "cublas" if s.device == "cuda" else "aten-cpu (BLAS)"
    return s.prepared(
        lambda: torch.mm(x, ct),
        backend=backend,
        oracle=lambda: x64 @ c64.t(),
        precision=matmul_precision(s.device, s.dtype),
    )


@provider(
    "triton_fused",
    "fused",
    layout="row-major",
    times="kernels.rbf_distance: one Triton kernel, accurate far from the origin",
)
def triton_fused(s: RbfSetting) -> Prepared:
    rbf_distance = kernel("rbf_distance")
    note, inputs = "fused Triton kernel", s.inputs
    if s.interpreted:
        inputs, note = s.interpreter_inputs()
    x, c = inputs.cast(s.dtype)
    return s.prepared(
        lambda: rbf_distance(x, c),
        oracle=lambda: distances64(inputs.x64, inputs.centers64),
        **s.kernel_fields(note),
    )


KEOPS_DENSE_NOTE = (
    "KeOps LazyTensor |x_i - c_j|^2; KeOps only reduces, so the dense (B, K) result this workload "
    "returns is gathered by Sum_j D_ij e_j (e_j the K x K identity's rows: K extra MACs per pair); "
    "compiled once per (D, K) into the KeOps cache before timing"
)


@provider(
    "keops",
    "peer",
    layout="row-major",
    enabled=installed("pykeops"),
    times="KeOps LazyTensor distances, the (B, K) matrix materialised as the workload returns it",
)
def keops_distance(s: RbfSetting) -> Prepared:
    x, c = s.operands
    call = peers.keops_distance_matrix(x, c)
    call()  # KeOps compiles the formula here (tens of seconds once per cache), not in the warm-up
    return s.prepared(call, backend=peers.keops_backend(s.device), note=KEOPS_DENSE_NOTE)


@provider(
    "faiss",
    "peer",
    layout="row-major",
    enabled=installed("faiss"),
    times="faiss.pairwise_distances (CPU): |x|^2 + |c|^2 - 2 x.c through BLAS",
)
def faiss_distance(s: RbfSetting) -> Prepared:
    peers.check_dtype("faiss", s.dtype)
    fn, backend = peers.faiss_distance_call(*s.operands, s.device)
    note = "faiss.pairwise_distances on float32 numpy copies made once; it cancels far from 0"
    return s.prepared(fn, backend=backend, precision="fp32", note=note)
