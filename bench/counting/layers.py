"""Which formula counts which layer: leaf nn.Module types and the functional ops a module's own
forward calls (residual adds, attention matmuls), each mapped onto bench.formulas.

A leaf type without a rule returns None (the row is marked "no formula", the total partial);
so does nothing here raise for a layer it does not know.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from bench import formulas
from models.lenet5 import EuclideanRBF, ScaledTanh, SparseConv2d, Subsampling


@dataclass
class LayerCount:
    macs: int
    connections: int


def _numel(shape: Sequence[int]) -> int:
    return math.prod(shape)


def _spatial(shape: Sequence[int]) -> int:
    return shape[-1] * shape[-2] if len(shape) >= 4 else 1


def _conv(m: nn.Conv2d, out: Sequence[int]) -> LayerCount:
    cost = formulas.conv2d(
        m.in_channels,
        m.out_channels,
        m.kernel_size,
        (out[-2], out[-1]),
        groups=m.groups,
        bias=m.bias is not None,
    )
    fan_in = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
    batch = _numel(out) // (m.out_channels * _spatial(out))
    return LayerCount(cost.macs * batch, _numel(out) * (fan_in + (m.bias is not None)))


def _linear(m: nn.Linear, out: Sequence[int]) -> LayerCount:
    tokens = _numel(out) // m.out_features
    cost = formulas.linear_tokens(tokens, m.in_features, m.out_features, bias=m.bias is not None)
    return LayerCount(cost.macs, _numel(out) * (m.in_features + (m.bias is not None)))


def _sparse_conv(m: SparseConv2d, out: Sequence[int]) -> LayerCount:
    kk = m.kernel * m.kernel
    fan_ins = [len(ins) * kk for ins in m.table]
    hw, batch = _spatial(out), out[0]
    return LayerCount(sum(fan_ins) * hw * batch, hw * batch * sum(f + 1 for f in fan_ins))


def _subsampling(m: Subsampling, out: Sequence[int]) -> LayerCount:
    kk = m.kernel * m.kernel
    return LayerCount(_numel(out) * kk, _numel(out) * (kk + 1))


def _pool(m: nn.MaxPool2d | nn.AvgPool2d, out: Sequence[int]) -> LayerCount:
    cost = formulas.pool2d(_numel(out), m.kernel_size)
    return LayerCount(cost.macs, cost.macs)


def _adaptive_pool(m: nn.Module, out: Sequence[int], inp: Sequence[int]) -> LayerCount:
    planes = _numel(out) // _spatial(out)
    return LayerCount(formulas.adaptive_pool2d(planes, tuple(inp[-2:]), tuple(out[-2:])).macs, 0)


def _batch_norm(m: nn.modules.batchnorm._BatchNorm, out: Sequence[int]) -> LayerCount:
    cost = formulas.batch_norm(_numel(out), m.num_features, affine=m.affine)
    return LayerCount(cost.macs, _numel(out) * 2 if m.affine else 0)


def _layer_norm(m: nn.LayerNorm, out: Sequence[int]) -> LayerCount:
    affine = m.elementwise_affine
    cost = formulas.layer_norm(
        _numel(out), _numel(m.normalized_shape), affine=affine, bias=affine and m.bias is not None
    )
    return LayerCount(cost.macs, 0)


def _rbf(m: EuclideanRBF, out: Sequence[int]) -> LayerCount:
    classes, dim = m.centers.shape
    return LayerCount(out[0] * classes * dim, classes * dim)


# Elementwise maps and pure data movement: formulas.elementwise (0 MACs). torchvision's own
# data-movement modules (Permute, StochasticDepth, MaxViT's window partitions, SwapAxes) are
# matched by name so that this module need not import every torchvision model file.
ACTIVATIONS = (
    nn.ReLU,
    nn.ReLU6,
    nn.GELU,
    nn.SiLU,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Sigmoid,
    nn.Tanh,
    nn.LeakyReLU,
    nn.ELU,
    nn.Mish,
    nn.Softplus,
    ScaledTanh,
)
ELEMENTWISE = (
    *ACTIVATIONS,
    nn.Dropout,
    nn.Dropout2d,
    nn.Flatten,
    nn.Identity,
    nn.Sequential,
    nn.ModuleList,
)
MOVEMENT_NAMES = {"Permute", "StochasticDepth", "WindowPartition", "WindowDepartition", "SwapAxes"}

# (type, rule) in match order: subclasses (LayerNorm2d, NonDynamicallyQuantizableLinear) match
# their base class's rule.
_RULES: list[tuple[type, Callable[..., LayerCount]]] = [
    (SparseConv2d, _sparse_conv),
    (Subsampling, _subsampling),
    (EuclideanRBF, _rbf),
    (nn.Conv2d, _conv),
    (nn.Linear, _linear),
    ((nn.MaxPool2d, nn.AvgPool2d), _pool),
    (nn.modules.batchnorm._BatchNorm, _batch_norm),
    (nn.LayerNorm, _layer_norm),
]
_ADAPTIVE = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def count_leaf(m: nn.Module, out: Sequence[int], inp: Sequence[int] | None) -> LayerCount | None:
    """Formula MACs and paper connections of one call of a leaf module; None: no formula."""
    for kind, rule in _RULES:
        if isinstance(m, kind):
            return rule(m, out)
    if isinstance(m, _ADAPTIVE) and inp is not None and len(inp) >= 3:
        return _adaptive_pool(m, out, inp)
    if isinstance(m, ELEMENTWISE) or type(m).__name__ in MOVEMENT_NAMES:
        return LayerCount(formulas.elementwise(_numel(out)).macs, 0)
    return None


# ---- functional ops: a formula per torch function a module's forward may call ---------------


def _shape(x: object) -> tuple[int, ...]:
    return tuple(x.shape) if isinstance(x, torch.Tensor) else ()


def _arg(args: tuple, kwargs: dict, i: int, name: str, default: object = None) -> object:
    return args[i] if len(args) > i else kwargs.get(name, default)


def _f_linear(args: tuple, kwargs: dict, out: object) -> int:
    weight = _shape(_arg(args, kwargs, 1, "weight"))
    tokens = _numel(_shape(args[0])[:-1])
    return formulas.linear_tokens(tokens, weight[1], weight[0]).macs


def _f_matmul(args: tuple, kwargs: dict, out: object) -> int:
    a, b = _shape(args[0]), _shape(_arg(args, kwargs, 1, "other", _arg(args, kwargs, 1, "mat2")))
    return formulas.matmul(a, b).macs


def _f_addmm(args: tuple, kwargs: dict, out: object) -> int:
    return formulas.matmul(_shape(args[1]), _shape(args[2])).macs


def _f_conv(args: tuple, kwargs: dict, out: object) -> int:
    w, o = _shape(_arg(args, kwargs, 1, "weight")), _shape(out)
    groups = int(_arg(args, kwargs, 6, "groups", 1))
    return (
        o[0] * formulas.conv2d(w[1] * groups, w[0], (w[2], w[3]), (o[2], o[3]), groups=groups).macs
    )


def _f_sdpa(args: tuple, kwargs: dict, out: object) -> int:
    q, k, v = (_shape(t) for t in args[:3])
    return formulas.attention(_numel(q[:-2]), q[-2], k[-2], q[-1], v[-1]).macs


def _mha(args: tuple, batch_first: bool) -> int:
    """(query, key, value, embed_dim, num_heads, ...): the signature both MHA entry points share;
    (N, L, E) in the fast path torch._native_multi_head_attention, (L, N, E) otherwise."""
    q, k = _shape(args[0]), _shape(args[1])
    batch, q_len, kv_len = (q[0], q[1], k[1]) if batch_first else (q[1], q[0], k[0])
    return formulas.multi_head_attention(
        batch, q_len, kv_len, int(args[3]), int(args[4]), kdim=k[-1], vdim=_shape(args[2])[-1]
    ).macs


def _f_mha(args: tuple, kwargs: dict, out: object) -> int:
    return _mha(args, batch_first=False)


def _f_mha_native(args: tuple, kwargs: dict, out: object) -> int:
    return _mha(args, batch_first=True)


def _f_einsum(args: tuple, kwargs: dict, out: object) -> int:
    operands = args[1:] if len(args) > 2 else tuple(args[1])
    a, b = (_shape(t) for t in operands)
    return formulas.einsum(args[0], a, b).macs


def _f_pool(args: tuple, kwargs: dict, out: object) -> int:
    return formulas.pool2d(_numel(_shape(out)), _arg(args, kwargs, 1, "kernel_size")).macs


def _f_adaptive(args: tuple, kwargs: dict, out: object) -> int:
    i, o = _shape(args[0]), _shape(out)
    return formulas.adaptive_pool2d(_numel(o[:-2]), i[-2:], o[-2:]).macs


def _f_layer_norm(args: tuple, kwargs: dict, out: object) -> int:
    return formulas.layer_norm(_numel(_shape(args[0])), 1).macs


def _f_batch_norm(args: tuple, kwargs: dict, out: object) -> int:
    x = _shape(args[0])
    return formulas.batch_norm(_numel(x), x[1] if len(x) > 1 else 1).macs


def _f_per_element(formula: Callable[[int], formulas.Cost]) -> Callable[..., int]:
    return lambda args, kwargs, out: formula(_numel(_shape(args[0]))).macs


FUNCTIONAL: dict[object, Callable[[tuple, dict, object], int]] = {
    F.linear: _f_linear,
    torch.matmul: _f_matmul,
    torch.Tensor.matmul: _f_matmul,
    torch.Tensor.__matmul__: _f_matmul,
    torch.mm: _f_matmul,
    torch.Tensor.mm: _f_matmul,
    torch.bmm: _f_matmul,
    torch.Tensor.bmm: _f_matmul,
    torch.addmm: _f_addmm,
    torch.baddbmm: _f_addmm,
    torch.einsum: _f_einsum,
    F.conv2d: _f_conv,
    F.scaled_dot_product_attention: _f_sdpa,
    F.multi_head_attention_forward: _f_mha,
    torch._native_multi_head_attention: _f_mha_native,
    F.max_pool2d: _f_pool,
    F.avg_pool2d: _f_pool,
    F.adaptive_avg_pool2d: _f_adaptive,
    F.adaptive_max_pool2d: _f_adaptive,
    F.layer_norm: _f_layer_norm,
    F.batch_norm: _f_batch_norm,
    F.softmax: _f_per_element(formulas.softmax),
    torch.softmax: _f_per_element(formulas.softmax),
    torch.Tensor.softmax: _f_per_element(formulas.softmax),
    F.normalize: _f_per_element(formulas.l2_normalize),
}


# Functional ops whose formula counts reads (rules b and c), not products: the part of an own-ops
# row that the product-only counters (FlopCounterMode, torchvision's documented _ops) leave out.
READS = {
    F.max_pool2d,
    F.avg_pool2d,
    F.adaptive_avg_pool2d,
    F.adaptive_max_pool2d,
    F.layer_norm,
    F.batch_norm,
    F.softmax,
    torch.softmax,
    torch.Tensor.softmax,
    F.normalize,
}


def op_name(func: object) -> str:
    """'F.linear', 'torch.matmul', 'Tensor.add' ...: how a note names a functional op."""
    name = getattr(func, "__name__", repr(func))
    owner = getattr(func, "__objclass__", None) or getattr(func, "__self__", None)
    if owner is torch.Tensor or getattr(func, "__qualname__", "").startswith("Tensor."):
        return f"Tensor.{name}"
    module = getattr(func, "__module__", "") or ""
    functional = module.startswith("torch.nn.functional") or module == "torch._C._nn"
    return f"F.{name}" if functional else f"torch.{name}"


def _softmax_reads(func: object, args: tuple) -> int:
    """The softmax part (rule b) of an attention call's formula: one read per score."""
    if func is F.scaled_dot_product_attention:
        q, k = _shape(args[0]), _shape(args[1])
        return _numel(q[:-1]) * k[-2]
    q, k, heads = _shape(args[0]), _shape(args[1]), int(args[4])
    batch_first = func is torch._native_multi_head_attention
    batch, q_len, kv_len = (q[0], q[1], k[1]) if batch_first else (q[1], q[0], k[0])
    return formulas.softmax(batch * heads * q_len * kv_len).macs


_ATTENTION = {
    F.scaled_dot_product_attention,
    F.multi_head_attention_forward,
    torch._native_multi_head_attention,
}


def count_functional(
    func: object, args: tuple, kwargs: dict, out: object
) -> tuple[int, int] | None:
    """(formula MACs, the part of them that counts reads) of one functional call, (0, 0) for
    maps and data movement; None when a formula exists but the arguments do not fit it."""
    rule = FUNCTIONAL.get(func)
    if rule is None:
        return 0, 0
    try:
        macs = int(rule(args, kwargs or {}, out))
        reads = macs if func in READS else _softmax_reads(func, args) if func in _ATTENTION else 0
    except (IndexError, TypeError, ValueError, AttributeError):
        return None
    return macs, reads


def has_rule(m: nn.Module) -> bool:
    """Whether count_leaf has a formula for this module's type."""
    kinds = tuple(kind for kind, _ in _RULES) + _ADAPTIVE + ELEMENTWISE
    return isinstance(m, kinds) or type(m).__name__ in MOVEMENT_NAMES
