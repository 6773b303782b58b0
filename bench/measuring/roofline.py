"""Minimal bytes per workload and where a measured latency sits under the roofline.

"Minimal" means every input (activations, weights, folded BN scale/shift) is read once and every
output is written once: what a perfectly fused kernel with unlimited cache would move. Unfused
baselines move more (each intermediate is written and read back), which is exactly the gap a
fused kernel can close.
"""

from __future__ import annotations

import math


def _positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def conv_bytes(
    batch: int,
    in_ch: int,
    out_ch: int,
    kernel: int,
    in_hw: tuple[int, int],
    out_hw: tuple[int, int],
    elem_bytes: int,
    *,
    groups: int = 1,
    affine: bool = True,
) -> int:
    """One convolution (+ per-channel scale/shift when ``affine``): input, weight, output."""
    _positive(batch=batch, in_ch=in_ch, out_ch=out_ch, kernel=kernel, elem_bytes=elem_bytes)
    elems = batch * in_ch * in_hw[0] * in_hw[1]
    elems += out_ch * (in_ch // groups) * kernel * kernel
    elems += 2 * out_ch if affine else 0
    elems += batch * out_ch * out_hw[0] * out_hw[1]
    return elems * elem_bytes


def dwsep_bytes(
    batch: int,
    in_ch: int,
    out_ch: int,
    kernel: int,
    in_hw: tuple[int, int],
    out_hw: tuple[int, int],
    elem_bytes: int,
) -> int:
    """The fused block: x, both weights, both scale/shift pairs read once; the output written."""
    _positive(batch=batch, in_ch=in_ch, out_ch=out_ch, kernel=kernel, elem_bytes=elem_bytes)
    elems = batch * in_ch * in_hw[0] * in_hw[1]
    elems += in_ch * kernel * kernel + in_ch * out_ch
    elems += 2 * in_ch + 2 * out_ch
    elems += batch * out_ch * out_hw[0] * out_hw[1]
    return elems * elem_bytes


def rbf_distance_bytes(batch: int, dim: int, centers: int, elem_bytes: int) -> int:
    """x (B, D) and centers (K, D) read once, distances (B, K) written once."""
    _positive(batch=batch, dim=dim, centers=centers, elem_bytes=elem_bytes)
    return (batch * dim + centers * dim + batch * centers) * elem_bytes


def rbf_loss_bytes(batch: int, dim: int, centers: int, elem_bytes: int) -> int:
    """Forward + backward: x, centers, int64 targets read; grad_x, grad_centers, loss written."""
    _positive(batch=batch, dim=dim, centers=centers, elem_bytes=elem_bytes)
    return 2 * (batch * dim + centers * dim) * elem_bytes + batch * 8 + elem_bytes


def achieved(latency_ms: float, macs: float, nbytes: float) -> tuple[float, float]:
    """(TFLOP/s, GB/s) at this latency; FLOPs = 2 x MACs. NaN when there is no latency."""
    if not latency_ms or math.isnan(latency_ms) or latency_ms <= 0:
        return math.nan, math.nan
    seconds = latency_ms * 1e-3
    return 2 * macs / seconds / 1e12, nbytes / seconds / 1e9


def attainable_tflops(intensity: float, copy_gbps: float, matmul_tflops: float) -> float:
    """The roof at ``intensity`` FLOPs per byte: min(compute peak, bandwidth x intensity)."""
    return min(matmul_tflops, copy_gbps * intensity / 1e3)


def pct_of_peak(
    tflops: float, macs: float, nbytes: float, copy_gbps: float, matmul_tflops: float
) -> float:
    """Achieved TFLOP/s as a percentage of the roof at this workload's arithmetic intensity.

    A memory-bound workload is judged against copy bandwidth, a compute-bound one against the
    matmul rate: 100 means the workload runs as fast as the measured peaks allow.
    """
    values = (tflops, macs, nbytes, copy_gbps, matmul_tflops)
    if any(v is None or math.isnan(v) for v in values) or nbytes <= 0 or macs <= 0:
        return math.nan
    roof = attainable_tflops(2 * macs / nbytes, copy_gbps, matmul_tflops)
    return 100.0 * tflops / roof if roof > 0 else math.nan
