"""`sepbench count --zoo torchvision`: every torchvision classification model, at each input
size its weights document, counted by the formulas, fvcore and FlopCounterMode beside the
weights' meta (``num_params``; ``_ops`` in GFLOPS, which torchvision computed as multiply-adds of
conv, matmul and attention: FlopCounterMode's FLOPs / 2), one row per model and size, with a
verdict per counter and the convention that explains each difference.

No weights are downloaded: models are built with weights=None on the meta device (probed there
for shapes, formulas and FlopCounterMode) and given zeroed CPU storage only for fvcore's traced
run, on one thread at batch 1. Rows are written as they finish; a rerun resumes.
"""

from __future__ import annotations

import contextlib
import gc
import math
import multiprocessing
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from bench.counting import sources
from bench.counting.counters import FVCORE_PRODUCTS, count_model

COLUMNS = [
    "model",
    "weights",
    "input",
    "doc_params",
    "params",
    "doc_gflops",
    "gmacs_formula",
    "gmacs_fvcore",
    "gmacs_torch",
    "params_verdict",
    "formula_verdict",
    "fvcore_verdict",
    "torch_verdict",
    "verdict",
    "explanation",
    "seconds",
    "status",
]
# torchvision rounds _ops to 3 decimals of a GFLOP: a count within half of that matches.
TOLERANCE_G = 0.0005


def zoo_entries(names: list[str] | None = None) -> list[dict]:
    """One entry per (model, documented crop size): the weights sharing it and their meta."""
    from torchvision import models

    entries = []
    for name in names or sources.torchvision_names():
        groups: dict[int, list] = {}
        for weights in models.get_model_weights(name):
            groups.setdefault(sources.crop_size(weights), []).append(weights)
        for size, group in groups.items():
            metas = {(w.meta["num_params"], w.meta["_ops"]) for w in group}
            entries.append(
                {
                    "model": name,
                    "weights": " ".join(str(w).split(".", 1)[1] for w in group),
                    "input": size,
                    "doc_params": group[0].meta["num_params"],
                    "doc_gflops": group[0].meta["_ops"],
                    "meta_note": "" if len(metas) == 1 else f"weights disagree: {sorted(metas)}",
                }
            )
    return entries


def _near(gmacs: float, doc: float) -> bool:
    return abs(gmacs - doc) <= TOLERANCE_G


def _params_verdict(params: int, doc: int, unrun: int) -> tuple[str, str]:
    if params == doc:
        return "match", ""
    if unrun and params - unrun == doc:
        return "match", (
            f"params: the weights=None build holds {unrun:,} parameters of modules not run in "
            "eval (auxiliary heads); the documentation leaves them out"
        )
    return "mismatch", f"params: counted {params:,} vs documented {doc:,} ({params - doc:+,})"


def _formula_verdict(g: float, reads_g: float, doc: float) -> tuple[str, str]:
    if _near(g, doc):
        return "match", ""
    if _near(g - reads_g, doc):
        return "explained", (
            f"formula: its products match; it adds {reads_g:.3f} G of reads "
            "(BN, LN, pooling, softmax) that _ops leaves out"
        )
    return "mismatch", f"formula: {g:.3f} vs {doc} G ({g - doc:+.3f})"


def _fvcore_verdict(g: float | None, by_op: dict, skipped: list, doc: float) -> tuple[str, str]:
    if g is None:
        return "failed", "fvcore did not run"
    if _near(g, doc):
        return "match", ""
    products = sum(v for k, v in by_op.items() if k in FVCORE_PRODUCTS) / 1e9
    extra = g - products
    if _near(products, doc):
        return "explained", (
            f"fvcore: its products match; it adds {extra:.3f} G for "
            "BN (2/elem), LN (5/elem) and adaptive pooling"
        )
    if products < doc:
        heavy = [s for s in skipped if any(k in s for k in ("attention", "matmul", "linear"))]
        missing = ", ".join(s.removeprefix("aten::") for s in heavy or skipped[:4])
        return "explained", (
            f"fvcore: {doc - products:.3f} G of products missing: it skips {missing}"
        )
    return "mismatch", f"fvcore: {g:.3f} vs {doc} G ({g - doc:+.3f})"


def count_entry(entry: dict) -> dict:
    """Build one entry's model without weights, count it, and judge each counter."""
    start = time.perf_counter()
    size = entry["input"]
    model, shape = sources.build_torchvision(entry["model"], (1, 3, size, size))
    with sources.with_torch_threads(1):
        df = count_model(model, shape[1:], 1, fvcore=True, ptflops=False)
    total, attrs = df.iloc[-1], df.attrs
    del model
    g = {
        k: None if pd.isna(total[c]) else int(total[c]) / d / 1e9
        for k, c, d in (
            ("formula", "macs_formula", 1),
            ("fvcore", "macs_fvcore", 1),
            ("torch", "flops_torch", 2),
        )
    }
    doc = entry["doc_gflops"]
    verdicts = {
        "params": _params_verdict(int(total["params"]), entry["doc_params"], attrs["unrun_params"]),
        "formula": _formula_verdict(g["formula"], attrs["formula_reads"] / 1e9, doc),
        "fvcore": _fvcore_verdict(
            g["fvcore"], attrs["fvcore_by_operator"], attrs["fvcore_skipped"], doc
        ),
        "torch": ("match", "")
        if _near(g["torch"], doc)
        else ("mismatch", f"torch: {g['torch']:.3f} vs {doc} G"),
    }
    bad = [k for k in ("params", "torch") if verdicts[k][0] == "mismatch"]
    notes = [entry["meta_note"], total["note"], *(v[1] for v in verdicts.values())]
    return {
        **{k: entry[k] for k in ("model", "weights", "input", "doc_params", "doc_gflops")},
        "params": int(total["params"]),
        "gmacs_formula": g["formula"],
        "gmacs_fvcore": g["fvcore"],
        "gmacs_torch": g["torch"],
        **{f"{k}_verdict": v[0] for k, v in verdicts.items()},
        "verdict": "mismatch" if bad or verdicts["formula"][0] == "mismatch" else "match",
        "explanation": "; ".join(n for n in notes if n),
        "seconds": round(time.perf_counter() - start, 2),
        "status": "ok",
    }


def _key(row: dict | pd.Series) -> tuple[str, int]:
    return str(row["model"]), int(row["input"])


def _count_or_error(entry: dict) -> dict:
    """count_entry, or the entry's row with its error: one model's failure is a row."""
    try:
        row = count_entry(entry)
    except Exception as err:
        row = {
            **{k: entry[k] for k in ("model", "weights", "input", "doc_params", "doc_gflops")},
            "verdict": "error",
            "status": "error",
            "explanation": f"{type(err).__name__}: {err}"[:300],
        }
    gc.collect()
    return row


def run_zoo(
    csv: Path,
    write: Callable[[pd.DataFrame, Path], None],
    names: list[str] | None = None,
    *,
    fresh: bool = False,
    progress: Callable | None = None,
    workers: int = 1,
) -> pd.DataFrame:
    """Count every entry, handing the rows so far to ``write(df, csv)`` after each one; rows
    already in ``csv`` with status ok are kept unless ``fresh``. A model that fails becomes a
    row with its error. ``workers`` > 1 counts in that many processes (each on one thread),
    the largest models first so none is left alone at the end: fvcore's traced run of
    regnet_y_128gf at 384 took 65 s and vit_h_14 at 518 29 s of the 452 s a serial run took
    here (2-core AMD EPYC)."""
    csv = Path(csv)
    done: dict[tuple, dict] = {}
    if csv.exists() and not fresh:
        old = pd.read_csv(csv)
        done = {_key(r): r.to_dict() for _, r in old.iterrows() if r.get("status") == "ok"}
    entries = zoo_entries(names)
    order = {_key(e): i for i, e in enumerate(entries)}
    rows = [done[_key(e)] for e in entries if _key(e) in done]
    todo = sorted((e for e in entries if _key(e) not in done), key=lambda e: -e["doc_gflops"])

    def save() -> None:
        rows.sort(key=lambda r: order[_key(r)])
        write(pd.DataFrame(rows, columns=COLUMNS), csv)

    with contextlib.ExitStack() as stack:
        if workers > 1 and len(todo) > 1:
            pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(workers))
            results = pool.imap_unordered(_count_or_error, todo)
        else:
            results = map(_count_or_error, todo)
        bar = progress(results, total=len(todo)) if progress else results
        for row in bar:
            if hasattr(bar, "set_postfix_str"):
                bar.set_postfix_str(f"{row['model']} @ {row['input']}")
            rows.append(row)
            save()
    return pd.DataFrame(sorted(rows, key=lambda r: order[_key(r)]), columns=COLUMNS)


def summary_line(df: pd.DataFrame) -> str:
    counts = df["verdict"].value_counts().to_dict()
    seconds = df["seconds"].sum()
    return (
        f"{len(df)} model/size rows: {counts}; counting took {seconds:.0f} s "
        f"({seconds / 60:.1f} min) of row time"
        if not math.isnan(seconds)
        else ""
    )
