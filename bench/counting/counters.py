"""Per-layer counts of a model: the documents' formulas beside fvcore and PyTorch's own counter.

Units: ``macs_formula`` and ``macs_fvcore`` are multiply-accumulates (fvcore calls them "flops");
``flops_torch`` is torch.utils.flop_counter's figure, which counts 2 FLOPs per MAC. All three
are for the whole counted batch. ``connections`` is the 1998 paper's unit: for every output unit,
its inputs plus its bias.

Where the counters disagree, and why (the ``note`` column says it per row):
- pooling: the formulas charge one accumulate per window input; fvcore skips avg/max pooling
  (it counts adaptive average pooling, 1 per input element); torch counts nothing.
- BatchNorm: not in the documents' formulas; fvcore charges 1 per element in eval mode; torch 0.
- sparse C3: the formula counts the 60 connected 5x5 kernels; the module runs one dense 6->16
  conv, which is what fvcore and torch see.
- RBF output: one subtract-square-accumulate per prototype element in the formula; the counters
  skip elementwise ops.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

with warnings.catch_warnings():
    # fvcore scripts two loss functions when imported, and torch warns that torch.jit.script is
    # deprecated (a FutureWarning per call): no business of sepbench's users. Only that warning
    # is silenced (fvcore's tracing of models warns nothing: checked with -W error).
    warnings.filterwarnings("ignore", r"`torch\.jit\.script` is deprecated", FutureWarning)
    from fvcore.nn import FlopCountAnalysis

from bench import formulas
from bench.errors import UserError
from models import registry
from models.lenet5 import EuclideanRBF, SparseConv2d, Subsampling

COLUMNS = [
    "layer", "type", "out_shape", "params", "macs_formula", "macs_fvcore", "flops_torch",
    "connections", "note",
]  # fmt: skip

_ELEMENTWISE = (nn.ReLU, nn.ReLU6, nn.Tanh, nn.Sigmoid, nn.Hardswish, nn.Dropout, nn.Dropout2d,
                nn.Flatten, nn.Identity)  # fmt: skip


@dataclass
class LayerCount:
    macs: int
    connections: int
    note: str = ""


def _spatial(shape: torch.Size) -> int:
    return shape[-1] * shape[-2] if len(shape) >= 4 else 1


def _conv(m: nn.Conv2d, out: torch.Size) -> LayerCount:
    cost = formulas.conv2d(
        m.in_channels,
        m.out_channels,
        m.kernel_size,
        (out[-2], out[-1]),
        groups=m.groups,
        bias=m.bias is not None,
    )
    fan_in = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
    per_unit = fan_in + (m.bias is not None)
    return LayerCount(cost.macs * out[0], out.numel() * per_unit)


def _pool_window(kernel: int | tuple[int, int]) -> int:
    k = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    return k[0] * k[1]


def _count_leaf(m: nn.Module, out: torch.Size) -> LayerCount:
    """Formula MACs and paper connections for one leaf module given its output shape."""
    if isinstance(m, nn.Conv2d):
        return _conv(m, out)
    if isinstance(m, nn.Linear):
        cost = formulas.linear(m.in_features, m.out_features, bias=m.bias is not None)
        per_sample = out.numel() // m.out_features
        return LayerCount(
            cost.macs * per_sample, out.numel() * (m.in_features + (m.bias is not None))
        )
    if isinstance(m, SparseConv2d):
        kk = m.kernel * m.kernel
        fan_ins = [len(ins) * kk for ins in m.table]
        hw = _spatial(out)
        return LayerCount(
            sum(fan_ins) * hw * out[0],
            hw * out[0] * sum(f + 1 for f in fan_ins),
            "formula counts the Table I connections; fvcore/torch see the dense conv it runs",
        )
    if isinstance(m, Subsampling):
        kk = m.kernel * m.kernel
        return LayerCount(
            out.numel() * kk,
            out.numel() * (kk + 1),
            "window sum + coefficient + bias; fvcore and torch do not count pooling",
        )
    if isinstance(m, (nn.AvgPool2d, nn.MaxPool2d)):
        kk = _pool_window(m.kernel_size)
        return LayerCount(
            out.numel() * kk,
            out.numel() * kk,
            "formula: one op per window input; fvcore and torch do not count pooling",
        )
    if isinstance(m, nn.AdaptiveAvgPool2d):
        return LayerCount(0, 0, "not in the formulas; fvcore counts 1 per input element")
    if isinstance(m, nn.BatchNorm2d):
        return LayerCount(
            0,
            out.numel() * 2 if m.affine else 0,
            "not in the formulas (foldable into the conv); fvcore counts 1 per element in eval",
        )
    if isinstance(m, EuclideanRBF):
        classes, dim = m.centers.shape
        return LayerCount(
            out[0] * classes * dim,
            classes * dim,
            "one (x-c)^2 accumulate per element; counters skip elementwise ops",
        )
    if isinstance(m, _ELEMENTWISE) or sum(p.numel() for p in m.parameters()) == 0:
        return LayerCount(0, 0)
    raise UserError(f"no counting rule for layer type {type(m).__name__}")


def fvcore_analysis(module: nn.Module, *inputs: torch.Tensor) -> FlopCountAnalysis:
    """fvcore's counter on ``module(*inputs)``, its log lines about ops it skips silenced (the
    notes of our rows say what each counter skips). fvcore's unit is one multiply-add."""
    analysis = FlopCountAnalysis(module, inputs)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.total()  # runs the trace now
    return analysis


def fvcore_macs(module: nn.Module, *inputs: torch.Tensor) -> int:
    """fvcore's total multiply-adds of ``module(*inputs)``."""
    return int(fvcore_analysis(module, *inputs).total())


def _leaves(model: nn.Module) -> Iterable[tuple[str, nn.Module]]:
    """Modules without children; a model that is itself one layer is its own single leaf ("")."""
    return ((n, m) for n, m in model.named_modules() if not any(m.children()))


def _leaf_counts(model: nn.Module) -> list[tuple[str, nn.Module]]:
    leaves = list(_leaves(model))
    if not leaves:
        raise UserError(f"{type(model).__name__} has no layers to count")
    return leaves


def count_model(model: nn.Module, input_shape: tuple[int, ...], batch: int = 1) -> pd.DataFrame:
    """One row per leaf layer (in call order) and a final ``total`` row. Runs in eval mode."""
    if batch <= 0:
        raise UserError(f"batch must be a positive integer, got {batch}")
    model = model.eval()
    leaves = _leaf_counts(model)
    x = torch.randn(batch, *input_shape)
    shapes: dict[str, torch.Size] = {}
    order: list[str] = []

    def hook(name: str):
        def record(_m: nn.Module, _inp: object, out: object) -> None:
            if name not in shapes and isinstance(out, torch.Tensor):
                shapes[name] = out.shape
                order.append(name)

        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in leaves]
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        for h in handles:
            h.remove()
    root = type(model).__name__
    torch_counts = {k: sum(v.values()) for k, v in counter.get_flop_counts().items()}

    analysis = fvcore_analysis(model, x)
    fv = analysis.by_module()

    modules = dict(leaves)
    rows = []
    for name in order:
        m, out = modules[name], shapes[name]
        c = _count_leaf(m, out)
        rows.append({
            "layer": name or type(m).__name__,
            "type": type(m).__name__,
            "out_shape": "x".join(map(str, out)),
            "params": sum(p.numel() for p in m.parameters(recurse=False) if p.requires_grad),
            "macs_formula": c.macs,
            "macs_fvcore": int(fv.get(name, 0)),
            "flops_torch": int(torch_counts.get(f"{root}.{name}" if name else root, 0)),
            "connections": c.connections,
            "note": c.note,
        })  # fmt: skip
    df = pd.DataFrame(rows, columns=COLUMNS)
    total = {col: int(df[col].sum()) for col in ("params", "macs_formula", "connections")}
    total.update(
        layer="total",
        type="",
        out_shape="",
        note="",
        macs_fvcore=int(analysis.total()),
        flops_torch=int(torch_counts.get("Global", 0)),
    )
    return pd.concat([df, pd.DataFrame([total], columns=COLUMNS)], ignore_index=True)


def count_registered(name: str, batch: int = 1, **kwargs: object) -> pd.DataFrame:
    spec = registry.get(name)
    return count_model(spec.build(**kwargs), spec.input_shape, batch=batch)


def format_table(df: pd.DataFrame) -> str:
    """Aligned text table with thousands separators for the count columns."""
    shown = df.copy()
    for col in ("params", "macs_formula", "macs_fvcore", "flops_torch", "connections"):
        shown[col] = shown[col].map(lambda v: f"{int(v):,}")
    return shown.to_string(index=False)
