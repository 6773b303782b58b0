"""Fused depthwise KxK -> folded BN -> act -> pointwise 1x1 -> folded BN -> act, one kernel.

Unfused, the depthwise output (N, C, Ho, Wo) is written to memory and read back by the
pointwise convolution, and every BN / activation is a further read and write. Here the
intermediate stays in registers: the kernel reads x once (plus halo re-reads that hit cache)
and writes the output once.
"""

from __future__ import annotations

import functools

import torch

# isort: off
# _runtime sets TRITON_INTERPRET on CPU-only machines before our @triton.jit reads it. The
# @jit helpers inside triton.language (tl.zeros, tl.sum, ...) read it when triton.language is
# first imported, which torchvision may already have done: the kernel uses only builtins
# (tl.full, not tl.zeros), so it runs under the interpreter whatever the import order.
from kernels import _runtime
import triton
import triton.language as tl
# isort: on

from kernels._autotune import fit_to_problem
from kernels.reference import ACTIVATIONS

KERNEL_SIZES = (3, 5, 7)
DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_ACT_CODE = {None: 0, "relu": 1, "relu6": 2}


@triton.jit
def _activate(v, ACT: tl.constexpr):
    if ACT == 1:
        v = tl.maximum(v, 0.0)
    elif ACT == 2:
        v = tl.minimum(tl.maximum(v, 0.0), 6.0)
    return v


@triton.jit
def _dwsep_kernel(
    x_ptr, dw_w_ptr, pw_w_ptr, dw_scale_ptr, dw_shift_ptr, pw_scale_ptr, pw_shift_ptr, out_ptr,
    P, C, H, W, COUT, HO, WO,
    stride_xn, stride_xc, stride_xh, stride_xw,
    stride_dwc, stride_dwh, stride_dww,
    stride_pwo, stride_pwc,
    stride_on, stride_oc, stride_oh, stride_ow,
    K: tl.constexpr, STRIDE: tl.constexpr, PAD: tl.constexpr,
    HAS_DW_SCALE: tl.constexpr, HAS_DW_SHIFT: tl.constexpr, DW_ACT: tl.constexpr,
    HAS_PW_SCALE: tl.constexpr, HAS_PW_SHIFT: tl.constexpr, PW_ACT: tl.constexpr,
    DOT_PRECISION: tl.constexpr, DOT_IN_FP32: tl.constexpr,
    BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_CO: tl.constexpr,
):  # fmt: skip
    """One program: BLOCK_P output pixels (flattened over N, Ho, Wo) x BLOCK_CO output channels.

    For each block of BLOCK_C input channels it computes the KxK depthwise taps of those pixels
    (a (BLOCK_P, BLOCK_C) tile: contiguous channel vectors when x is channels_last), applies the
    folded BN affine and the activation in fp32, and tl.dot's the tile into the pointwise fp32
    accumulator. Pixel indices are int64, so every pointer offset is too (tensors past 2^31).
    """
    pid_p = tl.program_id(0)
    pid_co = tl.program_id(1)

    offs_p = pid_p.to(tl.int64) * BLOCK_P + tl.arange(0, BLOCK_P)
    offs_co = pid_co * BLOCK_CO + tl.arange(0, BLOCK_CO)
    mask_p = offs_p < P  # P = N * HO * WO, passed from Python (int64 when past 2^31)
    mask_co = offs_co < COUT

    n = offs_p // (HO * WO)
    rem = offs_p % (HO * WO)
    oh = rem // WO
    ow = rem % WO
    ih0 = oh * STRIDE - PAD
    iw0 = ow * STRIDE - PAD
    x_pix = x_ptr + n * stride_xn  # (BLOCK_P,) pointers to each pixel's image

    acc = tl.full((BLOCK_P, BLOCK_CO), 0.0, tl.float32)
    for c0 in range(0, C, BLOCK_C):
        offs_c = c0 + tl.arange(0, BLOCK_C)
        mask_c = offs_c < C
        x_c = x_pix[:, None] + offs_c[None, :].to(tl.int64) * stride_xc
        dw = tl.full((BLOCK_P, BLOCK_C), 0.0, tl.float32)
        for kh in tl.static_range(K):
            ih = ih0 + kh
            row_ok = mask_p & (ih >= 0) & (ih < H)
            for kw in tl.static_range(K):
                iw = iw0 + kw
                ok = row_ok & (iw >= 0) & (iw < W)
                xv = tl.load(
                    x_c + (ih * stride_xh + iw * stride_xw)[:, None],
                    mask=ok[:, None] & mask_c[None, :],
                    other=0.0,
                )
                wv = tl.load(dw_w_ptr + offs_c * stride_dwc + kh * stride_dwh + kw * stride_dww,
                             mask=mask_c, other=0.0)  # fmt: skip
                dw += xv.to(tl.float32) * wv.to(tl.float32)[None, :]
        if HAS_DW_SCALE:
            dw *= tl.load(dw_scale_ptr + offs_c, mask=mask_c, other=0.0).to(tl.float32)[None, :]
        if HAS_DW_SHIFT:
            dw += tl.load(dw_shift_ptr + offs_c, mask=mask_c, other=0.0).to(tl.float32)[None, :]
        dw = _activate(dw, DW_ACT)
        # Channels past C carry zero pw weights, so whatever the shift made of them adds nothing.
        pw = tl.load(
            pw_w_ptr + offs_co[None, :] * stride_pwo + offs_c[:, None] * stride_pwc,
            mask=mask_c[:, None] & mask_co[None, :],
            other=0.0,
        )
        # The intermediate is rounded to the input dtype (as an unfused bf16/fp16 pipeline
        # stores it) so fp16/bf16 run on tensor cores; fp32 follows torch's cuDNN TF32 flag.
        dw = dw.to(pw.dtype)
        if DOT_IN_FP32:  # the interpreter's bf16 tl.dot returns garbage (triton 3.8); same
            dw = dw.to(tl.float32)  # numerics in fp32: bf16 products are exact there
            pw = pw.to(tl.float32)
        acc = tl.dot(dw, pw, acc, input_precision=DOT_PRECISION)

    if HAS_PW_SCALE:
        acc *= tl.load(pw_scale_ptr + offs_co, mask=mask_co, other=0.0).to(tl.float32)[None, :]
    if HAS_PW_SHIFT:
        acc += tl.load(pw_shift_ptr + offs_co, mask=mask_co, other=0.0).to(tl.float32)[None, :]
    acc = _activate(acc, PW_ACT)

    out_pix = n * stride_on + oh * stride_oh + ow * stride_ow
    out_ptrs = out_ptr + out_pix[:, None] + offs_co[None, :].to(tl.int64) * stride_oc
    tl.store(out_ptrs, acc.to(out_ptr.dtype.element_ty), mask=mask_p[:, None] & mask_co[None, :])


def dwsep_configs() -> list[triton.Config]:
    """Autotune candidates. Under the interpreter one small config: each config is a full
    (slow) interpreted run, and speed there means nothing."""
    if _runtime.INTERPRET:
        return [triton.Config({"BLOCK_P": 32, "BLOCK_C": 32, "BLOCK_CO": 32}, num_warps=1)]
    # (BLOCK_P, BLOCK_C, BLOCK_CO, num_warps, num_stages). A BLOCK_CO covering Cout in one tile
    # computes the depthwise taps once instead of once per output-channel tile; the
    # BLOCK_P x BLOCK_CO fp32 accumulator bounds the registers. 20 configs, not a product:
    # each one is compiled and timed per shape key.
    shapes = [
        (32, 32, 64, 4, 2), (64, 32, 64, 4, 2), (128, 32, 64, 4, 2), (16, 32, 64, 2, 2),
        (32, 32, 128, 4, 2), (64, 32, 128, 4, 2), (128, 32, 128, 8, 2),
        (16, 32, 256, 4, 2), (32, 32, 256, 8, 2), (64, 32, 256, 8, 2),
        (64, 16, 64, 4, 3), (128, 16, 64, 4, 3), (64, 16, 128, 4, 3),
        (64, 64, 64, 4, 2), (128, 64, 128, 8, 2), (32, 64, 256, 8, 2),
        (64, 32, 32, 4, 2), (128, 32, 32, 4, 2), (256, 32, 32, 8, 2), (128, 16, 16, 4, 2),
    ]  # fmt: skip
    return [
        triton.Config({"BLOCK_P": p, "BLOCK_C": c, "BLOCK_CO": co}, num_warps=w, num_stages=st)
        for p, c, co, w, st in shapes
    ]


def _prune_configs(configs: list[triton.Config], named_args: dict, **kwargs) -> list[triton.Config]:
    """Tiles no wider than the problem: output pixels, input and output channels."""
    sizes = {"BLOCK_P": named_args["P"], "BLOCK_C": named_args["C"], "BLOCK_CO": named_args["COUT"]}
    return fit_to_problem(configs, sizes)


@functools.cache
def _tuned_kernel():
    """The autotuned kernel, built on first use (no device query at import)."""
    return triton.autotune(
        configs=dwsep_configs(),
        key=["P", "C", "COUT", "H", "W", "K", "STRIDE", "stride_xc"],
        prune_configs_by={"early_config_prune": _prune_configs},
    )(_dwsep_kernel)


def _check_vector(name: str, t: torch.Tensor | None, length: int, x: torch.Tensor) -> None:
    if t is None:
        return
    if not isinstance(t, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape ({length},) or None, got {type(t)}"
        )
    if t.shape != (length,):
        raise ValueError(f"{name} must have shape ({length},), got {tuple(t.shape)}")
    if t.device != x.device:
        raise ValueError(f"{name} is on {t.device} but x is on {x.device}; put all on one device")
    if t.dtype not in (x.dtype, torch.float32):
        raise TypeError(f"{name} has dtype {t.dtype}; accepted: x's dtype ({x.dtype}) or float32")


def _validate(x, dw_weight, pw_weight, stride, padding, activation, pw_activation) -> int:
    for name, t in (("x", x), ("dw_weight", dw_weight), ("pw_weight", pw_weight)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4:
            raise ValueError(f"{name} must be 4-D, got shape {tuple(t.shape)}")
        if t.dtype not in DTYPES:
            raise TypeError(f"{name} has dtype {t.dtype}; accepted: {DTYPES}")
    if dw_weight.dtype != x.dtype or pw_weight.dtype != x.dtype:
        raise TypeError(
            f"x, dw_weight and pw_weight must share one dtype, got {x.dtype}, {dw_weight.dtype}, "
            f"{pw_weight.dtype}"
        )
    if dw_weight.device != x.device or pw_weight.device != x.device:
        raise ValueError(
            f"x, dw_weight and pw_weight must be on one device, got {x.device}, "
            f"{dw_weight.device}, {pw_weight.device}"
        )
    _runtime.check_device("x", x)
    c = x.shape[1]
    kh, kw = dw_weight.shape[-2:]
    if dw_weight.shape[:2] != (c, 1) or kh != kw:
        raise ValueError(
            f"dw_weight must have shape (C, 1, K, K) = ({c}, 1, K, K) for x with C={c}, "
            f"got {tuple(dw_weight.shape)}"
        )
    if kh not in KERNEL_SIZES:
        raise ValueError(f"depthwise kernel size must be one of {KERNEL_SIZES}, got {kh}")
    if pw_weight.shape[1:] != (c, 1, 1):
        raise ValueError(
            f"pw_weight must have shape (Cout, {c}, 1, 1) for x with C={c}, "
            f"got {tuple(pw_weight.shape)}"
        )
    if stride not in (1, 2) or isinstance(stride, bool):
        raise ValueError(f"stride must be 1 or 2, got {stride!r}")
    pad = kh // 2 if padding is None else padding
    if not isinstance(pad, int) or isinstance(pad, bool) or pad < 0:
        raise ValueError(f"padding must be a non-negative int or None (K//2), got {padding!r}")
    for name, act in (("activation", activation), ("pw_activation", pw_activation)):
        if act not in ACTIVATIONS:
            raise ValueError(f"{name} must be one of {ACTIVATIONS}, got {act!r}")
    if x.shape[0] < 1 or c < 1 or pw_weight.shape[0] < 1:
        raise ValueError(f"empty tensors are not accepted: x {tuple(x.shape)}, "
                         f"pw_weight {tuple(pw_weight.shape)}")  # fmt: skip
    return pad


def dwsep_block(
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
    """pw_act(conv1x1(act(dwconv(x) * dw_scale + dw_shift)) * pw_scale + pw_shift), one kernel.

    x: (N, C, H, W), contiguous or channels_last, float32/float16/bfloat16. dw_weight
    (C, 1, K, K) with K in {3, 5, 7}; pw_weight (Cout, C, 1, 1); scales/shifts (C,) or (Cout,)
    in x's dtype or float32. Accumulates in float32; returns x's dtype and memory format.
    """
    pad = _validate(x, dw_weight, pw_weight, stride, padding, activation, pw_activation)
    n, c, h, w = x.shape
    cout = pw_weight.shape[0]
    _check_vector("dw_scale", dw_scale, c, x)
    _check_vector("dw_shift", dw_shift, c, x)
    _check_vector("pw_scale", pw_scale, cout, x)
    _check_vector("pw_shift", pw_shift, cout, x)
    k = dw_weight.shape[-1]
    ho = (h + 2 * pad - k) // stride + 1
    wo = (w + 2 * pad - k) // stride + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"input {h}x{w} is smaller than the {k}x{k} kernel with padding {pad}")

    # torch's rule: a tensor that is both (C == 1 or H == W == 1) counts as contiguous.
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    if not channels_last and not x.is_contiguous():
        x = x.contiguous()  # any strides would work, but a dense layout keeps loads coalesced
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    out = torch.empty((n, cout, ho, wo), device=x.device, dtype=x.dtype, memory_format=fmt)
    pw2d = pw_weight.reshape(cout, c)  # a view for contiguous weights
    dot_precision = "ieee"
    if x.dtype == torch.float32 and torch.backends.cudnn.allow_tf32 and not _runtime.INTERPRET:
        dot_precision = "tf32"  # the same rounding cuDNN applies to the fp32 baselines

    def grid(meta):
        return (triton.cdiv(n * ho * wo, meta["BLOCK_P"]), triton.cdiv(cout, meta["BLOCK_CO"]))

    def ptr(t: torch.Tensor | None) -> torch.Tensor:
        return x if t is None else t.contiguous()  # unused pointer when the flag is off

    _tuned_kernel()[grid](
        x, dw_weight, pw2d, ptr(dw_scale), ptr(dw_shift), ptr(pw_scale), ptr(pw_shift), out,
        n * ho * wo, c, h, w, cout, ho, wo,
        *x.stride(),
        dw_weight.stride(0), dw_weight.stride(2), dw_weight.stride(3),
        *pw2d.stride(),
        *out.stride(),
        K=k, STRIDE=stride, PAD=pad,
        HAS_DW_SCALE=dw_scale is not None, HAS_DW_SHIFT=dw_shift is not None,
        DW_ACT=_ACT_CODE[activation],
        HAS_PW_SCALE=pw_scale is not None, HAS_PW_SHIFT=pw_shift is not None,
        PW_ACT=_ACT_CODE[pw_activation],
        DOT_PRECISION=dot_precision,
        DOT_IN_FP32=_runtime.INTERPRET and x.dtype == torch.bfloat16,
    )  # fmt: skip
    return out
