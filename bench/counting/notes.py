"""Why a counter disagrees with the formulas, row by row (the `note` column of `sepbench count`).

Each difference is split into causes, one Reason each, with the share of the difference it
explains; the shares add up to the measured difference by construction. A Reason names a
counter's convention only when the row's own numbers show it (fvcore's batch-norm handle is
named only where its count is exactly 2 per element; FlopCounterMode is said to count 0 for an
operator only where the probe saw it count 0 there); where no convention fits, the Reason says
so and is marked unknown (tests assert there are none on the models they count).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from torch import nn
from torch.utils.flop_counter import flop_registry

from bench.counting import aten
from bench.counting.layers import ACTIVATIONS
from bench.counting.probe import HOOK, OpTally
from models.lenet5 import EuclideanRBF, SparseConv2d, Subsampling

# fvcore's operator names (its handles' keys, conv renamed) -> formula category.
FVCORE_CATEGORY = {
    **dict.fromkeys(
        ("conv", "linear", "matmul", "bmm", "einsum", "addmm", "baddbmm", "mm"), "products"
    ),
    **{k: k for k in ("batch_norm", "group_norm", "layer_norm", "instance_norm")},
    "adaptive_avg_pool2d": "adaptive_pool",
    "upsample_nearest2d": "interpolate",
    "upsample_bilinear2d": "interpolate",
}
# What a formula category charges, in a note's words.
READS = {
    "pool": "window reads (pooling)",
    "adaptive_pool": "window reads (adaptive pooling)",
    "softmax": "softmax reads",
    "reduction": "reduction reads",
    "normalize": "L2-norm reads",
    "batch_norm": "batch-norm multiply-adds",
    "group_norm": "group-norm reads and multiply-adds",
    "layer_norm": "layer-norm reads and multiply-adds",
    "instance_norm": "instance-norm reads and multiply-adds",
    "rms_norm": "RMS-norm reads and multiply-adds",
    "subsampling": "window sums (subsampling)",
    "rbf": "(x - c)^2 accumulates",
    "interpolate": "interpolation products",
}
PRODUCTS = {"products", "sparse_conv"}
# Formula categories whose work fvcore's trace shows under another category's operators:
# F.normalize as aten::linalg_vector_norm, the RBF's distance as aten::sum, LeNet's
# subsampling as aten::avg_pool2d.
_TRACED_AS = {"normalize": ("reduction",), "rbf": ("reduction",), "subsampling": ("pool",)}
_NORMS = {"batch_norm", "group_norm", "layer_norm", "instance_norm"}


@dataclass(frozen=True)
class Reason:
    counter: str  # "fvcore", "torch" (in MACs: FLOPs / 2) or "ptflops"
    delta: float  # this cause's share of (counter - formula)
    text: str
    known: bool = True  # False: the numbers fit no convention named here


@dataclass
class Evidence:
    """What a row's notes may cite: the formula's parts and each counter's view of the row."""

    module: nn.Module | None  # None for a module's own ops
    kind: str  # the leaf's formula category, "ops" when counted from its functional ops
    formula: int
    parts: dict[str, OpTally]  # note label -> the calls that label covers in this row
    out_elements: int = 0
    bias_elements: int = 0
    uncounted: bool = False
    fvcore: int | None = None
    fvcore_ops: dict[str, int] = field(default_factory=dict)  # fvcore operator -> count
    fvcore_skipped: dict[str, int] = field(default_factory=dict)  # 'aten::x' -> calls
    torch: int = 0  # FlopCounterMode FLOPs of the row
    ptflops: int | None = None
    ptflops_sources: dict[str, int] = field(default_factory=dict)


def kind_of(m: nn.Module) -> str:
    """The note family of a leaf module (bench.counting.layers gives rules' categories)."""
    pairs = [
        (SparseConv2d, "sparse_conv"),
        (Subsampling, "subsampling"),
        (EuclideanRBF, "rbf"),
        ((nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear), "weights"),
        ((nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d), "weights"),
        (ACTIVATIONS, "activation"),
    ]
    return next((kind for cls, kind in pairs if isinstance(m, cls)), "other")


def _g(value: float) -> str:
    return f"{value:.3g}"


def _n(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _categories(parts: dict[str, OpTally]) -> tuple[Counter, Counter, dict[str, set[str]]]:
    """Formula MACs and input elements per category over a row's parts, and the categories
    each one shares a call with (an attention call's softmax goes with its products)."""
    macs, elements, related = Counter(), Counter(), {}
    for tally in parts.values():
        cats = {c for c, v in tally.parts.items() if v}
        for cat, value in tally.parts.items():
            macs[cat] += value
            elements[cat] += tally.in_elements
            related.setdefault(cat, set()).update(cats - {cat})
    return macs, elements, related


def _skipped_by_category(skipped: dict[str, int]) -> dict[str | None, list[str]]:
    """fvcore's skipped operators of a row by formula category; free ones (maps and moves,
    0 by rule d) are left out: they are no cause of a difference."""
    found: dict[str | None, list[str]] = {}
    for op in skipped:
        cat = aten.category(op)
        if cat != "free":
            found.setdefault(cat, []).append(op)
    return found


def _fvcore_einsum_rounding(parts: dict[str, OpTally]) -> int:
    """What fvcore's einsum handle adds to a row's products by rounding: it parses numpy's
    'Optimized FLOP count: 2.409e+08' (2 FLOPs per product, '%.3e') and halves it. The row's
    einsum calls are taken as equal (checked: the note is given only where this fits)."""
    tally = parts.get("torch.einsum")
    if tally is None or not tally.calls or not tally.parts.get("products"):
        return 0
    per_call = tally.parts["products"] / tally.calls
    printed = math.floor(float(f"{2 * per_call:.3e}") / 2)
    return int(tally.calls * printed - tally.parts["products"])


def _fvcore(ev: Evidence) -> list[Reason]:
    formula, elements, related = _categories(ev.parts)
    if "sparse_conv" in formula:
        formula["products"] += formula.pop("sparse_conv")
    fv = Counter()
    for op, value in ev.fvcore_ops.items():
        fv[FVCORE_CATEGORY.get(op, op)] += value
    skipped = _skipped_by_category(ev.fvcore_skipped)
    reasons = []
    for cat in sorted(set(formula) | set(fv)):
        f, v = formula.get(cat, 0), fv.get(cat, 0)
        if f == v:
            continue
        # what fvcore skipped of this category, or of a call that also made this category's
        # work (aten::scaled_dot_product_attention holds the softmax reads too)
        ops = list(skipped.get(cat, []))
        for other in sorted(related.get(cat, ())):
            ops += [op for op in skipped.get(other, []) if op not in ops]
        for other in _TRACED_AS.get(cat, ()):
            ops += skipped.get(other, [])
        listed = ", ".join(sorted(ops or []))
        e = elements.get(cat, 0)
        ratio, per = (v / e, f / e) if e else (0.0, 0.0)
        rounded = _fvcore_einsum_rounding(ev.parts) if cat in PRODUCTS else 0
        if rounded and v - f == rounded:
            text = (
                f"fvcore's einsum handle reads numpy's einsum_path FLOP count as printed, to 4 "
                f"significant digits ({_n(v)} where the products are {_n(f)})"
            )
            reasons.append(Reason("fvcore", v - f, text))
        elif cat in PRODUCTS and v < f and ops:
            hint = " (what a padding='same' or 'valid' convolution traces to)"
            hint = hint if "aten::_convolution_mode" in ops else ""
            text = f"fvcore {_n(v)} of the formula's {_n(f)} products: it has no handle for "
            reasons.append(Reason("fvcore", v - f, text + listed + hint))
        elif cat in PRODUCTS and v > f and ev.kind == "sparse_conv":
            text = "the formula counts the Table I connections; fvcore sees the dense conv"
            reasons.append(Reason("fvcore", v - f, text + " the module runs"))
        elif cat == "batch_norm" and v and ratio == 2 and per == 1:
            reasons.append(
                Reason(
                    "fvcore",
                    v - f,
                    "fvcore's batch_norm handle counts 2/elem in eval (input numel x 2 with an "
                    "affine: the normalise and the scale-and-shift apart), where the formula "
                    "folds both into 1 multiply-add per element (rule c)",
                )
            )
        elif cat in _NORMS and v and ratio in (4, 5):
            stats = (
                "the mean and variance reads, then normalise-and-affine"
                if per == 3
                else ("a per-channel multiply-add with the running statistics")
            )
            reasons.append(
                Reason(
                    "fvcore",
                    v - f,
                    f"fvcore's {cat} handle counts {_g(ratio)}/elem (its fixed estimate: 5 with an "
                    f"affine, 4 without) vs the formula's {_g(per)} ({stats})",
                )
            )
        elif cat == "adaptive_pool" and v and v == e and f > v:
            reasons.append(
                Reason(
                    "fvcore",
                    v - f,
                    f"fvcore's adaptive_avg_pool2d handle counts each input element once "
                    f"({_n(v)}); the formula sums the windows, which overlap here ({_n(f)})",
                )
            )
        elif cat == "interpolate" and f == 0 and "upsample_nearest2d" in ev.fvcore_ops:
            reasons.append(
                Reason(
                    "fvcore",
                    v - f,
                    f"fvcore's upsample_nearest2d handle counts 1 per output element ({_n(v)}); "
                    "nearest interpolation copies, 0 by rule d",
                )
            )
        elif v == 0 and ops:
            what = READS.get(cat, cat)
            reasons.append(
                Reason(
                    "fvcore", -f, f"fvcore has no handle for {listed}: the formula's {_n(f)} {what}"
                )
            )
        elif f == 0 and ev.uncounted:
            reasons.append(
                Reason("fvcore", v, f"fvcore counts {_n(v)} ({cat}) in ops listed as uncounted")
            )
        else:
            reasons.append(
                Reason(
                    "fvcore",
                    v - f,
                    f"fvcore {_n(v)} vs the formula's {_n(f)} for {cat}: no convention here "
                    "explains it",
                    known=False,
                )
            )
    rest = (ev.fvcore or 0) - sum(fv.values())
    if rest:
        reasons.append(Reason("fvcore", rest, f"fvcore {_n(rest)} outside its operators", False))
    return reasons


def _zero_ops(ops: set[str], products: bool) -> str:
    chosen = sorted(op for op in ops if (aten.category(op) in PRODUCTS) == products)
    return ", ".join(chosen)


def _no_rule(listed: str) -> str:
    """How to say FlopCounterMode counted 0 for operators: no rule, or a rule that gave 0."""
    names = [n.strip().removeprefix("aten.") for n in listed.split(",")]
    registered = {p.__name__ for p in flop_registry}
    if all(n not in registered for n in names):
        return f"it has no rule for {listed}"
    return f"it counted 0 for {listed}"


def _torch(ev: Evidence) -> list[Reason]:
    reasons = []
    attributed = 0.0
    reads = Counter()
    for label, tally in ev.parts.items():
        t = tally.torch_flops / 2
        attributed += t
        p = sum(v for k, v in tally.parts.items() if k in PRODUCTS)
        for cat, value in tally.parts.items():
            if cat not in PRODUCTS and value:
                reads[cat] += value
        if t == p:
            continue
        zero = _zero_ops(tally.zero_in_torch, products=True)
        if t == 0 and p and zero:
            text = f"FlopCounterMode 0 for {label}'s {_n(p)} products: {_no_rule(zero)}"
            reasons.append(Reason("torch", -p, text))
        elif t > p and ev.kind == "sparse_conv":
            text = "the formula counts the Table I connections; FlopCounterMode sees the dense conv"
            reasons.append(Reason("torch", t - p, text + " the module runs"))
        elif p == 0 and tally.uncounted:
            text = f"FlopCounterMode counts {_n(t)} in {label}, which no formula here prices"
            reasons.append(Reason("torch", t, text))
        else:
            text = f"FlopCounterMode {_n(t)} for {label} vs the formula's {_n(p)} products"
            reasons.append(Reason("torch", t - p, text + ": no convention here explains it", False))
    total_reads = sum(reads.values())
    if total_reads:
        # the operators that ran the reads: FlopCounterMode counted 0 for them
        zero = sorted(
            {
                op
                for t in ev.parts.values()
                if any(v for c, v in t.parts.items() if c not in PRODUCTS)
                for op in t.zero_in_torch
            }
        )
        what = ", ".join(READS.get(c, c) for c in sorted(reads))
        if zero:
            text = (
                f"FlopCounterMode's rules cover conv, matmul and attention products only: "
                f"{_no_rule(', '.join(zero))}, so the formula's {_n(total_reads)} {what} are "
                "not in its count"
            )
            reasons.append(Reason("torch", -total_reads, text))
        else:
            text = f"FlopCounterMode leaves out the formula's {_n(total_reads)} {what}"
            reasons.append(Reason("torch", -total_reads, text, known=False))
    rest = ev.torch / 2 - attributed
    if rest:
        text = f"FlopCounterMode {_n(rest)} outside the calls recorded here"
        reasons.append(Reason("torch", rest, text, known=False))
    return reasons


def ptflops_patched() -> frozenset[str]:
    from bench.counting.probe import ptflops_patched as patched

    return patched()


def _unhooked(m: nn.Module) -> str | None:
    """'ptflops matches exact module types: ...' for a subclass of a type ptflops hooks."""
    from bench.counting.probe import ptflops_hooked_types

    hooked = ptflops_hooked_types()
    if type(m) in hooked:
        return None
    base = next((b.__name__ for b in type(m).__mro__[1:] if b in hooked), None)
    if base is None:
        return None
    return (
        f"ptflops matches exact module types: {type(m).__name__} (a {base} subclass) gets no hook"
    )


def _hook_reason(ev: Evidence, hook: int, formula: int) -> Reason | None:
    """ptflops' module hook on a covered leaf against the leaf's formula."""
    from bench.counting.probe import ptflops_hooked_types

    m, delta = ev.module, hook - formula
    name = type(m).__name__
    if type(m) not in ptflops_hooked_types():
        text = _unhooked(m) or f"ptflops has no hook for {name}"
        return Reason("ptflops", delta, text) if delta else None
    if not delta:
        return None
    family = kind_of(m)
    e_in = sum(t.in_elements for t in ev.parts.values())
    doubled = bool(getattr(m, "affine", False))  # what ptflops' norm hook reads
    if family == "weights" and delta == ev.bias_elements:
        return Reason("ptflops", delta, f"ptflops' {name} hook adds the bias: 1 per output element")
    if ev.kind in _NORMS and e_in and hook == e_in * (2 if doubled else 1):
        why = "input numel, x2 for an affine module"
        if not doubled and getattr(m, "elementwise_affine", False):
            why = f"input numel: its x2 reads an `affine` attribute, which {name} does not have"
        text = f"ptflops' {name} hook counts {hook // e_in}/elem ({why}) vs the formula's "
        return Reason("ptflops", delta, text + _g(formula / e_in))
    if ev.kind in ("pool", "adaptive_pool") and hook == e_in:
        text = (
            f"ptflops' {name} hook counts each input element once ({_n(hook)}) where the "
            f"formula reads each window ({_n(formula)})"
        )
        return Reason("ptflops", delta, text)
    if family == "activation" and formula == 0 and hook == ev.out_elements:
        text = f"ptflops' {name} hook counts 1/elem; the formula counts maps as 0 (rule d)"
        return Reason("ptflops", delta, text)
    text = f"ptflops' {name} hook counts {_n(hook)} vs the formula's {_n(formula)}"
    return Reason("ptflops", delta, text + ": no convention here explains it", known=False)


def _ptflops(ev: Evidence) -> list[Reason]:
    sources = dict(ev.ptflops_sources)
    hook = sources.pop(HOOK, 0)
    reasons = []
    covered = ev.module is not None and ev.kind != "ops"
    if covered:
        found = _hook_reason(ev, hook, ev.formula)
        if found is not None:
            reasons.append(found)
        for label, n in sorted(sources.items()):
            if n:
                per = "1/elem, " if n == ev.out_elements else ""
                again = " again" if hook else ""
                text = f"ptflops' patched {label} counts this call{again} ({per}{_n(n)})"
                reasons.append(Reason("ptflops", n, text))
    else:
        if hook:
            name = type(ev.module).__name__
            reasons.append(Reason("ptflops", hook, f"ptflops' {name} hook counts {_n(hook)}"))
        unhooked = _unhooked(ev.module) if ev.module is not None and hook == 0 else None
        subclass = f"{unhooked}, and " if unhooked else ""
        for label in sorted(set(ev.parts) | set(sources)):
            n = sources.get(label, 0)
            tally = ev.parts.get(label)
            f = tally.macs if tally is not None else 0
            if n == f:
                continue
            if n == 0 and label in ptflops_patched():
                via = " (the @ operator runs Tensor.__matmul__ in C++)" if "matmul" in label else ""
                text = (
                    f"{subclass}ptflops' patch of {label} saw none of these calls (0 of the "
                    f"formula's {_n(f)}): they reach torch without the Python attribute it "
                    f"replaces{via}"
                )
                reasons.append(Reason("ptflops", -f, text))
            elif n == 0:
                text = f"{subclass}ptflops does not patch {label} (0 of the formula's {_n(f)})"
                reasons.append(Reason("ptflops", -f, text))
            elif f == 0:
                text = f"ptflops counts {label} ({_n(n)}); the formula counts maps as 0 (rule d)"
                reasons.append(Reason("ptflops", n, text))
            elif 0 < n < f and label in ptflops_patched() and "matmul" in label:
                text = (
                    f"ptflops' patched {label} counts {_n(n)} of the formula's {_n(f)}: it sees "
                    "the .matmul calls, not those through the @ operator (Tensor.__matmul__ in "
                    "C++ bypasses the patch)"
                )
                reasons.append(Reason("ptflops", n - f, text))
            elif tally is not None and n == tally.in_elements:
                text = (
                    f"ptflops' patched {label} counts 1 per input element ({_n(n)}) where the "
                    f"formula counts {_n(f)}"
                )
                reasons.append(Reason("ptflops", n - f, text))
            else:
                text = f"ptflops' patched {label} counts {_n(n)} vs the formula's {_n(f)}"
                reasons.append(Reason("ptflops", n - f, text + ": no convention here", False))
    rest = (ev.ptflops or 0) - hook - sum(sources.values())
    if rest:
        reasons.append(Reason("ptflops", rest, f"ptflops {_n(rest)} unattributed", False))
    return reasons


def explain(ev: Evidence) -> list[Reason]:
    """One Reason per cause of each counter's difference from the formula (torch's FLOPs
    halved); nothing for a counter that agrees or did not run."""
    reasons = []
    if ev.fvcore is not None and ev.fvcore != ev.formula:
        reasons += _fvcore(ev)
    if ev.torch / 2 != ev.formula:
        reasons += _torch(ev)
    if ev.ptflops is not None and ev.ptflops != ev.formula:
        reasons += _ptflops(ev)
    return reasons
