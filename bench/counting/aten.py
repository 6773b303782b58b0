"""What each ATen operator costs by bench.formulas' rules: the fallback for torch functions that
have no formula of their own (bench.counting.functional), and the vocabulary the notes use to
name what fvcore skipped and what FlopCounterMode has no rule for.

An operator is *free* (rule d: 0) when PyTorch tags it pointwise, when it is a view, or when it
only moves or makes data (copies, concatenation, padding, indexing, factories); it is *priced*
when a formula below covers it (products, reductions, softmax, norms, pools, interpolation);
anything else has no formula: the call that ran it is listed as uncounted and the total is
marked partial, never a silent 0.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import torch

from bench import formulas

Parts = dict[str, int]  # formula category -> MACs

# Data movement and creation (rule d: 0) that PyTorch does not tag pointwise or view, and the
# activations it leaves untagged (hardswish, prelu).
MOVEMENT = {
    *("_to_copy", "copy_", "clone", "contiguous", "cat", "stack", "constant_pad_nd", "pad"),
    *("reflection_pad1d", "reflection_pad2d", "reflection_pad3d", "replication_pad1d"),
    *("replication_pad2d", "replication_pad3d", "index", "_unsafe_index", "index_select"),
    *("gather", "scatter", "index_put_", "index_put", "slice_scatter", "select_scatter"),
    *("masked_scatter", "_unsafe_view", "_reshape_alias", "repeat", "roll", "flip", "tril"),
    *("triu", "embedding", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle"),
    *("native_channel_shuffle", "im2col", "upsample_nearest1d", "upsample_nearest2d"),
    *("upsample_nearest3d", "_upsample_nearest_exact1d", "_upsample_nearest_exact2d"),
    *("_upsample_nearest_exact3d", "native_dropout", "dropout", "bernoulli", "bernoulli_"),
    *("fill_", "zero_", "zeros", "zeros_like", "ones", "ones_like", "empty", "empty_like"),
    *("empty_strided", "full", "full_like", "new_empty", "new_empty_strided", "new_zeros"),
    *("new_ones", "new_full", "arange", "linspace", "eye", "scalar_tensor", "lift_fresh_copy"),
    *("_local_scalar_dense", "resize_", "set_", "masked_fill_", "diag_embed", "tensor_split"),
    *("hardswish", "hardswish_", "hardsigmoid_", "prelu", "_prelu_kernel", "glu", "item"),
    *("rand", "randn", "randint", "randperm", "normal_", "uniform_", "expand_copy"),
    *("unsafe_split", "unsafe_split_with_sizes", "unsafe_chunk"),  # nn.LSTM's gate split
    "col2im",  # F.fold: overlapping patches added back in place, adds only (rule d)
}

# Operators with a formula (and the composite names fvcore's traces show, such as
# aten::scaled_dot_product_attention or aten::_convolution_mode), by formula category.
CATEGORY: dict[str, str] = {
    **dict.fromkeys(
        (
            *("mm", "addmm", "bmm", "baddbmm", "mv", "addmv", "dot", "vdot", "addbmm", "matmul"),
            *("linear", "einsum", "bilinear", "_trilinear", "convolution", "_convolution"),
            *("_convolution_mode", "conv1d", "conv2d", "conv3d", "conv_transpose1d"),
            *("conv_transpose2d", "conv_transpose3d", "scaled_dot_product_attention"),
            *("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention"),
            *("_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention"),
            *(
                "_scaled_dot_product_attention_math",
                "_scaled_dot_product_fused_attention_overrideable",
            ),
            *("_flash_attention_forward", "_efficient_attention_forward"),
        ),
        "products",
    ),
    **dict.fromkeys(
        (
            *("batch_norm", "native_batch_norm", "_native_batch_norm_legit"),
            *("_native_batch_norm_legit_no_training", "_batch_norm_impl_index"),
        ),
        "batch_norm",
    ),
    **dict.fromkeys(("group_norm", "native_group_norm"), "group_norm"),
    **dict.fromkeys(("layer_norm", "native_layer_norm"), "layer_norm"),
    "instance_norm": "instance_norm",
    **dict.fromkeys(("rms_norm", "_fused_rms_norm"), "rms_norm"),
    **dict.fromkeys(
        ("softmax", "_softmax", "log_softmax", "_log_softmax", "_safe_softmax"), "softmax"
    ),
    **dict.fromkeys(
        (
            *("max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices"),
            *("max_pool2d_with_indices", "max_pool3d_with_indices", "avg_pool1d", "avg_pool2d"),
            "avg_pool3d",
        ),
        "pool",
    ),
    **dict.fromkeys(
        (
            *("adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d"),
            *("_adaptive_avg_pool2d", "_adaptive_avg_pool3d", "adaptive_max_pool1d"),
            *("adaptive_max_pool2d", "adaptive_max_pool3d"),
        ),
        "adaptive_pool",
    ),
    **dict.fromkeys(
        ("upsample_linear1d", "upsample_bilinear2d", "upsample_trilinear3d", "upsample_bicubic2d"),
        "interpolate",
    ),
    **dict.fromkeys(
        ("linalg_vector_norm", "norm", "frobenius_norm", "var", "std", "var_mean", "std_mean"),
        "reduction",
    ),
    "logsumexp": "reduction",
    # scans read each element once too (y_i = y_(i-1) + x_i)
    **dict.fromkeys(("cumsum", "cumprod", "logcumsumexp", "cummax", "cummin"), "reduction"),
}
_TWO_PASSES = {"var", "std", "var_mean", "std_mean"}


def _packet(name: str):
    return getattr(torch.ops.aten, name, None)


@functools.cache
def category(name: str) -> str | None:
    """'free', a formula category, or None (no formula) for an ATen operator name, with or
    without fvcore's 'aten::' prefix and an overload suffix ('mean.dim')."""
    name = name.removeprefix("aten::").removeprefix("aten.").split(".")[0]
    if name in CATEGORY:
        return CATEGORY[name]
    if name in MOVEMENT:
        return "free"
    packet = _packet(name)
    if packet is None:
        return None
    overloads = [getattr(packet, o) for o in packet.overloads()]
    if any(torch.Tag.pointwise in op.tags or op.is_view for op in overloads):
        return "free"
    if any(torch.Tag.reduction in op.tags for op in overloads):
        return "reduction"
    return None


def is_free(op: torch._ops.OpOverload) -> bool:
    return category(op._overloadpacket.__name__) == "free"


def name(op: torch._ops.OpOverload) -> str:
    return f"aten.{op._overloadpacket.__name__}"


def _shape(x: object) -> tuple[int, ...]:
    if isinstance(x, (tuple, list)) and x and isinstance(x[0], torch.Tensor):
        x = x[0]
    return tuple(x.shape) if isinstance(x, torch.Tensor) else ()


def _numel(shape: Sequence[int]) -> int:
    return math.prod(shape)


def _arg(args: tuple, kwargs: dict, i: int, key: str, default: object = None) -> object:
    return args[i] if len(args) > i else kwargs.get(key, default)


def _ints(value: object, rank: int) -> tuple[int, ...]:
    values = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    return values * rank if len(values) == 1 else values


def _matmul(args: tuple, kwargs: dict, out: object) -> Parts:
    a, b = _shape(args[-2]), _shape(args[-1])  # addmm/baddbmm/addmv: (input, a, b)
    return {"products": formulas.matmul(a, b).macs}


def _convolution(args: tuple, kwargs: dict, out: object) -> Parts:
    """aten.convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding,
    groups): the same formulas as the modules'."""
    x, w, o = _shape(args[0]), _shape(args[1]), _shape(out)
    transposed, groups = bool(args[6]), int(args[8])
    rank = len(w) - 2
    if transposed:
        batch = _numel(x) // (w[0] * _numel(x[-rank:]))
        cost = formulas.conv_transpose(w[0], w[1] * groups, w[2:], x[-rank:], groups=groups)
    else:
        batch = _numel(o) // (w[0] * _numel(o[-rank:]))
        cost = formulas.conv_nd(w[1] * groups, w[0], w[2:], o[-rank:], groups=groups)
    return {"products": batch * cost.macs}


def _attention(args: tuple, kwargs: dict, out: object) -> Parts:
    q, k, v = (_shape(t) for t in args[:3])
    total = formulas.attention(_numel(q[:-2]), q[-2], k[-2], q[-1], v[-1]).macs
    softmax = _numel(q[:-1]) * k[-2]
    return {"products": total - softmax, "softmax": softmax}


def _per_input(kind: str, per: int) -> Callable[..., Parts]:
    return lambda args, kwargs, out: {kind: per * _numel(_shape(args[0]))}


def _batch_norm(args: tuple, kwargs: dict, out: object) -> Parts:
    """native_batch_norm / _native_batch_norm_legit: (input, weight, bias, running_mean,
    running_var, training, ...); .no_stats and training use the batch's statistics."""
    training = next((a for a in args[3:7] if isinstance(a, bool)), False)
    elements = _numel(_shape(args[0]))
    return {"batch_norm": 3 * elements if training else elements}


def _pool(rank: int) -> Callable[..., Parts]:
    """max_pool*_with_indices / avg_pool*: (input, kernel_size, ...), out (values, indices)."""
    return lambda args, kwargs, out: {
        "pool": formulas.pool(_numel(_shape(out)), _ints(args[1], rank)).macs
    }


def _adaptive(rank: int) -> Callable[..., Parts]:
    """_adaptive_avg_pool* / adaptive_max_pool*: (input, output_size)."""

    def rule(args: tuple, kwargs: dict, out: object) -> Parts:
        x, o = _shape(args[0]), _shape(out)
        planes = _numel(o[:-rank])
        return {"adaptive_pool": formulas.adaptive_pool(planes, x[-rank:], o[-rank:]).macs}

    return rule


def _rank(name: str) -> int:
    return next(int(c) for c in name if c in "123")


def _interpolate(mode: str, axes: int) -> Callable[..., Parts]:
    return lambda args, kwargs, out: {
        "interpolate": formulas.interpolate(_numel(_shape(out)), mode, axes).macs
    }


def _reduction(passes: int) -> Callable[..., Parts]:
    return lambda args, kwargs, out: {
        "reduction": formulas.reduction(_numel(_shape(args[0])), passes=passes).macs
    }


_FORMULAS: dict[str, Callable[[tuple, dict, object], Parts]] = {
    **dict.fromkeys(("mm", "addmm", "bmm", "baddbmm", "mv", "addmv", "dot", "vdot"), _matmul),
    **dict.fromkeys(("convolution", "_convolution"), _convolution),
    **dict.fromkeys(
        (
            "_scaled_dot_product_flash_attention_for_cpu",
            "_scaled_dot_product_flash_attention",
            "_scaled_dot_product_efficient_attention",
            "_scaled_dot_product_cudnn_attention",
            "_scaled_dot_product_attention_math",
            "_scaled_dot_product_fused_attention_overrideable",
        ),
        _attention,
    ),
    **dict.fromkeys(("_softmax", "_log_softmax", "_safe_softmax"), _per_input("softmax", 1)),
    **dict.fromkeys(
        ("native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training"),
        _batch_norm,
    ),
    "native_group_norm": _per_input("group_norm", 3),
    "native_layer_norm": _per_input("layer_norm", 3),
    "_fused_rms_norm": _per_input("rms_norm", 2),
    **{
        n: _pool(_rank(n))
        for n in (
            *("max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d_with_indices"),
            *("max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d"),
        )
    },
    **{
        n: _adaptive(_rank(n))
        for n in (
            *("adaptive_avg_pool1d", "_adaptive_avg_pool2d", "_adaptive_avg_pool3d"),
            *("adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d"),
        )
    },
    "upsample_linear1d": _interpolate("linear", 1),
    "upsample_bilinear2d": _interpolate("bilinear", 2),
    "upsample_trilinear3d": _interpolate("trilinear", 3),
    "upsample_bicubic2d": _interpolate("bicubic", 2),
}


def cost(op: torch._ops.OpOverload, args: tuple, kwargs: dict, out: object) -> Parts | None:
    """Formula MACs of one ATen call by category ({} when free); None: no formula fits."""
    packet = op._overloadpacket.__name__
    rule = _FORMULAS.get(packet)
    if rule is None:
        kind = category(packet)
        if kind == "free":
            return {}
        if kind != "reduction":
            return None
        rule = _reduction(2 if packet in _TWO_PASSES else 1)
    try:
        return rule(args, kwargs or {}, out)
    except (IndexError, TypeError, ValueError, AttributeError):
        return None
