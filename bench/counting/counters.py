"""Per-layer counts of a model: the documents' formulas beside fvcore, PyTorch's own counter
and ptflops (where installed: the ``counters`` extra).

Units: ``macs_formula``, ``macs_fvcore`` and ``macs_ptflops`` are multiply-accumulates (fvcore
calls them "flops", ptflops "MACs"); ``flops_torch`` is torch.utils.flop_counter's figure, 2 FLOPs
per MAC. All are for the whole counted batch. ``connections`` is the 1998 paper's unit: for every
output unit, its inputs plus its bias.

``params`` counts every parameter tensor once (a tied weight in the row of the first module
that registers it), frozen ones included; ``trainable`` the part with requires_grad.

Rows: one per leaf layer in the order its first call finished; one "(own ops)" row per module
whose own forward runs ops outside its children (residual adds, attention matmuls, a root's
flatten); one per module not called as a module but holding parameters (a training-only head,
or weights a parent's functional op uses); then ``total``. A model that is one leaf
module has one row, named by its type. A leaf without a rule of its own is
counted from the functional ops it ran. Every op that runs is priced by a formula or named in
the row's ``uncounted`` column, and then the total's note says it is partial: never a silent
0. The ``note`` column says, row by row, which counter disagrees with the formula and why, in
causes whose shares add up to each difference (bench.counting.notes).
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from typing import Any

import pandas as pd
import torch
from torch import nn

from bench.counting import rows
from bench.counting.probe import Probe, probe, ptflops_available, ptflops_counts
from bench.counting.rows import NO_FORMULA
from bench.errors import UserError
from models import registry

COLUMNS = [
    "layer",
    "type",
    "out_shape",
    "params",
    "trainable",
    "macs_formula",
    "macs_fvcore",
    "flops_torch",
    "macs_ptflops",
    "connections",
    "uncounted",
    "note",
]
COUNT_COLUMNS = (
    "params",
    "trainable",
    "macs_formula",
    "macs_fvcore",
    "flops_torch",
    "macs_ptflops",
    "connections",
)
# Formula categories of products (rule a) as FlopCounterMode and torchvision's documented _ops
# count them: conv, linear, matmul, attention. The rest (reads and per-element multiply-adds of
# rules b and c, interpolation) is what those product-only counters leave out.
PRODUCT_CATEGORIES = {"products", "sparse_conv"}
# fvcore operator names whose counts are products (rule a), as torchvision's _ops counts them.
FVCORE_PRODUCTS = {"conv", "linear", "matmul", "bmm", "einsum", "addmm", "baddbmm"}


# fvcore is optional at import (the GPU machine has none): counting says "fvcore not installed".
FVCORE_MISSING = "fvcore not installed (pip install fvcore)"


def fvcore_available() -> bool:
    return importlib.util.find_spec("fvcore") is not None


def _flop_count_analysis() -> type:
    if not fvcore_available():
        raise ModuleNotFoundError(FVCORE_MISSING)
    with warnings.catch_warnings():
        # fvcore scripts two loss functions when imported, and torch warns that torch.jit.script
        # is deprecated (a FutureWarning per call): no business of sepbench's users. Only that
        # warning is silenced (fvcore's tracing of models warns nothing: checked with -W error).
        warnings.filterwarnings("ignore", r"`torch\.jit\.script` is deprecated", FutureWarning)
        from fvcore.nn import FlopCountAnalysis
    return FlopCountAnalysis


def fvcore_analysis(module: nn.Module, *inputs: torch.Tensor) -> Any:
    """fvcore's counter on ``module(*inputs)``, its log lines about ops it skips silenced (the
    notes of our rows say what each counter skips). fvcore's unit is one multiply-add."""
    analysis = _flop_count_analysis()(module, inputs)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.total()  # runs the trace now
    return analysis


def fvcore_macs(module: nn.Module, *inputs: torch.Tensor) -> float:
    """fvcore's total multiply-adds of ``module(*inputs)``; NaN where fvcore is not installed
    (a results row's macs_fvcore is then empty, not a count)."""
    if not fvcore_available():
        return math.nan
    return int(fvcore_analysis(module, *inputs).total())


def _is_meta(model: nn.Module) -> bool:
    return any(t.is_meta for t in (*model.parameters(), *model.buffers()))


def materialize(model: nn.Module) -> nn.Module:
    """Give a model built on the meta device real (zeroed) CPU storage: counting needs shapes,
    not values, and zeros keep every op finite and free of denormals."""
    model.to_empty(device="cpu")
    with torch.no_grad():
        for t in (*model.parameters(), *model.buffers()):
            t.zero_()
    return model


def _total(df: pd.DataFrame, seen: Probe, analysis, ptflops: dict | None, failures: list[str]):
    missing = df.loc[df["macs_formula"].isna(), "type"].unique().tolist()
    partial = df[df["uncounted"].str.len().gt(0) & df["macs_formula"].notna()]
    note = list(failures)
    if missing or len(partial):
        what = [f"layer type {t}" for t in missing]
        what += [f"{r.uncounted} in {r.layer}" for r in partial.itertuples()]
        note.insert(0, f"partial: {NO_FORMULA} for " + ", ".join(what))
    pt_total = None if ptflops is None else sum(sum(v.values()) for v in ptflops.values())
    return {
        "layer": "total",
        "type": "",
        "out_shape": "",
        "params": int(df["params"].sum()),
        "trainable": int(df["trainable"].sum()),
        "macs_formula": int(df["macs_formula"].sum()),
        "macs_fvcore": None if analysis is None else int(analysis.total()),
        "flops_torch": seen.torch_total,
        "macs_ptflops": pt_total,
        "connections": int(df["connections"].sum()),
        "uncounted": f"{len(partial) + len(missing)} rows" if missing or len(partial) else "",
        "note": "; ".join(note),
    }


def count_model(
    model: nn.Module,
    input_shape: tuple[int, ...],
    batch: int = 1,
    *,
    fvcore: bool = True,
    ptflops: bool | None = None,
) -> pd.DataFrame:
    """One row per leaf layer (in call order), own-ops and uncalled-parameter rows, and a final
    ``total`` row; the model runs in eval mode. A model built on the meta device is probed there
    (shapes, formulas and torch's counter cost no arithmetic) and then given zeroed CPU storage
    for fvcore's traced run and ptflops. ptflops=None: where it is installed.

    ``attrs['reasons']`` maps each row's layer to its notes.Reason list (each counter's
    difference split into causes and their shares); ``attrs['parts']`` to its formula parts."""
    if batch <= 0:
        raise UserError(f"batch must be a positive integer, got {batch}")
    model = model.eval()
    meta = _is_meta(model)
    shape = (batch, *input_shape)
    try:
        seen = probe(model, torch.empty(shape, device="meta") if meta else torch.randn(shape))
    except Exception as err:  # a user's model that cannot run this input: say so, no traceback
        shown = "x".join(map(str, shape))
        raise UserError(
            f"{type(model).__name__} failed on an input of shape {shown}: "
            f"{type(err).__name__}: {err}"
        ) from err
    if meta and (fvcore or ptflops is not False):
        materialize(model)
    x = torch.zeros(shape)
    failures: list[str] = []
    analysis, pt = None, None
    if fvcore and not fvcore_available():
        failures.append(FVCORE_MISSING)
    elif fvcore:
        try:
            analysis = fvcore_analysis(model, x)
        except Exception as err:  # fvcore's tracer fails on some control flow: keep the rest
            failures.append(f"fvcore failed: {type(err).__name__}: {str(err)[:120]}")
    if ptflops or (ptflops is None and ptflops_available()):
        try:
            pt = ptflops_counts(model, x)
        except Exception as err:
            failures.append(f"ptflops failed: {type(err).__name__}: {str(err)[:120]}")
    built = rows.build(model, seen, rows.Counters(seen, analysis, pt))
    df = pd.DataFrame(built.rows, columns=COLUMNS)
    for col in COUNT_COLUMNS:
        df[col] = df[col].astype("Int64")
    total = pd.DataFrame([_total(df, seen, analysis, pt, failures)], columns=COLUMNS)
    out = pd.concat([df, total.astype({c: "Int64" for c in COUNT_COLUMNS})], ignore_index=True)
    out.attrs.update(_breakdown(built, analysis))
    return out


class _ByReference(dict):
    """A dict DataFrame.attrs carries by reference: pandas deep-copies attrs on every operation
    on the frame, and copying each row's reasons and parts took 0.5 s per format_table of
    efficientnet_b0's 280 rows (measured with cProfile here); they are read, never changed."""

    def __deepcopy__(self, memo: dict) -> _ByReference:
        return self


def _breakdown(built: rows.Rows, analysis) -> dict:
    """Model-level figures for explaining totals (DataFrame.attrs): the formula's products
    (conv, linear, matmul, attention: what FlopCounterMode counts) and the rest of it
    (``formula_reads``: reads and per-element multiply-adds of rules b and c, interpolation),
    the parameters of modules not run, fvcore's count per operator and what it skipped, and
    each row's reasons and parts."""
    products = sum(
        value
        for parts in built.parts.values()
        for tally in parts.values()
        for cat, value in tally.parts.items()
        if cat in PRODUCT_CATEGORIES
    )
    formula = sum(r["macs_formula"] or 0 for r in built.rows)
    uncalled = sum(r["params"] for r in built.rows if r["note"].startswith("not run"))
    fv_ops = {} if analysis is None else {k: int(v) for k, v in analysis.by_operator().items()}
    skipped = [] if analysis is None else list(analysis.unsupported_ops())
    return {
        "formula_products": int(products),
        "formula_reads": int(formula - products),
        "unrun_params": int(uncalled),
        "fvcore_by_operator": fv_ops,
        "fvcore_skipped": skipped,
        "reasons": _ByReference(built.reasons),
        "parts": _ByReference(built.parts),
    }


def count_registered(name: str, batch: int = 1, **kwargs: object) -> pd.DataFrame:
    spec = registry.get(name)
    return count_model(spec.build(**kwargs), spec.input_shape, batch=batch)


def format_table(df: pd.DataFrame) -> str:
    """Aligned text table with thousands separators for the count columns."""
    shown = df.copy()
    for col in COUNT_COLUMNS:
        shown[col] = shown[col].map(lambda v: "-" if pd.isna(v) else f"{int(v):,}")
    return shown.to_string(index=False)
