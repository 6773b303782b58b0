"""Which formula counts which leaf nn.Module, mapped onto bench.formulas: convolutions (1-3 d,
transposed), linear, pooling, the norms, activations and data movement, and the 1998 paper's
layers.

A leaf is *covered* when its type has a rule here and runs that type's own forward; its row is
the rule's count. Any other leaf (a type without a rule, or a subclass that overrides forward,
such as timm's Conv2dSame) is counted from the functional ops it ran (bench.counting.probe).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvTransposeNd
from torch.nn.modules.instancenorm import _InstanceNorm

from bench import formulas
from models.lenet5 import EuclideanRBF, ScaledTanh, SparseConv2d, Subsampling

Shape = Sequence[int]


@dataclass
class LayerCount:
    """One call's formula MACs, its formula category (the notes compare counters by it) and the
    1998 paper's connections."""

    macs: int
    connections: int
    kind: str = "products"


def _numel(shape: Shape) -> int:
    return math.prod(shape)


def _ints(value: object, rank: int) -> tuple[int, ...]:
    values = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    return tuple(int(v) for v in (values * rank if len(values) == 1 else values))


def _conv(m: nn.Conv1d | nn.Conv2d | nn.Conv3d, out: Shape, inp: Shape | None) -> LayerCount:
    rank = len(m.kernel_size)
    spatial = tuple(out[-rank:])
    cost = formulas.conv_nd(
        m.in_channels, m.out_channels, m.kernel_size, spatial, groups=m.groups, bias=False
    )
    batch = _numel(out) // (m.out_channels * _numel(spatial))
    fan_in = m.in_channels // m.groups * _numel(m.kernel_size)
    return LayerCount(cost.macs * batch, _numel(out) * (fan_in + (m.bias is not None)))


def _conv_transpose(m: _ConvTransposeNd, out: Shape, inp: Shape | None) -> LayerCount | None:
    """Products from the input size (formulas.conv_transpose); connections from where each
    product lands (padding crops the ones outside the output)."""
    if inp is None:
        return None
    rank = len(m.kernel_size)
    in_size, out_size = tuple(inp[-rank:]), tuple(out[-rank:])
    cost = formulas.conv_transpose(
        m.in_channels, m.out_channels, m.kernel_size, in_size, groups=m.groups
    )
    batch = _numel(inp) // (m.in_channels * _numel(in_size))
    taps = math.prod(
        formulas.transposed_taps(i, k, s, p, d, o)
        for i, k, s, p, d, o in zip(
            in_size, m.kernel_size, m.stride, m.padding, m.dilation, out_size, strict=True
        )
    )
    inputs = batch * m.out_channels * (m.in_channels // m.groups) * taps
    return LayerCount(cost.macs * batch, inputs + (_numel(out) if m.bias is not None else 0))


def _linear(m: nn.Linear, out: Shape, inp: Shape | None) -> LayerCount:
    tokens = _numel(out) // m.out_features
    cost = formulas.linear_tokens(tokens, m.in_features, m.out_features, bias=m.bias is not None)
    return LayerCount(cost.macs, _numel(out) * (m.in_features + (m.bias is not None)))


def _sparse_conv(m: SparseConv2d, out: Shape, inp: Shape | None) -> LayerCount:
    kk = m.kernel * m.kernel
    fan_ins = [len(ins) * kk for ins in m.table]
    hw, batch = out[-1] * out[-2], out[0]
    connections = hw * batch * sum(f + 1 for f in fan_ins)
    return LayerCount(sum(fan_ins) * hw * batch, connections, "sparse_conv")


def _subsampling(m: Subsampling, out: Shape, inp: Shape | None) -> LayerCount:
    kk = m.kernel * m.kernel
    return LayerCount(_numel(out) * kk, _numel(out) * (kk + 1), "subsampling")


def _pool(rank: int) -> Callable[..., LayerCount]:
    def rule(m: nn.Module, out: Shape, inp: Shape | None) -> LayerCount:
        cost = formulas.pool(_numel(out), _ints(m.kernel_size, rank))
        return LayerCount(cost.macs, cost.macs, "pool")

    return rule


def _adaptive(rank: int) -> Callable[..., LayerCount | None]:
    def rule(m: nn.Module, out: Shape, inp: Shape | None) -> LayerCount | None:
        if inp is None or len(inp) < rank + 1:
            return None
        planes = _numel(out) // _numel(out[-rank:])
        cost = formulas.adaptive_pool(planes, tuple(inp[-rank:]), tuple(out[-rank:]))
        return LayerCount(cost.macs, 0, "adaptive_pool")

    return rule


def _batch_norm(m: _BatchNorm, out: Shape, inp: Shape | None) -> LayerCount:
    batch_stats = m.training or m.running_mean is None
    cost = formulas.batch_norm(
        _numel(out), m.num_features, affine=m.affine, batch_stats=batch_stats
    )
    return LayerCount(cost.macs, _numel(out) * 2 if m.affine else 0, "batch_norm")


def _instance_norm(m: _InstanceNorm, out: Shape, inp: Shape | None) -> LayerCount:
    input_stats = m.training or not m.track_running_stats
    cost = formulas.instance_norm(
        _numel(out), m.num_features, affine=m.affine, input_stats=input_stats
    )
    return LayerCount(cost.macs, 0, "instance_norm")


def _group_norm(m: nn.GroupNorm, out: Shape, inp: Shape | None) -> LayerCount:
    cost = formulas.group_norm(_numel(out), m.num_channels, affine=m.affine)
    return LayerCount(cost.macs, 0, "group_norm")


def _layer_norm(m: nn.LayerNorm, out: Shape, inp: Shape | None) -> LayerCount:
    affine = m.elementwise_affine
    cost = formulas.layer_norm(
        _numel(out), _numel(m.normalized_shape), affine=affine, bias=affine and m.bias is not None
    )
    return LayerCount(cost.macs, 0, "layer_norm")


def _rms_norm(m: nn.RMSNorm, out: Shape, inp: Shape | None) -> LayerCount:
    cost = formulas.rms_norm(_numel(out), _numel(m.normalized_shape))
    return LayerCount(cost.macs, 0, "rms_norm")


def _rbf(m: EuclideanRBF, out: Shape, inp: Shape | None) -> LayerCount:
    classes, dim = m.centers.shape
    return LayerCount(out[0] * classes * dim, classes * dim, "rbf")


def _map(m: nn.Module, out: Shape, inp: Shape | None) -> LayerCount:
    return LayerCount(formulas.elementwise(_numel(out)).macs, 0, "map")


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

# (types, rule) in match order. A subclass matches its base's rule; it is covered by it only
# while it keeps the base's forward (LayerNorm2d, NonDynamicallyQuantizableLinear and
# BatchNorm2d keep theirs or, like torchvision's LayerNorm2d, are counted from their ops).
_RULES: list[tuple[tuple[type, ...], Callable[..., LayerCount | None]]] = [
    ((SparseConv2d,), _sparse_conv),
    ((Subsampling,), _subsampling),
    ((EuclideanRBF,), _rbf),
    ((nn.Conv1d, nn.Conv2d, nn.Conv3d), _conv),
    ((nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d), _conv_transpose),
    ((nn.Linear,), _linear),
    ((nn.MaxPool1d, nn.AvgPool1d), _pool(1)),
    ((nn.MaxPool2d, nn.AvgPool2d), _pool(2)),
    ((nn.MaxPool3d, nn.AvgPool3d), _pool(3)),
    ((nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool1d), _adaptive(1)),
    ((nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d), _adaptive(2)),
    ((nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool3d), _adaptive(3)),
    ((_BatchNorm,), _batch_norm),
    ((_InstanceNorm,), _instance_norm),
    ((nn.GroupNorm,), _group_norm),
    ((nn.LayerNorm,), _layer_norm),
    ((nn.RMSNorm,), _rms_norm),
    (ELEMENTWISE, _map),
]


def _rule(m: nn.Module) -> tuple[type, Callable[..., LayerCount | None]] | None:
    for kinds, rule in _RULES:
        for kind in kinds:
            if isinstance(m, kind):
                return kind, rule
    if type(m).__name__ in MOVEMENT_NAMES:
        return type(m), _map
    return None


def base_type(m: nn.Module) -> type | None:
    """The class whose rule m matches (m's own class or a base), None without a rule."""
    found = _rule(m)
    return None if found is None else found[0]


def covers(m: nn.Module) -> bool:
    """Whether a rule counts this module: its type matches one and runs that type's forward."""
    found = _rule(m)
    return found is not None and type(m).forward is found[0].forward


def count_leaf(m: nn.Module, out: Shape, inp: Shape | None) -> LayerCount | None:
    """Formula MACs, category and paper connections of one call of a leaf module; None: no
    rule for its type, or a call the rule cannot price (no input shape)."""
    found = _rule(m)
    return None if found is None else found[1](m, out, inp)
