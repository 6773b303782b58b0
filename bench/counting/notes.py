"""Why a counter disagrees with the formulas, row by row: each counter's convention for each
kind of layer (the `note` column of `sepbench count`). Per-element factors in a note are computed
from the row's own numbers, so a note cannot claim a convention the counts do not show."""

from __future__ import annotations

from torch import nn

from bench.counting.layers import ACTIVATIONS
from models.lenet5 import EuclideanRBF, SparseConv2d, Subsampling

# What each counter counts at all; the fallback reason when no layer-specific one applies.
RULES = {
    "fvcore": "fvcore counts conv, linear/matmul/einsum, batch norm (1/elem), layer and group "
    "norm (5/elem with affine), adaptive avg pool and upsample; it skips every other op",
    "torch": "FlopCounterMode counts only conv, mm/bmm/addmm and scaled-dot-product attention",
    "ptflops": "ptflops adds its module hooks (bias adds, 1/elem activations and pools, 2/elem "
    "affine norms) and its patched F.*/torch.add/mul/matmul calls, 1 per element",
}

# (kind, counter) -> the convention behind a disagreement; "{f}" is the counter's measured count
# per output element of the row (per input element for pools, where the counter says so).
_REASONS = {
    ("batch_norm", "torch"): "FlopCounterMode has no batch-norm rule (0)",
    ("batch_norm", "ptflops"): "ptflops {f}/elem: scale and shift counted apart",
    ("batch_norm", "fvcore"): "fvcore {f}/elem in eval: normalise and affine counted apart, "
    "where the formula folds them into one multiply-add",
    ("layer_norm", "fvcore"): "fvcore {f}/elem (4 + 1 for the affine) vs the formula's 3 "
    "(mean, variance, normalise-and-affine)",
    ("layer_norm", "torch"): "FlopCounterMode has no layer-norm rule (0)",
    ("layer_norm", "ptflops"): "ptflops {f}/elem (its batch-norm hook: 2 with affine)",
    ("pool", "fvcore"): "fvcore skips max/avg pooling (0); the formula reads each window",
    ("pool", "torch"): "FlopCounterMode does not count pooling (0)",
    ("pool", "ptflops"): "ptflops {f}/input elem: its module hook and its patched F.*pool2d "
    "both count the input",
    ("adaptive_pool", "torch"): "FlopCounterMode does not count pooling (0)",
    ("adaptive_pool", "ptflops"): "ptflops {f}/input elem: module hook and patched "
    "F.adaptive_*pool2d both count the input",
    ("activation", "ptflops"): "ptflops {f}/elem for activations (module hook, plus its patched "
    "F.relu/F.gelu/F.silu where the module calls one); the formula counts maps as 0",
    ("subsampling", "fvcore"): "window sum + coefficient + bias per output; fvcore and torch "
    "do not count pooling",
    ("subsampling", "torch"): "FlopCounterMode does not count pooling (0)",
    ("rbf", "fvcore"): "one (x-c)^2 accumulate per element; counters skip elementwise ops",
    ("rbf", "torch"): "FlopCounterMode skips elementwise ops (0)",
    ("rbf", "ptflops"): "ptflops has no rule for it and skips elementwise ops (0)",
    ("sparse_conv", "fvcore"): "the formula counts the Table I connections; fvcore sees the "
    "dense conv the module runs",
    ("sparse_conv", "torch"): "the formula counts the Table I connections; FlopCounterMode sees "
    "the dense conv the module runs",
    ("own", "ptflops"): "ptflops counts only the ops it patches (F.softmax, F.*pool2d, F.relu, "
    "torch.add/mul/matmul); a module's F.linear, einsum or attention function goes uncounted",
    ("sparse_conv", "ptflops"): "ptflops sees the dense conv it runs (through patched ops)",
}


def kind_of(m: nn.Module) -> str:
    """The note family of a leaf module."""
    pairs = [
        (SparseConv2d, "sparse_conv"),
        (Subsampling, "subsampling"),
        (EuclideanRBF, "rbf"),
        (nn.Conv2d, "weights"),
        (nn.Linear, "weights"),
        (nn.modules.batchnorm._BatchNorm, "batch_norm"),
        (nn.LayerNorm, "layer_norm"),
        ((nn.MaxPool2d, nn.AvgPool2d), "pool"),
        ((nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d), "adaptive_pool"),
        (ACTIVATIONS, "activation"),
    ]
    return next((kind for cls, kind in pairs if isinstance(m, cls)), "other")


def _per(value: float, elements: int) -> str:
    return f"{value / elements:.3g}" if elements else "?"


def _int(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,}"


def explain(
    kind: str,
    counts: dict[str, float | None],
    formula: int | None,
    elements: int,
    in_elements: int,
    *,
    bias_elements: int = 0,
    skipped: str = "",
    reads: int = 0,
) -> list[str]:
    """One reason per counter whose count differs from the formula's (torch's FLOPs halved).

    ``elements``/``in_elements`` are the row's output/input element counts (pool factors are per
    input element); ``bias_elements`` the outputs a bias adds to; ``skipped`` the ops fvcore
    reported it could not count in this row; ``reads`` the part of an own-ops row's formula
    that counts reads (softmax, pooling, norms) rather than products."""
    if formula is None:
        return []
    reasons = []
    for counter, value in counts.items():
        if value is None or value == formula:
            continue
        if kind == "weights" and counter == "ptflops" and value - formula == bias_elements:
            reasons.append("ptflops adds the bias: 1 per output element")
            continue
        if kind == "own" and reads and value == formula - reads:
            name = "FlopCounterMode" if counter == "torch" else counter
            extra = f"; it skips {skipped}" if counter == "fvcore" and skipped else ""
            reasons.append(
                f"{name} counts the products only: the formula adds {reads:,} reads "
                f"(softmax, pooling, norms){extra}"
            )
            continue
        if kind == "own" and counter == "ptflops" and value > formula:
            reasons.append(f"ptflops {_int(value)} vs formula {formula:,}: {RULES['ptflops']}")
            continue
        per_input = kind in ("pool", "adaptive_pool")
        template = _REASONS.get((kind, counter))
        if template is not None:
            reasons.append(template.format(f=_per(value, in_elements if per_input else elements)))
        elif counter == "fvcore" and skipped:
            reasons.append(f"fvcore {_int(value)} vs formula {formula:,}: it skips {skipped}")
        else:
            reasons.append(f"{counter} {_int(value)} vs formula {formula:,}: {RULES[counter]}")
    return reasons
