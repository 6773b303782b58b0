"""The RBF distance operator: squared Euclidean distances from x (B, D) to centers (K, D).

Inputs: deterministic float64 x, centers and class targets. Oracle: explicit differences in
float64 (the expansion beyond EXACT_ORACLE_ELEMS). Cost: B*K*D MACs (the cross term) and the
fewest bytes (x, centers read once, B*K written). Providers: document 002's broadcast formula
(the baseline), torch.cdist both ways, the addmm expansion, torch.compile, torch.mm of the same
operands (a roof), and the fused Triton kernel. The RBF loss operator reuses the setting.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

import torch
from torch import nn

from bench import formulas
from bench.counting.counters import fvcore_macs
from bench.measuring import roofline
from bench.measuring.operators.base import (
    INTERPRETER_NOTE,
    Operator,
    Prepared,
    Provider,
    Setting,
    generator,
    kernel,
    library_rows,
    registrar,
)
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


def rbf_inputs(b: int, d: int, k: int, device: str) -> tuple[torch.Tensor, ...]:
    """Deterministic float64 x (B, D), centers (K, D) and int64 targets on ``device``."""
    g = generator()
    x = torch.randn(b, d, generator=g, dtype=torch.float64)
    centers = torch.randn(k, d, generator=g, dtype=torch.float64)
    target = torch.randint(0, k, (b,), generator=g)
    return x.to(device), centers.to(device), target.to(device)


class _MatmulT(nn.Module):
    def forward(self, x: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
        return x @ centers.t()


class RbfSetting(Setting):
    shape: RbfShape

    @cached_property
    def data(self) -> tuple[torch.Tensor, ...]:
        """(x64, centers64, target, x, centers): float64 and in the setting's dtype."""
        s = self.shape
        x64, c64, target = rbf_inputs(s.batch, s.dim, s.centers, self.device)
        return x64, c64, target, x64.to(self.dtype), c64.to(self.dtype)

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

    @cached_property
    def macs_fvcore(self) -> float:
        s = self.shape
        one_row = fvcore_macs(_MatmulT(), torch.zeros(1, s.dim), torch.zeros(s.centers, s.dim))
        return s.batch * one_row  # linear in B; a 65536-row trace would run a 65536-row mm

    def oracle(self) -> object:
        x64, c64 = self.data[:2]
        return distances64(x64, c64)

    def prepared(self, fn: Callable[[], object], **fields: object) -> Prepared:
        fields.setdefault("oracle", self.oracle)
        return Prepared(
            fn=fn,
            macs=self.macs,
            macs_fvcore=self.macs_fvcore,
            nbytes=self.nbytes,
            **fields,
        )

    def interpreter_inputs(self) -> tuple[tuple[torch.Tensor, ...], str]:
        """Small odd inputs for the interpreter, and the note saying so."""
        s, small = self.shape, INTERPRETER_SHAPE
        b, d = min(s.batch, small["batch"]), min(s.dim, small["dim"])
        k = min(s.centers, small["centers"])
        note = f"{INTERPRETER_NOTE}; checked on reduced shape B={b} D={d} K={k}"
        return rbf_inputs(b, d, k, self.device), note


def distance_baselines(centers: torch.Tensor) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """The PyTorch ways to get (B, K) squared distances to fixed ``centers``; fns take x (B, D).
    ||c||^2 is recomputed per call in the expansion, as the fused kernel recomputes everything."""
    compiled: list[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = []

    def compile_broadcast(x: torch.Tensor) -> torch.Tensor:
        if not compiled:  # built on first call: torch.compile is slow to set up
            compiled.append(torch.compile(rbf_distance_reference))
        return compiled[0](x, centers)

    def expansion_mm(x: torch.Tensor) -> torch.Tensor:
        norms = (x * x).sum(1, keepdim=True) + (centers * centers).sum(1)
        return torch.addmm(norms, x, centers.t(), alpha=-2.0)

    return {
        "broadcast": lambda x: rbf_distance_reference(x, centers),
        "cdist_mm": lambda x: torch.cdist(x, centers, compute_mode="use_mm_for_euclid_dist") ** 2,
        "cdist_exact": lambda x: (
            torch.cdist(x, centers, compute_mode="donot_use_mm_for_euclid_dist") ** 2
        ),
        "expansion_mm": expansion_mm,
        "compile_broadcast": compile_broadcast,
    }


PROVIDERS: list[Provider] = []
provider = registrar(PROVIDERS)


def _baseline(s: RbfSetting, name: str, backend: str) -> Prepared:
    _, _, _, x, c = s.data
    fn = distance_baselines(c)[name]
    return s.prepared(lambda: fn(x), backend=backend)


library_rows(
    PROVIDERS,
    _baseline,
    (
        (
            "broadcast",
            "eager",
            "aten",
            "document 002's broadcast ((x - c)^2).sum(-1), a (B, K, D) intermediate",
        ),
        ("cdist_mm", "eager", "aten", "torch.cdist(use_mm_for_euclid_dist) ** 2"),
        ("cdist_exact", "eager", "aten", "torch.cdist(donot_use_mm_for_euclid_dist) ** 2"),
        ("expansion_mm", "eager", "aten", "||x||^2 + ||c||^2 - 2 x @ c.T by one addmm"),
        ("compile_broadcast", "compile", "inductor", "torch.compile of the broadcast formula"),
    ),
    layout="row-major",
)


@provider(
    "mm_same_size",
    "roofline",
    layout="row-major",
    times="torch.mm of the same operands: the matmul roof, not a distance",
)
def _mm_same_size(s: RbfSetting) -> Prepared:
    x64, c64, _, x, c = s.data
    ct = c.t()
    backend = "cublas" if s.device == "cuda" else "aten-cpu (BLAS)"
    return s.prepared(lambda: torch.mm(x, ct), backend=backend, oracle=lambda: x64 @ c64.t())


@provider(
    "triton_fused",
    "fused",
    layout="row-major",
    times="kernels.rbf_distance: one Triton kernel, accurate far from the origin",
)
def _triton_fused(s: RbfSetting) -> Prepared:
    rbf_distance = kernel("rbf_distance")
    note = "fused Triton kernel"
    x64, c64 = s.data[:2]
    if s.interpreted:
        (x64, c64, _), note = s.interpreter_inputs()
    x, c = x64.to(s.dtype), c64.to(s.dtype)
    return s.prepared(
        lambda: rbf_distance(x, c), oracle=lambda: distances64(x64, c64), **s.kernel_fields(note)
    )


OPERATOR = Operator(
    "rbf",
    RbfShape,
    RbfSetting,
    tuple(PROVIDERS),
    "squared Euclidean distances from B features to K prototypes (LeNet-5's RBF layer)",
    title="RBF distance",
)
