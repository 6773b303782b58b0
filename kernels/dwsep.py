"""Fused depthwise KxK -> folded BN -> act -> pointwise 1x1 -> folded BN -> act, one kernel.

Unfused, the depthwise output (N, C, Ho, Wo) is written to memory and read back by the
pointwise convolution, and every BN / activation is a further read and write. Here the
intermediate stays in registers: the kernel reads x once (plus halo re-reads that hit cache)
and writes the output once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

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

from kernels._autotune import Tunable
from kernels.reference import ACTIVATIONS

KERNEL_SIZES = (3, 5, 7)
DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_ACT_CODE = {None: 0, "relu": 1, "relu6": 2}


@triton.jit
def _activate(v, ACT: tl.constexpr):
    """relu / relu6 that keep NaN, as torch.relu and torch.clamp do (tl.maximum drops it)."""
    if ACT == 1:
        v = tl.where(v < 0.0, 0.0, v)
    elif ACT == 2:
        v = tl.where(v < 0.0, 0.0, tl.where(v > 6.0, 6.0, v))
    return v


@triton.jit
def _pixels(pid, P, HO, WO, TILES_W, BLOCK_P: tl.constexpr, TILE_W: tl.constexpr,
            INDEX64: tl.constexpr):  # fmt: skip
    """(n, oh, ow, valid) of the program's BLOCK_P output pixels.

    TILE_W == 0: pixels flattened over (N, HO, WO), BLOCK_P consecutive ones (channels_last:
    the loads vectorise along channels, so pixels need no order). TILE_W > 0: a tile of
    (BLOCK_P // TILE_W) rows x TILE_W columns of one image, so the pixel axis is provably
    contiguous along a row (NCHW: the loads coalesce along it).
    """
    offs = tl.arange(0, BLOCK_P)
    if TILE_W == 0:
        if INDEX64:  # noqa: SIM108 (a constexpr branch of the kernel)
            p = pid.to(tl.int64) * BLOCK_P + offs
        else:
            p = pid * BLOCK_P + offs
        n = p // (HO * WO)
        rem = p % (HO * WO)
        oh = rem // WO
        ow = rem % WO
        valid = p < P
    else:
        tiles = tl.cdiv(HO, BLOCK_P // TILE_W) * TILES_W
        n = pid // tiles
        t = pid % tiles
        oh = (t // TILES_W) * (BLOCK_P // TILE_W) + offs // TILE_W
        ow = (t % TILES_W) * TILE_W + offs % TILE_W
        valid = (oh < HO) & (ow < WO)
        if INDEX64:
            n = n.to(tl.int64)
    return n, oh, ow, valid


@triton.jit
def _depthwise(x_ptr, dw_w_ptr, dw_scale_ptr, dw_shift_ptr, x_pix, ih0, iw0, valid, offs_c, mask_c,
               H, W, stride_xc, stride_xh, stride_xw, stride_dwc, stride_dwh, stride_dww,
               K: tl.constexpr, HAS_DW_SCALE: tl.constexpr, HAS_DW_SHIFT: tl.constexpr,
               DW_ACT: tl.constexpr, X_ALIGN: tl.constexpr, BLOCK_P: tl.constexpr,
               BLOCK_C: tl.constexpr):  # fmt: skip
    """act(dwconv(x) * scale + shift) of BLOCK_P pixels x BLOCK_C channels, fp32, in the blocked
    layout (see the anchor below). Each tap's BLOCK_C weights are one vector load per program."""
    x_c = offs_c * stride_xc
    dw = tl.full((BLOCK_P, BLOCK_C), 0.0, tl.float32)
    for kh in tl.range(0, K, num_stages=1):
        ih = ih0 + kh
        row_ok = valid & (ih >= 0) & (ih < H)
        for kw in tl.static_range(K):
            iw = iw0 + kw
            ok = row_ok & (iw >= 0) & (iw < W)
            pix = x_pix + (kh * stride_xh + kw * stride_xw)
            if X_ALIGN > 1:  # a hint of 1 would erase what Triton proves by itself
                pix = tl.multiple_of(pix, X_ALIGN)
            xv = tl.load(
                x_ptr + pix[:, None] + x_c[None, :], mask=ok[:, None] & mask_c[None, :], other=0.0
            )
            wv = tl.load(
                dw_w_ptr + offs_c * stride_dwc + kh * stride_dwh + kw * stride_dww,
                mask=mask_c,
                other=0.0,
            )
            dw += xv.to(tl.float32) * wv.to(tl.float32)[None, :]
    if HAS_DW_SCALE:
        dw *= tl.load(dw_scale_ptr + offs_c, mask=mask_c, other=0.0).to(tl.float32)[None, :]
    if HAS_DW_SHIFT:
        dw += tl.load(dw_shift_ptr + offs_c, mask=mask_c, other=0.0).to(tl.float32)[None, :]
    dw = _activate(dw, DW_ACT)
    # A layout anchor: without it Triton moves the conversion to the dot-operand layout back
    # through the FMAs onto each of the K*K tap loads (K*K round trips through shared memory,
    # the taps computed twice; 214 vs 108 registers and 1064 vs 736 SASS instructions for
    # 32/32/32 bf16 on sm_90). A reduction over a unit axis is not rematerialised.
    return tl.sum(tl.reshape(dw, (BLOCK_P, BLOCK_C, 1)), axis=2)


@triton.jit
def _epilogue(acc, out_ptr, pw_scale_ptr, pw_shift_ptr, n, oh, ow, valid, offs_co, mask_co,
              stride_on, stride_oc, stride_oh, stride_ow, HAS_PW_SCALE: tl.constexpr,
              HAS_PW_SHIFT: tl.constexpr, PW_ACT: tl.constexpr, O_ALIGN: tl.constexpr):  # fmt: skip
    """pw affine and activation of one (BLOCK_P, BLOCK_CO) accumulator; one store."""
    if HAS_PW_SCALE:
        acc *= tl.load(pw_scale_ptr + offs_co, mask=mask_co, other=0.0).to(tl.float32)[None, :]
    if HAS_PW_SHIFT:
        acc += tl.load(pw_shift_ptr + offs_co, mask=mask_co, other=0.0).to(tl.float32)[None, :]
    acc = _activate(acc, PW_ACT)
    out_pix = n * stride_on + oh * stride_oh + ow * stride_ow
    if O_ALIGN > 1:
        out_pix = tl.multiple_of(out_pix, O_ALIGN)
    out_ptrs = out_ptr + out_pix[:, None] + offs_co[None, :] * stride_oc
    tl.store(out_ptrs, acc.to(out_ptr.dtype.element_ty), mask=valid[:, None] & mask_co[None, :])


@triton.jit
def _dwsep_kernel(
    x_ptr, dw_w_ptr, pw_w_ptr, dw_scale_ptr, dw_shift_ptr, pw_scale_ptr, pw_shift_ptr, out_ptr,
    P, P_BUCKET, C, H, W, COUT, HO, WO, TILES_W,
    stride_xn, stride_xc, stride_xh, stride_xw,
    stride_dwc, stride_dwh, stride_dww,
    stride_pwo, stride_pwc,
    stride_on, stride_oc, stride_oh, stride_ow,
    K: tl.constexpr, STRIDE: tl.constexpr, PAD: tl.constexpr,
    HAS_DW_SCALE: tl.constexpr, HAS_DW_SHIFT: tl.constexpr, DW_ACT: tl.constexpr,
    HAS_PW_SCALE: tl.constexpr, HAS_PW_SHIFT: tl.constexpr, PW_ACT: tl.constexpr,
    DOT_PRECISION: tl.constexpr, DOT_IN_FP32: tl.constexpr,
    TILE_W: tl.constexpr, INDEX64: tl.constexpr, X_ALIGN: tl.constexpr, O_ALIGN: tl.constexpr,
    BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_CO: tl.constexpr,
    CO_LOOP: tl.constexpr = False, CO_STAGES: tl.constexpr = 2,
):  # fmt: skip
    """One program: BLOCK_P output pixels; each depthwise output is computed once per launch
    when CO_LOOP (BLOCK_C >= C) or BLOCK_CO >= COUT (the pruning keeps only such configs where
    it can).

    CO_LOOP: the depthwise of all C channels (one BLOCK_C block) is computed once, rounded to
    the input dtype and kept in registers as the dot's A operand; the program then loops over
    Cout in BLOCK_CO chunks (software-pipelined: the next chunk's pw weights load while the
    current chunk's MMA runs), each with its epilogue and store. Grid (pixel tiles, 1).
    Else (v2): BLOCK_P x BLOCK_CO outputs; for each BLOCK_C block of input channels the
    depthwise tile is computed and tl.dot'ed into the fp32 accumulator. Grid (pixel tiles,
    ceil(COUT / BLOCK_CO)): the depthwise is recomputed by every output-channel tile, so only
    BLOCK_CO >= COUT is recompute-free.
    Offsets are int32 unless INDEX64 (the launcher sets it past 2^31 elements). X_ALIGN /
    O_ALIGN (elements) tell the compiler every pixel's offset is a multiple of them, so
    channels_last rows load and store as 64/128-bit vectors. P_BUCKET (next power of two of P)
    is only the autotune key's.
    """
    pid_p = tl.program_id(0)
    pid_co = tl.program_id(1)
    n, oh, ow, valid = _pixels(pid_p, P, HO, WO, TILES_W, BLOCK_P, TILE_W, INDEX64)
    ih0 = oh * STRIDE - PAD
    iw0 = ow * STRIDE - PAD
    x_pix = n * stride_xn + ih0 * stride_xh + iw0 * stride_xw  # (BLOCK_P,) element offsets

    if CO_LOOP:
        offs_c = tl.arange(0, BLOCK_C)
        mask_c = offs_c < C
        dw = _depthwise(x_ptr, dw_w_ptr, dw_scale_ptr, dw_shift_ptr, x_pix, ih0, iw0, valid,
                        offs_c, mask_c, H, W, stride_xc, stride_xh, stride_xw, stride_dwc,
                        stride_dwh, stride_dww, K, HAS_DW_SCALE, HAS_DW_SHIFT, DW_ACT, X_ALIGN,
                        BLOCK_P, BLOCK_C)  # fmt: skip
        dw = dw.to(pw_w_ptr.dtype.element_ty)  # rounded once, as an unfused pipeline stores it
        if DOT_IN_FP32:  # the interpreter's bf16 tl.dot returns garbage (triton 3.8)
            dw = dw.to(tl.float32)
        for co0 in tl.range(0, COUT, BLOCK_CO, num_stages=CO_STAGES):
            offs_co = co0 + tl.arange(0, BLOCK_CO)
            mask_co = offs_co < COUT
            pw = tl.load(
                pw_w_ptr + offs_co[None, :] * stride_pwo + offs_c[:, None] * stride_pwc,
                mask=mask_c[:, None] & mask_co[None, :],
                other=0.0,
            )
            if DOT_IN_FP32:
                pw = pw.to(tl.float32)
            acc = tl.dot(dw, pw, input_precision=DOT_PRECISION, out_dtype=tl.float32)
            _epilogue(acc, out_ptr, pw_scale_ptr, pw_shift_ptr, n, oh, ow, valid, offs_co,
                      mask_co, stride_on, stride_oc, stride_oh, stride_ow, HAS_PW_SCALE,
                      HAS_PW_SHIFT, PW_ACT, O_ALIGN)  # fmt: skip
    else:
        offs_co = pid_co * BLOCK_CO + tl.arange(0, BLOCK_CO)
        mask_co = offs_co < COUT
        acc = tl.full((BLOCK_P, BLOCK_CO), 0.0, tl.float32)
        for c0 in tl.range(0, C, BLOCK_C):
            offs_c = c0 + tl.arange(0, BLOCK_C)
            mask_c = offs_c < C
            dw = _depthwise(x_ptr, dw_w_ptr, dw_scale_ptr, dw_shift_ptr, x_pix, ih0, iw0, valid,
                            offs_c, mask_c, H, W, stride_xc, stride_xh, stride_xw, stride_dwc,
                            stride_dwh, stride_dww, K, HAS_DW_SCALE, HAS_DW_SHIFT, DW_ACT,
                            X_ALIGN, BLOCK_P, BLOCK_C)  # fmt: skip
            # Channels past C carry zero pw weights: whatever the shift made of them adds nothing.
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
        _epilogue(acc, out_ptr, pw_scale_ptr, pw_shift_ptr, n, oh, ow, valid, offs_co, mask_co,
                  stride_on, stride_oc, stride_oh, stride_ow, HAS_PW_SCALE, HAS_PW_SHIFT,
                  PW_ACT, O_ALIGN)  # fmt: skip


def dwsep_configs(dtype: torch.dtype | None = None) -> list[triton.Config]:
    """Autotune candidates (the same for every dtype). Under the interpreter two small configs,
    one per path (the pruning keeps one: each config is a full, slow, interpreted run)."""
    if _runtime.INTERPRET:
        return [
            triton.Config({"BLOCK_P": 32, "BLOCK_C": 64, "BLOCK_CO": 32, "CO_LOOP": True}),
            triton.Config({"BLOCK_P": 32, "BLOCK_C": 32, "BLOCK_CO": 32, "CO_LOOP": False}),
        ]
    # (BLOCK_P, BLOCK_C, BLOCK_CO, num_warps, num_stages of the Cout loop, CO_LOOP).
    # v3 (kernels/NOTES.md): CO_LOOP configs compute the depthwise of all C once (C <= 256) and
    # loop Cout in chunks with the next chunk's weights in flight; the C-loop configs hold all
    # of Cout (<= 512) in the accumulator. Each is recompute-free where the pruning keeps it.
    shapes = [
        (64, 16, 64, 4, 2, True),
        (64, 32, 64, 4, 2, True),
        (64, 64, 64, 4, 2, True),
        (128, 64, 64, 8, 2, True),
        (32, 128, 64, 8, 2, True, 128),
        (64, 128, 64, 8, 2, True, 128),
        (128, 128, 64, 8, 2, True),
        (32, 256, 64, 4, 2, True),
        (64, 256, 64, 8, 2, True),
        (64, 32, 64, 4, 1, False),
        (64, 32, 128, 8, 1, False),
        (64, 32, 256, 8, 1, False),
        (32, 32, 512, 8, 1, False),
        (32, 64, 512, 16, 1, False),
        (32, 32, 512, 16, 1, False),
        (64, 32, 256, 16, 1, False),
    ]
    if dtype == torch.float32:
        # fp32 CO_LOOP tiles past 64 channels spill on sm_90 in NCHW (255 registers, 348-1616
        # B at 64/128/64 and 32/128/64): float32 keeps those channels on the C loop, whose
        # 16-warp tiles hold Cout 256-512 in 105 registers.
        shapes = [sh for sh in shapes if not (sh[5] and sh[1] > 64)]
    else:
        # 16 warps spread a 32x32 tile to 2 elements per thread: 32-bit loads in bf16/fp16
        shapes = [sh for sh in shapes if sh[0] * sh[1] >= 4 * 32 * sh[3]]
    return [
        triton.Config(
            {"BLOCK_P": p, "BLOCK_C": c, "BLOCK_CO": co, "CO_LOOP": loop, "CO_STAGES": st},
            num_warps=w,
            num_stages=1,
            maxnreg=cap[0] if cap else None,
        )
        for p, c, co, w, st, loop, *cap in shapes
    ]


def _tile_sizes(named_args: dict) -> dict[str, int]:
    """What bounds each tile: output pixels, input and output channels."""
    return {"BLOCK_P": named_args["P"], "BLOCK_C": named_args["C"], "BLOCK_CO": named_args["COUT"]}


def dw_recompute(cfg: triton.Config, c: int, cout: int) -> int:
    """How many times a launch with ``cfg`` computes each depthwise output: 1 for CO_LOOP (which
    needs BLOCK_C >= C) and for BLOCK_CO >= Cout, else the number of output-channel tiles."""
    if cfg.kwargs.get("CO_LOOP"):
        return 1
    return triton.cdiv(cout, cfg.kwargs["BLOCK_CO"])


def keep_recompute_free(configs: list[triton.Config], named_args: dict) -> list[triton.Config]:
    """Among the configs of the v3 list (those that say CO_LOOP; hand-made configs without it
    are judged on size only): CO_LOOP ones only where BLOCK_C >= C (a correctness condition),
    then only recompute-free ones when there are any (Cout > 512 with C > 256 has none: there
    the C-loop configs recompute the depthwise once per output-channel tile). Under the
    interpreter, the first one left."""
    c, cout = named_args["C"], named_args["COUT"]
    v3 = [cfg for cfg in configs if "CO_LOOP" in cfg.kwargs]
    if not v3:
        return configs
    ok = [cfg for cfg in v3 if not cfg.kwargs["CO_LOOP"] or cfg.kwargs["BLOCK_C"] >= c]
    free = [cfg for cfg in ok if dw_recompute(cfg, c, cout) == 1]
    kept = free or ok
    return kept[:1] if _runtime.INTERPRET else kept


# The autotune key: every launch argument that changes the best config (stride_xc: the layout).
# The pixel count enters bucketed to a power of two: a new batch size (a ragged last batch)
# re-tunes only when it crosses one (MobileNetV2 re-tuned ~17 times with raw P).
TUNABLE = Tunable(
    _dwsep_kernel,
    dwsep_configs,
    _tile_sizes,
    key=("P_BUCKET", "C", "COUT", "H", "W", "K", "STRIDE", "stride_xc"),
    keep=keep_recompute_free,
)


@functools.cache
def _tuned_kernel():
    """The autotuned kernel, built on first use (no device query at import)."""
    return TUNABLE.autotuned()


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
        raise ValueError(
            f"empty tensors are not accepted: x {tuple(x.shape)}, "
            f"pw_weight {tuple(pw_weight.shape)}"
        )
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

    Args:
        x: (N, C, H, W), contiguous or channels_last (the fast layout), float32, float16 or
            bfloat16; on CUDA (compiled) or, without CUDA, on the CPU (Triton interpreter).
        dw_weight: (C, 1, K, K), K in {3, 5, 7}, x's dtype; packed channel-innermost per call
            unless already packed (`pack_dw_weight`).
        pw_weight: (Cout, C, 1, 1), x's dtype.
        stride: 1 or 2 (depthwise).
        padding: depthwise zero padding; None means K // 2.
        dw_scale, dw_shift: (C,) folded-BN affine after the depthwise, x's dtype or float32.
        activation: "relu", "relu6" or None, after the depthwise affine.
        pw_scale, pw_shift: (Cout,) folded-BN affine after the pointwise.
        pw_activation: "relu", "relu6" or None, after the pointwise affine.

    Returns:
        (N, Cout, Ho, Wo) in x's dtype and memory format; accumulated in float32, the
        depthwise output rounded to x's dtype before the pointwise (as an unfused pipeline
        stores it). Each depthwise output is computed once when C <= 256 or Cout <= 512.

    Raises:
        TypeError / ValueError on a bad shape, dtype, device or option; RuntimeError when an
        input requires grad (inference-only).
    """
    pad = _validate(x, dw_weight, pw_weight, stride, padding, activation, pw_activation)
    tensors = (x, dw_weight, pw_weight, dw_scale, dw_shift, pw_scale, pw_shift)
    if torch.is_grad_enabled() and any(
        isinstance(t, torch.Tensor) and t.requires_grad for t in tensors
    ):
        raise RuntimeError(
            "dwsep_block is inference-only (it has no backward): call it under torch.no_grad() "
            "or torch.inference_mode(), or train with DepthwiseSeparable(backend='torch')"
        )
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
    args, kwargs, grid = launch_args(
        x,
        dw_weight,
        pw_weight,
        out,
        stride=stride,
        pad=pad,
        dw_scale=dw_scale,
        dw_shift=dw_shift,
        activation=activation,
        pw_scale=pw_scale,
        pw_shift=pw_shift,
        pw_activation=pw_activation,
    )
    _tuned_kernel()[grid](*args, **kwargs)
    return out


def pack_dw_weight(dw_weight: torch.Tensor) -> torch.Tensor:
    """dw_weight (C, 1, K, K) as a view whose channel axis has unit stride (one copy), so the
    kernel loads each tap's BLOCK_C weights as one vector instead of BLOCK_C scalars with
    stride K*K (72 LDG.E.U16 per program for bf16 3x3 at BLOCK_C 32, measured in the sm_90 SASS).
    dwsep_block packs a weight that is not yet packed on every call; callers that reuse a weight
    (models.blocks, models.mobilenet) pack it once."""
    if dw_weight.stride(0) == 1:
        return dw_weight
    return dw_weight.permute(1, 2, 3, 0).contiguous().permute(3, 0, 1, 2)


def _align(*strides: int) -> int:
    """The largest power of two up to 16 dividing every stride: each pixel's offset is a
    multiple of it, which lets the compiler emit vector loads and stores."""
    align = 16
    while align > 1 and any(s % align for s in strides):
        align //= 2
    return align


def launch_args(
    x: torch.Tensor,
    dw_weight: torch.Tensor,
    pw_weight: torch.Tensor,
    out: torch.Tensor,
    *,
    stride: int,
    pad: int,
    dw_scale: torch.Tensor | None,
    dw_shift: torch.Tensor | None,
    activation: str | None,
    pw_scale: torch.Tensor | None,
    pw_shift: torch.Tensor | None,
    pw_activation: str | None,
) -> tuple[tuple, dict, Callable[[dict], tuple[int, int]]]:
    """(positional args, keyword args, grid) of the kernel launch for checked inputs: what
    dwsep_block launches, and what bench.measuring.inspect compiles for a GPU target."""
    n, c, h, w = x.shape
    cout, (ho, wo), k = pw_weight.shape[0], out.shape[-2:], dw_weight.shape[-1]
    dw_weight = pack_dw_weight(dw_weight)
    pw2d = pw_weight.reshape(cout, c)  # a view for contiguous weights
    dot_precision = "ieee"
    if x.dtype == torch.float32 and torch.backends.cudnn.allow_tf32 and not _runtime.INTERPRET:
        dot_precision = "tf32"  # the same rounding cuDNN applies to the fp32 baselines
    # NCHW: 2-D pixel tiles so the contiguous W axis is provable; channels_last: flat pixels.
    nhwc = x.stride(1) == 1 and c > 1
    tile_w = 0 if nhwc else min(triton.next_power_of_2(wo), 32)
    tiles_w = 1 if nhwc else triton.cdiv(wo, tile_w)
    index64 = max(x.numel(), out.numel()) >= 2**31

    def grid(meta: dict) -> tuple[int, int]:
        if nhwc:
            pixel_programs = triton.cdiv(n * ho * wo, meta["BLOCK_P"])
        else:  # every config has BLOCK_P >= 32 >= tile_w
            pixel_programs = n * triton.cdiv(ho, meta["BLOCK_P"] // tile_w) * tiles_w
        co_programs = 1 if meta.get("CO_LOOP") else triton.cdiv(cout, meta["BLOCK_CO"])
        return (pixel_programs, co_programs)

    def ptr(t: torch.Tensor | None) -> torch.Tensor:
        return x if t is None else t.contiguous()  # unused pointer when the flag is off

    args = (
        x, dw_weight, pw2d, ptr(dw_scale), ptr(dw_shift), ptr(pw_scale), ptr(pw_shift), out,
        n * ho * wo, triton.next_power_of_2(n * ho * wo), c, h, w, cout, ho, wo, tiles_w,
        *x.stride(), dw_weight.stride(0), dw_weight.stride(2), dw_weight.stride(3),
        *pw2d.stride(), *out.stride(),
    )  # fmt: skip
    kwargs = dict(
        K=k, STRIDE=stride, PAD=pad,
        HAS_DW_SCALE=dw_scale is not None, HAS_DW_SHIFT=dw_shift is not None,
        DW_ACT=_ACT_CODE[activation],
        HAS_PW_SCALE=pw_scale is not None, HAS_PW_SHIFT=pw_shift is not None,
        PW_ACT=_ACT_CODE[pw_activation],
        DOT_PRECISION=dot_precision,
        DOT_IN_FP32=_runtime.INTERPRET and x.dtype == torch.bfloat16,
        TILE_W=tile_w, INDEX64=index64,
        X_ALIGN=_align(x.stride(0), x.stride(2), x.stride(3)) if nhwc else 1,
        O_ALIGN=_align(out.stride(0), out.stride(2), out.stride(3)) if nhwc else 1,
    )  # fmt: skip
    return args, kwargs, grid
