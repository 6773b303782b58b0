"""Per-layer counts of a model: the documents' formulas beside fvcore, PyTorch's own counter
and ptflops (where installed: the ``counters`` extra).

Units: ``macs_formula``, ``macs_fvcore`` and ``macs_ptflops`` are multiply-accumulates (fvcore
calls them "flops", ptflops "MACs"); ``flops_torch`` is torch.utils.flop_counter's figure, 2 FLOPs
per MAC. All are for the whole counted batch. ``connections`` is the 1998 paper's unit: for every
output unit, its inputs plus its bias.

Rows: one per leaf layer in the order its first call finished; one "(own ops)" row per module
whose own forward runs ops outside its children (residual adds, attention matmuls, a root's
flatten); one per module not called as a module but holding parameters (a training-only head,
or weights a parent's functional op uses); then ``total``. A leaf type without a formula is a
row marked "no formula" and the total is marked partial. The ``note`` column says, row by row,
which counter disagrees with the formula and by which convention (bench.counting.notes).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import pandas as pd
import torch
from torch import nn

with warnings.catch_warnings():
    # fvcore scripts two loss functions when imported, and torch warns that torch.jit.script is
    # deprecated (a FutureWarning per call): no business of sepbench's users. Only that warning
    # is silenced (fvcore's tracing of models warns nothing: checked with -W error).
    warnings.filterwarnings("ignore", r"`torch\.jit\.script` is deprecated", FutureWarning)
    from fvcore.nn import FlopCountAnalysis

from bench.counting import layers, notes
from bench.counting.probe import Probe, probe, ptflops_available, ptflops_counts
from bench.errors import UserError
from models import registry

COLUMNS = [
    "layer",
    "type",
    "out_shape",
    "params",
    "macs_formula",
    "macs_fvcore",
    "flops_torch",
    "macs_ptflops",
    "connections",
    "note",
]
COUNT_COLUMNS = (
    "params",
    "macs_formula",
    "macs_fvcore",
    "flops_torch",
    "macs_ptflops",
    "connections",
)
NO_FORMULA = "no formula"
# fvcore's skipped ops that move data only: left out of the notes' "it skips" lists.
_SHAPE_OPS = {
    *("unflatten", "flatten", "view", "reshape", "permute", "transpose", "contiguous"),
    *("expand", "pad", "roll", "cat", "chunk", "split", "unbind", "clone", "squeeze"),
    *("unsqueeze", "repeat", "select", "slice", "index", "to", "dropout", "neg", "rsub"),
}


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


def _trainable(m: nn.Module, recurse: bool = False) -> int:
    return sum(p.numel() for p in m.parameters(recurse=recurse) if p.requires_grad)


def _numel(shape: Sequence[int] | None) -> int:
    return math.prod(shape) if shape else 0


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


class _Counters:
    """The three counters' per-module results, each None where that counter did not run."""

    def __init__(self, seen: Probe, fvcore: dict[str, int] | None, ptflops: dict | None) -> None:
        self.seen, self.fvcore, self.ptflops = seen, fvcore, ptflops

    def leaf(self, name: str) -> dict[str, int | None]:
        return {
            "fvcore": None if self.fvcore is None else self.fvcore.get(name, 0),
            "torch": self.seen.torch_flops.get(name, 0),
            "ptflops": None if self.ptflops is None else self.ptflops.get(name, 0),
        }

    def own(self, name: str, children: list[str]) -> dict[str, int | None]:
        """Counts of a module's own ops: its total less its children's (ptflops is per module)."""
        fv, flops = self.fvcore, self.seen.torch_flops
        return {
            "fvcore": None if fv is None else fv.get(name, 0) - sum(fv.get(c, 0) for c in children),
            "torch": flops.get(name, 0) - sum(flops.get(c, 0) for c in children),
            "ptflops": None if self.ptflops is None else self.ptflops.get(name, 0),
        }


def _row(
    layer: str,
    kind: str,
    out: Sequence[int] | None,
    params: int,
    formula: int | None,
    counts: dict[str, int | None],
    connections: int,
    note: list[str],
) -> dict:
    return {
        "layer": layer,
        "type": kind,
        "out_shape": "x".join(map(str, out)) if out else "",
        "params": params,
        "macs_formula": formula,
        "macs_fvcore": counts["fvcore"],
        "flops_torch": counts["torch"],
        "macs_ptflops": counts["ptflops"],
        "connections": connections,
        "note": "; ".join(n for n in note if n),
    }


def _halved(counts: dict[str, int | None]) -> dict[str, float | None]:
    """Counts in MACs for comparing with the formula (torch counts 2 FLOPs per MAC)."""
    return {**counts, "torch": counts["torch"] / 2}


def _leaf_row(name: str, m: nn.Module, seen: Probe, counters: _Counters) -> dict:
    calls = seen.calls[name]
    found = [layers.count_leaf(m, out, inp) for inp, out in calls if out is not None]
    counts = counters.leaf(name)
    out = calls[0][1]
    if not found or any(c is None for c in found):
        note = [f"{NO_FORMULA} for layer type {type(m).__name__}: left out of the total (partial)"]
        return _row(name, type(m).__name__, out, _trainable(m), None, counts, 0, note)
    formula = sum(c.macs for c in found)
    elements = sum(_numel(o) for _, o in calls)
    bias = getattr(m, "bias", None)
    note = [f"called {len(calls)} times" if len(calls) > 1 else ""]
    bias_elements = elements if isinstance(bias, torch.Tensor) else 0
    in_elements = sum(_numel(i) for i, _ in calls)
    kind = notes.kind_of(m)
    note += notes.explain(
        kind, _halved(counts), formula, elements, in_elements, bias_elements=bias_elements
    )
    connections = sum(c.connections for c in found)
    return _row(name, type(m).__name__, out, _trainable(m), formula, counts, connections, note)


def _own_row(
    name: str, m: nn.Module, seen: Probe, counters: _Counters, children: list[str], skipped: str
) -> dict | None:
    counts = counters.own(name, children)
    formula, ops = seen.own_macs.get(name, 0), seen.own_ops.get(name)
    params = _trainable(m)
    if not (ops or params or formula or any(counts.values())):
        return None
    label = f"{name or type(m).__name__} (own ops)"
    listed = ", ".join(f"{op} x{n}" for op, n in sorted(ops.items())) if ops else "none"
    note = [f"{type(m).__name__}.forward outside its children: {listed}"]
    if seen.unfit_ops.get(name):
        note.append(f"arguments fit no formula: {', '.join(sorted(seen.unfit_ops[name]))}")
    reads = seen.own_reads.get(name, 0)
    note += notes.explain("own", _halved(counts), formula, 0, 0, skipped=skipped, reads=reads)
    out = seen.calls[name][0][1]
    return _row(label, f"{type(m).__name__} (own ops)", out, params, formula, counts, 0, note)


def _uncalled_row(name: str, m: nn.Module, seen: Probe, counters: _Counters) -> dict:
    mine = [f"{name}.{p}" if name else p for p, _ in m.named_parameters(recurse=False)]
    users = {seen.param_users[p] for p in mine if p in seen.param_users}
    if users:
        owner = min(users, key=len) or "the model"
        note = f"not called as a module: {owner}'s own ops use its weights and hold its work"
    else:
        note = "not run in this forward (e.g. a training-only head): parameters only"
    return _row(name, type(m).__name__, None, _trainable(m), 0, counters.leaf(name), 0, [note])


def _skipped_by_fvcore(analysis: FlopCountAnalysis | None, name: str) -> str:
    if analysis is None:
        return ""
    ops = [op for op, _ in analysis.unsupported_ops(name).most_common()]
    return ", ".join(op for op in ops if op.removeprefix("aten::") not in _SHAPE_OPS)


def _rows(model: nn.Module, seen: Probe, counters: _Counters, analysis) -> list[dict]:
    modules = dict(model.named_modules())
    children = {
        n: [f"{n}.{c}" if n else c for c, _ in m.named_children()] for n, m in modules.items()
    }
    rows = []
    called = set(seen.calls)

    def frontier(name: str) -> list[str]:
        """The nearest descendants that were called (through uncalled ModuleList containers)."""
        return [d for c in children[name] for d in ([c] if c in called else frontier(c))]

    for name in seen.finished:
        m = modules.get(name)
        if m is None:
            continue
        if not children[name]:
            rows.append(_leaf_row(name, m, seen, counters))
            continue
        own = _own_row(name, m, seen, counters, frontier(name), _skipped_by_fvcore(analysis, name))
        if own is not None:
            rows.append(own)
    for name, m in modules.items():
        if (
            name not in seen.calls
            and _trainable(m)
            and (not children[name] or any(True for _ in m.parameters(recurse=False)))
        ):
            rows.append(_uncalled_row(name, m, seen, counters))
    return rows


def _total(df: pd.DataFrame, seen: Probe, analysis, ptflops: dict | None, failures: list[str]):
    partial = df.loc[df["macs_formula"].isna(), "type"].unique()
    note = list(failures)
    if len(partial):
        note.insert(0, f"partial: {NO_FORMULA} for {', '.join(partial)}")
    return {
        "layer": "total",
        "type": "",
        "out_shape": "",
        "params": int(df["params"].sum()),
        "macs_formula": int(df["macs_formula"].sum()),
        "macs_fvcore": None if analysis is None else int(analysis.total()),
        "flops_torch": seen.torch_total,
        "macs_ptflops": None if ptflops is None else int(sum(ptflops.values())),
        "connections": int(df["connections"].sum()),
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
    for fvcore's traced run and ptflops. ptflops=None: where it is installed."""
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
    if fvcore:
        try:
            analysis = fvcore_analysis(model, x)
        except Exception as err:  # fvcore's tracer fails on some control flow: keep the rest
            failures.append(f"fvcore failed: {type(err).__name__}: {str(err)[:120]}")
    if ptflops or (ptflops is None and ptflops_available()):
        try:
            pt = ptflops_counts(model, x)
        except Exception as err:
            failures.append(f"ptflops failed: {type(err).__name__}: {str(err)[:120]}")
    counters = _Counters(seen, None if analysis is None else dict(analysis.by_module()), pt)
    rows = _rows(model, seen, counters, analysis)
    df = pd.DataFrame(rows, columns=COLUMNS)
    for col in COUNT_COLUMNS:
        df[col] = df[col].astype("Int64")
    total = pd.DataFrame([_total(df, seen, analysis, pt, failures)], columns=COLUMNS)
    out = pd.concat([df, total.astype({c: "Int64" for c in COUNT_COLUMNS})], ignore_index=True)
    out.attrs.update(_breakdown(model, rows, seen, analysis))
    return out


_READ_KINDS = {"batch_norm", "layer_norm", "pool", "adaptive_pool", "subsampling"}
# fvcore operator names whose counts are products (rule a), as torchvision's _ops counts them.
FVCORE_PRODUCTS = {"conv", "linear", "matmul", "bmm", "einsum", "addmm", "baddbmm"}


def _breakdown(model: nn.Module, rows: list[dict], seen: Probe, analysis) -> dict:
    """Model-level figures for explaining totals (DataFrame.attrs): the formula's reads (rules
    b and c), the parameters of modules not run, fvcore's count per operator and what it skipped."""
    modules = dict(model.named_modules())
    leaf_reads = sum(
        r["macs_formula"] or 0
        for r in rows
        if r["layer"] in modules and notes.kind_of(modules[r["layer"]]) in _READ_KINDS
    )
    uncalled = sum(r["params"] for r in rows if r["note"].startswith("not run"))
    fv_ops = {} if analysis is None else {k: int(v) for k, v in analysis.by_operator().items()}
    skipped = [] if analysis is None else list(analysis.unsupported_ops())
    return {
        "formula_reads": int(leaf_reads + sum(seen.own_reads.values())),
        "unrun_params": int(uncalled),
        "fvcore_by_operator": fv_ops,
        "fvcore_skipped": skipped,
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
