"""Squared Euclidean distances to prototypes and LeCun et al.'s (1998) RBF loss, in Triton.

``rbf_distance(x, centers)`` is one kernel: a tl.dot for the cross term of
||a||^2 + ||b||^2 - 2 a.b with float32 accumulation, made accurate far from the origin in two
steps. (1) float32 operands are shifted by the first center c_0 inside the kernel (distances are
translation invariant; for data clustered around one point x - c_0 is exact by Sterbenz's lemma),
so the expansion works on small numbers. (2) Entries whose expansion still cancels badly (d below
REFINE_RATIO of ||a'||^2 + ||b'||^2, e.g. duplicates) are recomputed from exact differences in
that tile only. 16-bit operands are not shifted: their products are exact in float32, so the raw
expansion is already float32-accurate near the origin, and a shifted value would be rounded back
to 16 bits; far from the origin the refinement catches them (slowly). The loss path (no
refinement) shifts 16-bit distances too, but only in the components where every operand of the
tile shifts exactly, so its dots always see exact differences.

``rbf_loss`` runs the forward (online log-sum-exp over [-j, -d_0, ..., -d_{K-1}]) and both
gradients in Triton. The loss needs distances to an absolute (not relative) accuracy, so it skips
the refinement, which in training would fire on every tile (features sit near their prototype),
and takes the target's distance, which enters the loss directly, from exact differences.
Only x, centers, target and one float32 log-sum-exp per row are saved; the backward kernels
recompute the distances. The gradient dots round w to the input dtype, and the x sum(w) term
sums that same rounded w, so 16-bit gradients err with ||x - c||, not with ||x||. dL/dc
reduces over the batch deterministically: each program sums a slab of rows into its own
partial, and torch sums the partials (no atomics).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

# _runtime sets TRITON_INTERPRET, which triton reads when it is first imported.
# isort: off
from kernels import _runtime
import triton
import triton.language as tl

# isort: on
from kernels._autotune import Tunable

SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
REDUCTIONS = ("mean", "sum", "none")
# Refine an entry by exact differences when d < REFINE_RATIO * (||a'||^2 + ||b'||^2): the
# expansion's float32 error is about sqrt(D) * 6e-8 * (||a'||^2 + ||b'||^2), so entries above the
# ratio keep a relative error below ~1.3e-6 / 0.25 = 5e-6 even at D = 512.
REFINE_RATIO = 0.25
# float32 tl.dot defaults to TF32 on tensor cores (10-bit mantissa): ~3e-5 relative error on the
# cross term at D=64, too much for the 1e-5 target. "tf32x3" (hi*hi + hi*lo + lo*hi, tensor
# cores) after the c_0 shift: 1.1-1.5e-6 max relative error emulated at D = 64/128/512, near the
# origin and at 1e4 (exact float32 FMA "ieee": 0.9-1.6e-6); sm_90 cubins: HMMA.TF32 / HGMMA
# instead of FFMA (kernels/NOTES.md, rbf v3). TestRBFOnGPU enforces the target on a GPU.
FP32_DOT_PRECISION = "tf32x3"


# ----------------------------------------------------------------------------------- kernels


@triton.jit
def _index(pid, BLOCK: tl.constexpr, INDEX64: tl.constexpr):
    """pid * BLOCK + arange(BLOCK), int64 only where offsets can pass 2^31 (int32 offsets halve
    the registers of every pointer tile)."""
    if INDEX64:
        pid = pid.to(tl.int64)
    return pid * BLOCK + tl.arange(0, BLOCK)


@triton.jit
def _dot_operand(w, like_ptr, DOT_F32: tl.constexpr):
    """float32 weights w rounded to ``like_ptr``'s dtype, the dot's operand type. DOT_F32 (the
    interpreter's bfloat16 workaround) feeds the dot float32, but still rounded to bfloat16 so
    the interpreter computes what the GPU does."""
    w = w.to(like_ptr.dtype.element_ty)
    if DOT_F32:
        w = w.to(tl.float32)
    return w


@triton.jit
def _exact_shift(a, bt, shift, mask_a, mask_bt):
    """The 16-bit tiles a (rows x D-chunk) and bt (D-chunk x cols) shifted by ``shift`` in the
    components where every row of both shifts exactly in 16 bits (Sterbenz: data clustered
    around c_0), unshifted in the others. Distances are translation invariant per component, so
    either way the dot sees exact differences: no 16-bit rounding of a - c_0 near the origin,
    no 2^-24 (||a||^2 + ||b||^2) cancellation far from it (issue 17)."""
    a32 = a.to(tl.float32)
    b32 = bt.to(tl.float32)
    a_sh = a32 - shift[None, :]
    b_sh = b32 - shift[:, None]
    a_ok = (a_sh.to(a.dtype).to(tl.float32) == a_sh) | ~mask_a
    b_ok = (b_sh.to(bt.dtype).to(tl.float32) == b_sh) | ~mask_bt
    use = (tl.min(a_ok.to(tl.int32), axis=0) * tl.min(b_ok.to(tl.int32), axis=1)) > 0
    shift = tl.where(use, shift, 0.0)
    a = tl.where(mask_a, a32 - shift[None, :], 0.0).to(a.dtype)
    bt = tl.where(mask_bt, b32 - shift[:, None], 0.0).to(bt.dtype)
    return a, bt


@triton.jit
def _sqdist_tile(
    a_ptr,
    b_ptr,
    a_idx,
    b_idx,
    a_mask,
    b_mask,
    D,
    stride_a0,
    stride_a1,
    stride_b0,
    stride_b1,
    shift_ptr,
    stride_shift,
    BLOCK_A: tl.constexpr,
    BLOCK_BB: tl.constexpr,
    BLOCK_D: tl.constexpr,
    CENTER: tl.constexpr,
    PRECISION: tl.constexpr,
    RATIO: tl.constexpr,
    DOT_F32: tl.constexpr,
):
    """(BLOCK_A, BLOCK_BB) float32 squared distances between rows a_idx of a and b_idx of b.

    RATIO 0 skips the exact-difference refinement (the loss needs absolute, not relative,
    accuracy of the distances: an absolute error e moves e^-d by a factor e^e).
    """
    acc = tl.zeros((BLOCK_A, BLOCK_BB), dtype=tl.float32)
    norm_a = tl.zeros((BLOCK_A,), dtype=tl.float32)
    norm_b = tl.zeros((BLOCK_BB,), dtype=tl.float32)
    for d0 in range(0, D, BLOCK_D):
        offs_d = d0 + tl.arange(0, BLOCK_D)
        d_mask = offs_d < D
        mask_a = a_mask[:, None] & d_mask[None, :]
        mask_bt = d_mask[:, None] & b_mask[None, :]
        a = tl.load(
            a_ptr + a_idx[:, None] * stride_a0 + offs_d[None, :] * stride_a1, mask=mask_a, other=0.0
        )
        bt = tl.load(
            b_ptr + b_idx[None, :] * stride_b0 + offs_d[:, None] * stride_b1,
            mask=mask_bt,
            other=0.0,
        )
        if CENTER:
            shift = tl.load(shift_ptr + offs_d * stride_shift, mask=d_mask, other=0.0)
            if CENTER == 2:
                a, bt = _exact_shift(a, bt, shift.to(tl.float32), mask_a, mask_bt)
            else:
                a = tl.where(mask_a, a - shift[None, :], 0.0)
                bt = tl.where(mask_bt, bt - shift[:, None], 0.0)
        af = a.to(tl.float32)
        bf = bt.to(tl.float32)
        norm_a += tl.sum(af * af, axis=1)
        norm_b += tl.sum(bf * bf, axis=0)
        if DOT_F32:
            a = af
            bt = bf
        acc = tl.dot(a, bt, acc, input_precision=PRECISION)
    scale = norm_a[:, None] + norm_b[None, :]
    dist = scale - 2.0 * acc
    if RATIO > 0.0:
        # Also recomputed: entries the expansion cannot get right at all. A NaN or inf operand
        # turns the expansion into NaN (inf - inf) where the differences give NaN or inf.
        hopeless = (dist != dist) | (scale == float("inf"))
        cancelled = ((dist <= RATIO * scale) | hopeless) & a_mask[:, None] & b_mask[None, :]
        flag_a = tl.max(cancelled.to(tl.int32), axis=1) > 0
        flag_b = tl.max(cancelled.to(tl.int32), axis=0) > 0
        if tl.max(flag_a.to(tl.int32), axis=0) > 0:
            # Flagged tiles only: O(BLOCK_A * BLOCK_BB * D) FMAs on exact differences, loading
            # only the flagged rows of a and b (masked-off lanes fetch nothing): one duplicate
            # costs 2 D elements, not D (BLOCK_A + BLOCK_BB) (kernels/NOTES.md, rbf v3).
            exact = tl.zeros((BLOCK_A, BLOCK_BB), dtype=tl.float32)
            for k in range(0, D):
                av = tl.load(a_ptr + a_idx * stride_a0 + k * stride_a1, mask=flag_a, other=0.0)
                bv = tl.load(b_ptr + b_idx * stride_b0 + k * stride_b1, mask=flag_b, other=0.0)
                diff = av.to(tl.float32)[:, None] - bv.to(tl.float32)[None, :]
                exact += diff * diff
            dist = tl.where(cancelled, exact, dist)
    return tl.where(dist < 0.0, 0.0, dist)  # tl.maximum would turn NaN into 0


@triton.jit
def _rbf_distance_kernel(
    x_ptr,
    c_ptr,
    out_ptr,
    B,
    K,
    D,
    B_BUCKET,
    stride_xb,
    stride_xd,
    stride_ck,
    stride_cd,
    stride_ob,
    stride_ok,
    BLOCK_B: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_D: tl.constexpr,
    CENTER: tl.constexpr,
    PRECISION: tl.constexpr,
    RATIO: tl.constexpr,
    DOT_F32: tl.constexpr,
    INDEX64: tl.constexpr,
):
    """One program: the (BLOCK_B, BLOCK_K) tile of distances out[b, k] = ||x_b - c_k||^2."""
    rows = _index(tl.program_id(0), BLOCK_B, INDEX64)
    cols = _index(tl.program_id(1), BLOCK_K, INDEX64)
    row_mask = rows < B
    col_mask = cols < K
    dist = _sqdist_tile(
        x_ptr, c_ptr, rows, cols, row_mask, col_mask, D,
        stride_xb, stride_xd, stride_ck, stride_cd, c_ptr, stride_cd,
        BLOCK_B, BLOCK_K, BLOCK_D, CENTER, PRECISION, RATIO, DOT_F32,
    )  # fmt: skip
    out = out_ptr + rows[:, None] * stride_ob + cols[None, :] * stride_ok
    tl.store(out, dist.to(out_ptr.dtype.element_ty), mask=row_mask[:, None] & col_mask[None, :])


@triton.jit
def _rbf_loss_fwd_kernel(
    x_ptr,
    c_ptr,
    target_ptr,
    loss_ptr,
    lse_ptr,
    neg_j,
    B,
    K,
    D,
    B_BUCKET,
    stride_xb,
    stride_xd,
    stride_ck,
    stride_cd,
    BLOCK_B: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_D: tl.constexpr,
    CENTER: tl.constexpr,
    PRECISION: tl.constexpr,
    RATIO: tl.constexpr,
    DOT_F32: tl.constexpr,
    INDEX64: tl.constexpr,
):
    """One program: BLOCK_B rows, looping over all K centers with an online log-sum-exp.

    loss[b] = d[b, target_b] + lse[b], lse[b] = log(e^-j + sum_k e^-d[b, k]).
    """
    rows = _index(tl.program_id(0), BLOCK_B, INDEX64)
    row_mask = rows < B
    target = tl.load(target_ptr + rows, mask=row_mask, other=-1)
    run_max = tl.zeros((BLOCK_B,), dtype=tl.float32) + neg_j  # the e^-j term seeds the sum
    run_sum = tl.full((BLOCK_B,), 1.0, dtype=tl.float32)
    d_target = tl.zeros((BLOCK_B,), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        cols = k0 + tl.arange(0, BLOCK_K)
        col_mask = cols < K
        dist = _sqdist_tile(
            x_ptr, c_ptr, rows, cols, row_mask, col_mask, D,
            stride_xb, stride_xd, stride_ck, stride_cd, c_ptr, stride_cd,
            BLOCK_B, BLOCK_K, BLOCK_D, CENTER, PRECISION, RATIO, DOT_F32,
        )  # fmt: skip
        neg = tl.where(col_mask[None, :], -dist, float("-inf"))
        new_max = tl.maximum(run_max, tl.max(neg, axis=1))
        run_sum = run_sum * tl.exp(run_max - new_max) + tl.sum(
            tl.exp(neg - new_max[:, None]), axis=1
        )
        run_max = new_max
    # The target's distance enters the loss directly: exact differences, O(BLOCK_B * D).
    target_row = tl.where(row_mask, target, 0)
    for d0 in range(0, D, BLOCK_D):
        offs_d = d0 + tl.arange(0, BLOCK_D)
        mask = row_mask[:, None] & (offs_d < D)[None, :]
        xv = tl.load(x_ptr + rows[:, None] * stride_xb + offs_d[None, :] * stride_xd, mask=mask)
        cv = tl.load(
            c_ptr + target_row[:, None] * stride_ck + offs_d[None, :] * stride_cd, mask=mask
        )
        diff = tl.where(mask, xv.to(tl.float32) - cv.to(tl.float32), 0.0)
        d_target += tl.sum(diff * diff, axis=1)
    lse = run_max + tl.log(run_sum)
    tl.store(lse_ptr + rows, lse, mask=row_mask)
    tl.store(loss_ptr + rows, d_target + lse, mask=row_mask)


@triton.jit
def _rbf_loss_grad_x_kernel(
    x_ptr,
    c_ptr,
    target_ptr,
    lse_ptr,
    g_ptr,
    grad_x_ptr,
    B,
    K,
    D,
    B_BUCKET,
    stride_xb,
    stride_xd,
    stride_ck,
    stride_cd,
    stride_gxb,
    stride_gxd,
    BLOCK_B: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_DO: tl.constexpr,
    CENTER: tl.constexpr,
    PRECISION: tl.constexpr,
    RATIO: tl.constexpr,
    DOT_F32: tl.constexpr,
    INDEX64: tl.constexpr,
):
    """One program: grad_x for BLOCK_B rows and BLOCK_DO features, recomputing distances.

    With w[b, k] = g_b ([k == t_b] - e^(-d[b, k] - lse_b)):
    grad_x[b] = 2 sum_k w[b, k] (x_b - c_k) = 2 (x'_b sum_k w[b, k] - (w @ C')[b]),
    x' and C' shifted by c_0 (when CENTER) so the difference does not cancel far from 0.
    """
    rows = _index(tl.program_id(0), BLOCK_B, INDEX64)
    feats = _index(tl.program_id(1), BLOCK_DO, INDEX64)
    row_mask = rows < B
    feat_mask = feats < D
    target = tl.load(target_ptr + rows, mask=row_mask, other=-1)
    lse = tl.load(lse_ptr + rows, mask=row_mask, other=0.0)
    g = tl.load(g_ptr + rows, mask=row_mask, other=0.0)
    if CENTER == 1:
        shift = tl.load(c_ptr + feats * stride_cd, mask=feat_mask, other=0.0)
    w_sum = tl.zeros((BLOCK_B,), dtype=tl.float32)
    acc = tl.zeros((BLOCK_B, BLOCK_DO), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        cols = k0 + tl.arange(0, BLOCK_K)
        col_mask = cols < K
        dist = _sqdist_tile(
            x_ptr, c_ptr, rows, cols, row_mask, col_mask, D,
            stride_xb, stride_xd, stride_ck, stride_cd, c_ptr, stride_cd,
            BLOCK_B, BLOCK_K, BLOCK_D, CENTER, PRECISION, RATIO, DOT_F32,
        )  # fmt: skip
        onehot = (cols[None, :] == target[:, None]).to(tl.float32)
        w = g[:, None] * (onehot - tl.exp(-dist - lse[:, None]))
        w = tl.where(row_mask[:, None] & col_mask[None, :], w, 0.0)
        # The dot's operand rounded to the input dtype, and the same rounded w summed for the
        # x' sum(w) term: grad_x = 2 sum_k w16 (x' - c'_k) then errs with ||x - c||, not with
        # 2^-9 |w| ||x'|| (what summing the unrounded w cost; issue 17).
        w = _dot_operand(w, c_ptr, DOT_F32)
        w_sum += tl.sum(w.to(tl.float32), axis=1)
        c_mask = col_mask[:, None] & feat_mask[None, :]
        c = tl.load(
            c_ptr + cols[:, None] * stride_ck + feats[None, :] * stride_cd, mask=c_mask, other=0.0
        )
        if CENTER == 1:
            c = tl.where(c_mask, c - shift[None, :], 0.0)
        if DOT_F32:
            c = c.to(tl.float32)
        acc = tl.dot(w, c, acc, input_precision=PRECISION)
    x_mask = row_mask[:, None] & feat_mask[None, :]
    x = tl.load(
        x_ptr + rows[:, None] * stride_xb + feats[None, :] * stride_xd, mask=x_mask, other=0.0
    ).to(tl.float32)
    if CENTER == 1:
        x = x - shift[None, :]
    grad = 2.0 * (x * w_sum[:, None] - acc)
    out = grad_x_ptr + rows[:, None] * stride_gxb + feats[None, :] * stride_gxd
    tl.store(out, grad.to(grad_x_ptr.dtype.element_ty), mask=x_mask)


@triton.jit
def _rbf_loss_grad_c_kernel(
    x_ptr,
    c_ptr,
    target_ptr,
    lse_ptr,
    g_ptr,
    partial_ptr,
    B,
    K,
    D,
    B_BUCKET,
    ROWS_PER_SLAB,
    stride_xb,
    stride_xd,
    stride_ck,
    stride_cd,
    stride_ps,
    stride_pk,
    stride_pd,
    BLOCK_B: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_DO: tl.constexpr,
    CENTER: tl.constexpr,
    PRECISION: tl.constexpr,
    RATIO: tl.constexpr,
    DOT_F32: tl.constexpr,
    INDEX64: tl.constexpr,
):
    """One program: BLOCK_K centers x BLOCK_DO features of slab s's share of grad_c.

    partial[s, k] = 2 sum_{b in slab s} w[b, k] (c_k - x_b) = 2 (c'_k sum_b w - (w^T @ X')[k]);
    distances are recomputed transposed ((BLOCK_K, BLOCK_B) tiles) so no tl.trans is needed.
    """
    cols = _index(tl.program_id(0), BLOCK_K, INDEX64)
    feats = _index(tl.program_id(1), BLOCK_DO, INDEX64)
    slab = tl.program_id(2)
    col_mask = cols < K
    feat_mask = feats < D
    if CENTER == 1:
        shift = tl.load(c_ptr + feats * stride_cd, mask=feat_mask, other=0.0)
    w_sum = tl.zeros((BLOCK_K,), dtype=tl.float32)
    acc = tl.zeros((BLOCK_K, BLOCK_DO), dtype=tl.float32)
    if INDEX64:
        slab = slab.to(tl.int64)
    slab_start = slab * ROWS_PER_SLAB
    slab_end = tl.minimum(slab_start + ROWS_PER_SLAB, B)
    for b0 in range(slab_start, slab_end, BLOCK_B):
        rows = b0 + tl.arange(0, BLOCK_B)
        row_mask = rows < slab_end
        target = tl.load(target_ptr + rows, mask=row_mask, other=-1)
        lse = tl.load(lse_ptr + rows, mask=row_mask, other=0.0)
        g = tl.load(g_ptr + rows, mask=row_mask, other=0.0)
        dist_t = _sqdist_tile(
            c_ptr, x_ptr, cols, rows, col_mask, row_mask, D,
            stride_ck, stride_cd, stride_xb, stride_xd, c_ptr, stride_cd,
            BLOCK_K, BLOCK_B, BLOCK_D, CENTER, PRECISION, RATIO, DOT_F32,
        )  # fmt: skip
        onehot = (cols[:, None] == target[None, :]).to(tl.float32)
        w_t = g[None, :] * (onehot - tl.exp(-dist_t - lse[None, :]))
        w_t = tl.where(col_mask[:, None] & row_mask[None, :], w_t, 0.0)
        w_t = _dot_operand(w_t, x_ptr, DOT_F32)  # as in grad_x: one rounded w for both terms
        w_sum += tl.sum(w_t.to(tl.float32), axis=1)
        x_mask = row_mask[:, None] & feat_mask[None, :]
        x = tl.load(
            x_ptr + rows[:, None] * stride_xb + feats[None, :] * stride_xd, mask=x_mask, other=0.0
        )
        if CENTER == 1:
            x = tl.where(x_mask, x - shift[None, :], 0.0)
        if DOT_F32:
            x = x.to(tl.float32)
        acc = tl.dot(w_t, x, acc, input_precision=PRECISION)
    c_mask = col_mask[:, None] & feat_mask[None, :]
    c = tl.load(
        c_ptr + cols[:, None] * stride_ck + feats[None, :] * stride_cd, mask=c_mask, other=0.0
    ).to(tl.float32)
    if CENTER == 1:
        c = c - shift[None, :]
    part = 2.0 * (c * w_sum[:, None] - acc)
    out = partial_ptr + slab * stride_ps + cols[:, None] * stride_pk + feats[None, :] * stride_pd
    tl.store(out, part, mask=c_mask)


# ----------------------------------------------------------------------- autotune configs


def _distance_configs(dtype: torch.dtype | None = None) -> list[triton.Config]:
    """Tile shapes for the distance and loss-forward kernels (built on first launch). float32
    was tuned for FMA dots ("ieee"), operands and accumulator in registers: smaller tiles."""
    if _runtime.INTERPRET:
        return [triton.Config({"BLOCK_B": 16, "BLOCK_K": 16, "BLOCK_D": 16})]
    # (BLOCK_B, BLOCK_K, BLOCK_D, warps, stages): GEMM-like, plus thin-K for K=10. Kept from
    # `sepbench inspect` sweeps (sm_90, rbf suite; kernels/NOTES.md): no spills in either kernel
    # that shares the list. float32 (FMA dots, accumulator and operands in registers) needs
    # small tiles: 128x128 spilled 1-2 KB there, 256x16 spilled 1.8-3.8 KB in bfloat16.
    if dtype == torch.float32:
        tiles = [
            (32, 16, 32, 4, 2),
            (32, 16, 16, 2, 2),
            (64, 16, 16, 4, 2),
            (32, 32, 32, 4, 2),
            (32, 64, 32, 4, 2),
            (64, 32, 32, 4, 3),
            (64, 64, 16, 8, 2),
        ]
    else:
        tiles = [
            (128, 16, 32, 4, 4),
            (32, 16, 32, 2, 4),
            (64, 64, 32, 4, 4),
            (64, 64, 64, 4, 3),
            (128, 64, 32, 4, 4),
            (128, 64, 64, 8, 3),
            (64, 128, 32, 8, 3),
        ]
    return [
        triton.Config({"BLOCK_B": b, "BLOCK_K": k, "BLOCK_D": d}, num_warps=w, num_stages=s)
        for b, k, d, w, s in tiles
    ]


def _grad_configs(dtype: torch.dtype | None = None) -> list[triton.Config]:
    """Tile shapes for the two backward kernels (BLOCK_DO: output features per program)."""
    if _runtime.INTERPRET:
        return [triton.Config({"BLOCK_B": 16, "BLOCK_K": 16, "BLOCK_D": 16, "BLOCK_DO": 16})]
    # (BLOCK_B, BLOCK_K, BLOCK_D, BLOCK_DO, warps, stages), kept as for _distance_configs:
    # no spills in grad_x nor grad_c on the rbf suite's shapes (sm_90).
    if dtype == torch.float32:
        tiles = [
            (16, 16, 16, 128, 4, 2),
            (32, 16, 16, 64, 4, 1),
            (32, 32, 16, 64, 4, 2),
            (32, 32, 32, 32, 4, 2),
        ]
    else:
        tiles = [
            (32, 16, 32, 128, 4, 3),
            (64, 16, 32, 128, 4, 3),
            (32, 32, 32, 64, 4, 3),
            (64, 64, 32, 64, 4, 3),
            (64, 64, 32, 128, 8, 3),
            (128, 64, 32, 128, 8, 3),
            (64, 128, 32, 128, 8, 3),
        ]
    return [
        triton.Config(
            {"BLOCK_B": b, "BLOCK_K": k, "BLOCK_D": d, "BLOCK_DO": do}, num_warps=w, num_stages=s
        )
        for b, k, d, do, w, s in tiles
    ]


def _tile_sizes(named_args: dict) -> dict[str, int]:
    """Tiles no wider than the problem (K=10 needs no 128-wide K tile)."""
    return {"BLOCK_B": named_args["B"], "BLOCK_K": named_args["K"], "BLOCK_DO": named_args["D"]}


# B is bucketed to a power of two in the key, so a ragged last batch does not re-tune.
_KEY = ("B_BUCKET", "K", "D")
TUNABLES = {
    "distance": Tunable(_rbf_distance_kernel, _distance_configs, _tile_sizes, _KEY),
    "loss_fwd": Tunable(_rbf_loss_fwd_kernel, _distance_configs, _tile_sizes, _KEY),
    "grad_x": Tunable(_rbf_loss_grad_x_kernel, _grad_configs, _tile_sizes, _KEY),
    "grad_c": Tunable(_rbf_loss_grad_c_kernel, _grad_configs, _tile_sizes, _KEY),
}


@functools.cache
def _tuned(name: str, fp32: bool) -> object:
    """The autotuned kernel ``name`` for float32 (FMA dots) or 16-bit (tensor-core) inputs."""
    return TUNABLES[name].autotuned(torch.float32 if fp32 else torch.bfloat16)


# ------------------------------------------------------------------------------ launchers


def _check_operands(x: torch.Tensor, centers: torch.Tensor) -> None:
    for name, t in (("x", x), ("centers", centers)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 2:
            raise ValueError(f"{name} must be 2-D, got shape {tuple(t.shape)}")
        if t.dtype not in SUPPORTED_DTYPES:
            raise TypeError(f"{name} dtype must be one of {SUPPORTED_DTYPES}, got {t.dtype}")
        _runtime.check_device(name, t)
    if x.dtype != centers.dtype:
        raise TypeError(f"x and centers must share a dtype, got {x.dtype} and {centers.dtype}")
    if x.device != centers.device:
        raise ValueError(f"x and centers must be on one device, got {x.device}, {centers.device}")
    if x.shape[1] != centers.shape[1]:
        raise ValueError(
            f"x (B, D) and centers (K, D) must share D, got {tuple(x.shape)} and "
            f"{tuple(centers.shape)}"
        )
    if x.shape[0] == 0 or centers.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(
            f"empty input: x {tuple(x.shape)}, centers {tuple(centers.shape)}; "
            "B, K and D must all be at least 1"
        )


def _numerics(dtype: torch.dtype, refine: bool, *sizes: int) -> dict[str, object]:
    """The launch's constexprs; ``sizes`` are the element counts of its tensors (int64
    offsets past 2^31)."""
    return {
        "INDEX64": max(sizes) >= 2**31,
        # Shift by c_0. 1: float32, distances and gradient operands. 2: 16-bit loss path (no
        # refinement there), distances only, where each component shifts exactly (unshifted,
        # they err by ~2^-24 (||x||^2 + ||c||^2), which e^-d amplifies); the gradient dots need
        # no shift: 16-bit products are exact in float32. 0: 16-bit distance (refined instead).
        "CENTER": 1 if dtype == torch.float32 else (0 if refine else 2),
        "PRECISION": FP32_DOT_PRECISION,
        "RATIO": REFINE_RATIO if refine else 0.0,
        # The interpreter's tl.dot multiplies bfloat16 bit patterns as uint16 (triton 3.8): give
        # it float32 operands instead, which is exact (bf16 products fit in float32's mantissa).
        "DOT_F32": _runtime.INTERPRET and dtype == torch.bfloat16,
    }


Launch = tuple[tuple, dict, Callable[[dict], tuple[int, ...]]]  # args, kwargs, grid


def distance_launch(x: torch.Tensor, centers: torch.Tensor, out: torch.Tensor) -> Launch:
    """The distance kernel's launch: what rbf_distance runs, and what bench.measuring.inspect
    compiles for a GPU target."""
    (B, D), K = x.shape, centers.shape[0]
    args = (
        x, centers, out, B, K, D, triton.next_power_of_2(B),
        x.stride(0), x.stride(1), centers.stride(0), centers.stride(1),
        out.stride(0), out.stride(1),
    )  # fmt: skip
    grid = lambda meta: (triton.cdiv(B, meta["BLOCK_B"]), triton.cdiv(K, meta["BLOCK_K"]))
    return args, _numerics(x.dtype, True, x.numel(), centers.numel(), out.numel()), grid


def _distance_forward(x: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    out = torch.empty((x.shape[0], centers.shape[0]), dtype=x.dtype, device=x.device)
    args, kwargs, grid = distance_launch(x, centers, out)
    _tuned("distance", x.dtype == torch.float32)[grid](*args, **kwargs)
    return out


class _RBFDistance(torch.autograd.Function):
    """Fused forward; the backward (rarely needed: training uses rbf_loss) is two torch.mm."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, centers)
        return _distance_forward(x, centers)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        x, centers = ctx.saved_tensors
        # d/dx_b sum_k G[b,k] ||x_b - c_k||^2 = 2 (x_b rowsum(G)_b - (G @ C)_b); shifting both by
        # c_0 keeps the subtraction from cancelling far from the origin.
        g = grad.float()
        shift = centers[0].float()
        xs, cs = x.float() - shift, centers.float() - shift
        grad_x = grad_c = None
        if ctx.needs_input_grad[0]:
            grad_x = (2.0 * (xs * g.sum(1, keepdim=True) - g @ cs)).to(x.dtype)
        if ctx.needs_input_grad[1]:
            grad_c = (2.0 * (cs * g.sum(0).unsqueeze(1) - g.t() @ xs)).to(centers.dtype)
        return grad_x, grad_c


def rbf_distance(x: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """(B, K) squared Euclidean distances ||x_b - c_k||^2, never negative, in x's dtype.

    x: (B, D), centers: (K, D), same dtype (float32, float16 or bfloat16), any strides.
    Accurate to ~1e-6 relative in float32 even for data far from the origin (see module doc).
    """
    _check_operands(x, centers)
    if torch.is_grad_enabled() and (x.requires_grad or centers.requires_grad):
        return _RBFDistance.apply(x, centers)
    return _distance_forward(x, centers)


def _check_target(
    target: torch.Tensor, batch: int, classes: int, device: torch.device
) -> torch.Tensor:
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor of class indices, got {type(target)}")
    if target.dtype.is_floating_point or target.dtype.is_complex or target.dtype == torch.bool:
        raise TypeError(f"target must hold integer class indices, got dtype {target.dtype}")
    if target.dim() == 2 and target.shape[1] == 1:  # document 002's Criterion accepts (B, 1)
        target = target[:, 0]
    if target.shape != (batch,):
        raise ValueError(f"target must have shape ({batch},) or ({batch}, 1), got {target.shape}")
    if target.device != device:
        raise ValueError(f"target must be on {device} like x, got {target.device}")
    low, high = (int(v) for v in torch.aminmax(target))
    if low < 0 or high >= classes:
        raise ValueError(f"target values must be in [0, {classes - 1}], got range [{low}, {high}]")
    return target.to(torch.int64).contiguous()


def rows_per_slab(B: int, K: int, D: int, sms: int | None) -> int:
    """Rows each grad_c program sums: enough slabs to fill ``sms`` multiprocessors twice, few
    enough partials. ``sms`` None (the interpreter): 32, so tests cover several partials."""
    if sms is None:
        return 32
    tiles = triton.cdiv(K, 64) * triton.cdiv(D, 128)
    slabs = max(1, min(triton.cdiv(B, 64), (2 * sms) // tiles))
    return triton.cdiv(B, slabs)


def loss_fwd_launch(
    x: torch.Tensor,
    centers: torch.Tensor,
    target: torch.Tensor,
    per_row: torch.Tensor,
    lse: torch.Tensor,
    j: float,
) -> Launch:
    (B, D), K = x.shape, centers.shape[0]
    args = (
        x, centers, target, per_row, lse, -float(j), B, K, D, triton.next_power_of_2(B),
        x.stride(0), x.stride(1), centers.stride(0), centers.stride(1),
    )  # fmt: skip
    grid = lambda meta: (triton.cdiv(B, meta["BLOCK_B"]),)
    return args, _numerics(x.dtype, False, x.numel(), centers.numel(), B * K), grid


def grad_x_launch(
    x: torch.Tensor,
    centers: torch.Tensor,
    target: torch.Tensor,
    lse: torch.Tensor,
    g: torch.Tensor,
    grad_x: torch.Tensor,
) -> Launch:
    (B, D), K = x.shape, centers.shape[0]
    args = (
        x, centers, target, lse, g, grad_x, B, K, D, triton.next_power_of_2(B),
        x.stride(0), x.stride(1), centers.stride(0), centers.stride(1),
        grad_x.stride(0), grad_x.stride(1),
    )  # fmt: skip
    grid = lambda meta: (triton.cdiv(B, meta["BLOCK_B"]), triton.cdiv(D, meta["BLOCK_DO"]))
    return args, _numerics(x.dtype, False, x.numel(), centers.numel(), B * K), grid


def grad_c_launch(
    x: torch.Tensor,
    centers: torch.Tensor,
    target: torch.Tensor,
    lse: torch.Tensor,
    g: torch.Tensor,
    partial: torch.Tensor,
    rows: int,
) -> Launch:
    (B, D), K = x.shape, centers.shape[0]
    args = (
        x, centers, target, lse, g, partial, B, K, D, triton.next_power_of_2(B), rows,
        x.stride(0), x.stride(1), centers.stride(0), centers.stride(1),
        partial.stride(0), partial.stride(1), partial.stride(2),
    )  # fmt: skip
    slabs = partial.shape[0]
    grid = lambda meta: (triton.cdiv(K, meta["BLOCK_K"]), triton.cdiv(D, meta["BLOCK_DO"]), slabs)
    return args, _numerics(x.dtype, False, x.numel(), partial.numel(), B * K), grid


def _sms(device: torch.device) -> int | None:
    if device.type != "cuda":
        return None
    return torch.cuda.get_device_properties(device).multi_processor_count


class _RBFLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, centers, target, j, reduction):
        B = x.shape[0]
        per_row = torch.empty((B,), dtype=torch.float32, device=x.device)
        lse = torch.empty((B,), dtype=torch.float32, device=x.device)
        args, kwargs, grid = loss_fwd_launch(x, centers, target, per_row, lse, j)
        _tuned("loss_fwd", x.dtype == torch.float32)[grid](*args, **kwargs)
        ctx.save_for_backward(x, centers, target, lse)
        ctx.reduction = reduction
        if reduction == "mean":
            return per_row.mean().to(x.dtype)
        if reduction == "sum":
            return per_row.sum().to(x.dtype)
        return per_row.to(x.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        x, centers, target, lse = ctx.saved_tensors
        (B, D), K = x.shape, centers.shape[0]
        g = grad_out.float()
        if ctx.reduction == "mean":
            g = (g / B).expand(B)
        elif ctx.reduction == "sum":
            g = g.expand(B)
        g = g.contiguous()
        grad_x = grad_c = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.empty((B, D), dtype=x.dtype, device=x.device)
            args, kwargs, grid = grad_x_launch(x, centers, target, lse, g, grad_x)
            _tuned("grad_x", x.dtype == torch.float32)[grid](*args, **kwargs)
        if ctx.needs_input_grad[1]:
            rows = rows_per_slab(B, K, D, _sms(x.device))
            partial = torch.empty(
                (triton.cdiv(B, rows), K, D), dtype=torch.float32, device=x.device
            )
            args, kwargs, grid = grad_c_launch(x, centers, target, lse, g, partial, rows)
            _tuned("grad_c", x.dtype == torch.float32)[grid](*args, **kwargs)
            grad_c = partial.sum(0).to(centers.dtype)  # second pass: deterministic order
        return grad_x, grad_c, None, None, None


def rbf_loss(
    x: torch.Tensor,
    centers: torch.Tensor,
    target: torch.Tensor,
    j: float = 0.3,
    reduction: str = "mean",
) -> torch.Tensor:
    """LeCun et al. (1998) eq. 9 on features x (B, D) and prototypes centers (K, D):
    per sample d[b, target_b] + log(e^-j + sum_k e^-d[b, k]), reduced by "mean", "sum" or "none".

    Differentiable in x and centers (both gradients computed by Triton kernels). target: (B,)
    or (B, 1) integer class indices in [0, K). Returns x's dtype (accumulation is float32).
    """
    _check_operands(x, centers)
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if isinstance(j, bool) or not isinstance(j, (int, float)) or j != j:
        raise TypeError(f"j must be a finite real number, got {j!r}")
    target = _check_target(target, x.shape[0], centers.shape[0], x.device)
    return _RBFLoss.apply(x, centers, target, float(j), reduction)
