"""The one dtype tolerance table and the output-poisoning helper every kernel test uses.

Tolerances are (rtol, atol) for comparing a kernel's output, upcast to float64, with the float64
oracle run on the same (already rounded) inputs, for outputs of order 1. They cover the
roundings a low-precision pipeline really makes: the fused dw-sep kernel stores its
intermediate in the input dtype before the pointwise dot and rounds the output once, so the
worst case is a few units in the last place of the dtype (bf16 2^-8 = 3.9e-3, fp16 2^-11 =
4.9e-4), plus float32 accumulation error (~1e-6 for sums of a few hundred terms).
"""

from __future__ import annotations

import torch

TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float32: (1e-5, 1e-5),
    torch.float16: (4e-3, 4e-3),
    torch.bfloat16: (3e-2, 3e-2),
}


def tolerance(dtype: torch.dtype) -> dict[str, float]:
    """rtol/atol for ``torch.testing.assert_close`` at ``dtype``."""
    rtol, atol = TOLERANCES[dtype]
    return {"rtol": rtol, "atol": atol}


def poison(t: torch.Tensor) -> torch.Tensor:
    """Fill ``t`` in place with a value no kernel should produce (NaN for floating tensors, the
    dtype's maximum for integers) so an element the kernel never writes fails the comparison."""
    if t.is_floating_point() or t.is_complex():
        return t.fill_(float("nan"))
    if t.dtype == torch.bool:
        return t.fill_(True)
    return t.fill_(torch.iinfo(t.dtype).max)
