"""A formula per torch function a module's forward may call outside its children (residual
adds, attention matmuls, F.conv_transpose2d on its own weight, x.mean((2, 3)) in a squeeze-
excite block), each mapped onto bench.formulas by category: "products" (rule a, what
FlopCounterMode and torchvision's _ops count) or the reads of rules b and c ("softmax",
"batch_norm", "reduction" ...).

A function not listed here is priced by the ATen operators it ran (bench.counting.aten).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch.nn import functional as F

from bench import formulas

Parts = dict[str, int]  # formula category -> MACs
Rule = Callable[[tuple, dict, object], Parts]


def _numel(shape: Sequence[int]) -> int:
    return math.prod(shape)


def _shape(x: object) -> tuple[int, ...]:
    if isinstance(x, (tuple, list)) and x and isinstance(x[0], torch.Tensor):
        x = x[0]  # (values, indices) of a pool with return_indices
    return tuple(x.shape) if isinstance(x, torch.Tensor) else ()


def _arg(args: tuple, kwargs: dict, i: int, name: str, default: object = None) -> object:
    return args[i] if len(args) > i else kwargs.get(name, default)


def _ints(value: object, rank: int) -> tuple[int, ...]:
    values = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    return tuple(int(v) for v in (values * rank if len(values) == 1 else values))


def _linear(args: tuple, kwargs: dict, out: object) -> Parts:
    weight = _shape(_arg(args, kwargs, 1, "weight"))
    tokens = _numel(_shape(args[0])[:-1])
    return {"products": formulas.linear_tokens(tokens, weight[1], weight[0]).macs}


def _matmul(args: tuple, kwargs: dict, out: object) -> Parts:
    a, b = _shape(args[0]), _shape(_arg(args, kwargs, 1, "other", _arg(args, kwargs, 1, "mat2")))
    return {"products": formulas.matmul(a, b).macs}


def _addmm(args: tuple, kwargs: dict, out: object) -> Parts:
    return {"products": formulas.matmul(_shape(args[1]), _shape(args[2])).macs}


def _conv(args: tuple, kwargs: dict, out: object) -> Parts:
    """F.conv1d/2d/3d(input, weight, bias, stride, padding, dilation, groups): batched or not."""
    w, o = _shape(_arg(args, kwargs, 1, "weight")), _shape(out)
    groups = int(_arg(args, kwargs, 6, "groups", 1))
    rank = len(w) - 2
    batch = _numel(o) // (w[0] * _numel(o[-rank:]))
    cost = formulas.conv_nd(w[1] * groups, w[0], w[2:], o[-rank:], groups=groups)
    return {"products": batch * cost.macs}


def _conv_transpose(args: tuple, kwargs: dict, out: object) -> Parts:
    """F.conv_transpose1d/2d/3d(input, weight, bias, stride, padding, output_padding, groups,
    dilation): weight is (in_ch, out_ch / groups, *kernel)."""
    x, w = _shape(args[0]), _shape(_arg(args, kwargs, 1, "weight"))
    groups = int(_arg(args, kwargs, 6, "groups", 1))
    rank = len(w) - 2
    batch = _numel(x) // (w[0] * _numel(x[-rank:]))
    cost = formulas.conv_transpose(w[0], w[1] * groups, w[2:], x[-rank:], groups=groups)
    return {"products": batch * cost.macs}


def _sdpa(args: tuple, kwargs: dict, out: object) -> Parts:
    q, k, v = (_shape(t) for t in args[:3])
    total = formulas.attention(_numel(q[:-2]), q[-2], k[-2], q[-1], v[-1]).macs
    softmax = _numel(q[:-1]) * k[-2]
    return {"products": total - softmax, "softmax": softmax}


def _mha(args: tuple, batch_first: bool) -> Parts:
    """(query, key, value, embed_dim, num_heads, ...): the signature both MHA entry points share;
    (N, L, E) in the fast path torch._native_multi_head_attention, (L, N, E) otherwise."""
    q, k = _shape(args[0]), _shape(args[1])
    batch, q_len, kv_len = (q[0], q[1], k[1]) if batch_first else (q[1], q[0], k[0])
    heads = int(args[4])
    total = formulas.multi_head_attention(
        batch, q_len, kv_len, int(args[3]), heads, kdim=k[-1], vdim=_shape(args[2])[-1]
    ).macs
    softmax = formulas.softmax(batch * heads * q_len * kv_len).macs
    return {"products": total - softmax, "softmax": softmax}


def _einsum(args: tuple, kwargs: dict, out: object) -> Parts:
    operands = args[1:] if len(args) > 2 else tuple(args[1])
    a, b = (_shape(t) for t in operands)
    return {"products": formulas.einsum(args[0], a, b).macs}


def _pool(rank: int) -> Rule:
    def rule(args: tuple, kwargs: dict, out: object) -> Parts:
        kernel = _ints(_arg(args, kwargs, 1, "kernel_size"), rank)
        return {"pool": formulas.pool(_numel(_shape(out)), kernel).macs}

    return rule


def _adaptive(rank: int) -> Rule:
    def rule(args: tuple, kwargs: dict, out: object) -> Parts:
        i, o = _shape(args[0]), _shape(out)
        cost = formulas.adaptive_pool(_numel(o[:-rank]), i[-rank:], o[-rank:])
        return {"adaptive_pool": cost.macs}

    return rule


def _layer_norm(args: tuple, kwargs: dict, out: object) -> Parts:
    return {"layer_norm": formulas.layer_norm(_numel(_shape(args[0])), 1).macs}


def _group_norm(args: tuple, kwargs: dict, out: object) -> Parts:
    x = _shape(args[0])
    return {"group_norm": formulas.group_norm(_numel(x), x[1] if len(x) > 1 else 1).macs}


def _instance_norm(args: tuple, kwargs: dict, out: object) -> Parts:
    """F.instance_norm(input, running_mean, running_var, weight, bias, use_input_stats, ...)."""
    x = _shape(args[0])
    stats = bool(_arg(args, kwargs, 5, "use_input_stats", True))
    cost = formulas.instance_norm(_numel(x), x[1] if len(x) > 1 else 1, input_stats=stats)
    return {"instance_norm": cost.macs}


def _batch_norm(args: tuple, kwargs: dict, out: object) -> Parts:
    """F.batch_norm(input, running_mean, running_var, weight, bias, training, ...): in training,
    or without running statistics, it normalises by the batch's own (3 per element)."""
    x = _shape(args[0])
    training = bool(_arg(args, kwargs, 5, "training", False))
    stats = training or _arg(args, kwargs, 1, "running_mean") is None
    cost = formulas.batch_norm(_numel(x), x[1] if len(x) > 1 else 1, batch_stats=stats)
    return {"batch_norm": cost.macs}


def _rms_norm(args: tuple, kwargs: dict, out: object) -> Parts:
    return {"rms_norm": formulas.rms_norm(_numel(_shape(args[0])), 1).macs}


def _per_element(kind: str, formula: Callable[[int], formulas.Cost]) -> Rule:
    return lambda args, kwargs, out: {kind: formula(_numel(_shape(args[0]))).macs}


def _reduction(passes: int) -> Rule:
    return lambda args, kwargs, out: {
        "reduction": formulas.reduction(_numel(_shape(args[0])), passes=passes).macs
    }


_softmax = _per_element("softmax", formulas.softmax)

FUNCTIONAL: dict[object, Rule] = {
    F.linear: _linear,
    torch.matmul: _matmul,
    torch.Tensor.matmul: _matmul,
    torch.Tensor.__matmul__: _matmul,
    torch.mm: _matmul,
    torch.Tensor.mm: _matmul,
    torch.bmm: _matmul,
    torch.Tensor.bmm: _matmul,
    torch.addmm: _addmm,
    torch.baddbmm: _addmm,
    torch.einsum: _einsum,
    F.conv1d: _conv,
    F.conv2d: _conv,
    F.conv3d: _conv,
    F.conv_transpose1d: _conv_transpose,
    F.conv_transpose2d: _conv_transpose,
    F.conv_transpose3d: _conv_transpose,
    F.scaled_dot_product_attention: _sdpa,
    F.multi_head_attention_forward: lambda args, kwargs, out: _mha(args, batch_first=False),
    torch._native_multi_head_attention: lambda args, kwargs, out: _mha(args, batch_first=True),
    F.max_pool1d: _pool(1),
    F.max_pool2d: _pool(2),
    F.max_pool3d: _pool(3),
    F.avg_pool1d: _pool(1),
    F.avg_pool2d: _pool(2),
    F.avg_pool3d: _pool(3),
    F.adaptive_avg_pool1d: _adaptive(1),
    F.adaptive_avg_pool2d: _adaptive(2),
    F.adaptive_avg_pool3d: _adaptive(3),
    F.adaptive_max_pool1d: _adaptive(1),
    F.adaptive_max_pool2d: _adaptive(2),
    F.adaptive_max_pool3d: _adaptive(3),
    F.layer_norm: _layer_norm,
    F.group_norm: _group_norm,
    F.instance_norm: _instance_norm,
    F.batch_norm: _batch_norm,
    F.rms_norm: _rms_norm,
    F.softmax: _softmax,
    torch.softmax: _softmax,
    torch.Tensor.softmax: _softmax,
    F.normalize: _per_element("normalize", formulas.l2_normalize),
    torch.mean: _reduction(1),
    torch.Tensor.mean: _reduction(1),
    torch.sum: _reduction(1),
    torch.Tensor.sum: _reduction(1),
    torch.amax: _reduction(1),
    torch.Tensor.amax: _reduction(1),
    torch.amin: _reduction(1),
    torch.Tensor.amin: _reduction(1),
    torch.var: _reduction(2),
    torch.Tensor.var: _reduction(2),
    torch.std: _reduction(2),
    torch.Tensor.std: _reduction(2),
}


def op_name(func: object) -> str:
    """'F.linear', 'torch.matmul', 'Tensor.add' ...: how a note names a functional op (F.conv2d
    is torch.conv2d itself: the F name wins)."""
    name = getattr(func, "__name__", repr(func))
    owner = getattr(func, "__objclass__", None)
    qualname = getattr(func, "__qualname__", "")
    if owner in (torch.Tensor, torch._C.TensorBase) or qualname.startswith(
        ("Tensor.", "TensorBase.")
    ):
        return f"Tensor.{name}"
    if getattr(F, name, None) is func:
        return f"F.{name}"
    return f"torch.{name}"


def count(func: object, args: tuple, kwargs: dict, out: object) -> Parts | None:
    """Formula MACs of one call of a listed function by category; None when its arguments do
    not fit the formula (the call is then uncounted)."""
    try:
        return FUNCTIONAL[func](args, kwargs or {}, out)
    except (IndexError, TypeError, ValueError, AttributeError, ZeroDivisionError):
        return None
