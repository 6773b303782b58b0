"""summary.md of a report folder: the run's provenance, the 8.7x example, document 001's timing
method against an honest timer, the claims with their verdicts, where the fused kernels lose,
correctness per provider and the rows that did not run. Drawn from results.csv alone."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pandas as pd

from bench.measuring.operators import COMPUTES_WORKLOAD, DWSEP, OPERATORS, family_of
from bench.measuring.results import PEAKS_SUITE, RESULTS_CSV, load_results, ok_rows, peaks_of
from bench.measuring.suites import HEADLINE_ID
from bench.reporting.plots import PLOTS, write_plots


def _fmt(value: object, digits: int = 3) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:.{digits}g}"
    return str(value)


def _table(df: pd.DataFrame) -> str:
    if df.empty:
        return "(none)"
    return df.map(_fmt).to_markdown(index=False)


def headline_table(df: pd.DataFrame) -> pd.DataFrame:
    """Document 001's 8.7x example: the formula's ratio beside the measured ones."""
    standard, eager = DWSEP.baseline.name, DWSEP.document.name
    columns = {
        "eager": eager,
        "compile": DWSEP.names("compile")[0],
        "fused": DWSEP.names("fused")[0],
    }
    rows = []
    head = df[(df["workload"] == HEADLINE_ID) & (df["suite"] == "documents")]
    for (dtype, batch), g in head.groupby(["dtype", "batch"]):
        by = g.drop_duplicates("provider", keep="last").set_index("provider")
        op = math.nan
        if {standard, eager} <= set(by.index):
            op = by.loc[standard, "macs"] / by.loc[eager, "macs"]
        row = {
            "dtype": dtype,
            "batch": batch,
            "operation ratio (formulas)": f"{op:.3g}x" if not math.isnan(op) else "",
            "standard conv p50 ms": _fmt(_latency(by, standard)),
        }
        for label, provider in columns.items():
            row[f"{label} latency ratio"] = _ratio(by, standard, provider)
        rows.append(row)
    return pd.DataFrame(rows)


def _latency(by: pd.DataFrame, provider: str) -> float:
    if provider in by.index and by.loc[provider, "status"] == "ok":
        return float(by.loc[provider, "latency_ms_p50"])
    return math.nan


def _ratio(by: pd.DataFrame, standard: str, provider: str) -> str:
    if provider in by.index and by.loc[provider, "status"] == "interpreter":
        return "not measured on CPU (interpreter)"
    if provider not in by.index or by.loc[provider, "status"] != "ok":
        return "not measured"
    return f"{_latency(by, standard) / _latency(by, provider):.3g}x"


def methodology_table(df: pd.DataFrame) -> pd.DataFrame:
    """Document 001's host-clock method beside the honest timer on the same function."""
    rows = []
    ok = ok_rows(df)
    naive = ok[ok["provider"].map(family_of) == "methodology"]
    key = ["suite", "workload", "dtype", "batch"]
    for _, r in naive.iterrows():
        op = OPERATORS.get(r["kind"])
        honest_name = op.get(r["provider"]).wraps if op is not None else None
        honest = ok[(ok[key] == r[key]).all(axis=1) & (ok["provider"] == honest_name)]
        if honest.empty:
            continue
        h = honest.iloc[-1]
        rows.append(
            {
                "workload": r["workload"],
                "batch": r["batch"],
                "dtype": r["dtype"],
                "same function as": honest_name,
                "naive ms/call": r["latency_ms_p50"],
                "honest p50 ms": h["latency_ms_p50"],
                "naive / honest": r["latency_ms_p50"] / h["latency_ms_p50"],
            }
        )
    return pd.DataFrame(rows)


def fused_losses(df: pd.DataFrame) -> pd.DataFrame:
    """Workloads where a timed fused kernel is slower than the fastest other provider."""
    ok = ok_rows(df)
    family = ok["provider"].map(family_of)
    ok = ok[family.isin(COMPUTES_WORKLOAD)].assign(fused=family == "fused")
    rows = []
    for key, g in ok.groupby(["suite", "workload", "dtype", "batch"]):
        fused, others = g[g["fused"]], g[~g["fused"]]
        if fused.empty or others.empty:
            continue
        best = others.loc[others["latency_ms_p50"].idxmin()]
        for _, f in fused.iterrows():
            if f["latency_ms_p50"] > best["latency_ms_p50"]:
                rows.append(
                    {
                        "suite": key[0],
                        "workload": key[1],
                        "dtype": key[2],
                        "batch": key[3],
                        "fused": f["provider"],
                        "fused p50 ms": f["latency_ms_p50"],
                        "fastest other": best["provider"],
                        "its p50 ms": best["latency_ms_p50"],
                        "fused / fastest": f["latency_ms_p50"] / best["latency_ms_p50"],
                    }
                )
    return pd.DataFrame(rows)


def claims_table(df: pd.DataFrame) -> tuple[pd.DataFrame | None, str]:
    """The claims judged on this run's rows and, as `sepbench claims` does, the training results
    of reports/experiments/ when `make experiments` has written them."""
    try:
        from bench.checking.claims import evaluate_claims
        from bench.checking.sources import (
            default_training_folder,
            training_epochs_of,
            training_of,
        )

        folder = default_training_folder()
        training = training_of(folder) if folder else None
        epochs = training_epochs_of(folder) if folder else None
        return evaluate_claims(results=df, training=training, training_epochs=epochs), ""
    except Exception as err:  # the summary still gets written; it says why the table is missing
        return None, f"{type(err).__name__}: {err}"


def training_source(folder: str | None) -> str:
    """Where the training claims' evidence came from: folder, runs, host, dates, versions."""
    if folder is None:
        return (
            "No training results in reports/experiments/ (`make experiments` writes them): the "
            "training claims are untested here."
        )
    from bench.checking.sources import training_epochs_of, training_of
    from bench.experiments.seeded_runs import COMPARISON
    from bench.provenance import REPO_ROOT, short_sha

    table = training_of(folder)
    epochs = training_epochs_of(folder)
    shown = Path(folder)
    if shown.is_relative_to(REPO_ROOT):
        shown = shown.relative_to(REPO_ROOT)

    def values(frame: pd.DataFrame | None, col: str, fmt=str) -> str:
        if frame is None or col not in frame.columns:
            return "unrecorded"
        return ", ".join(sorted({fmt(v) for v in frame[col].dropna()})) or "unrecorded"

    dates = values(table, "started", lambda v: str(v)[:10])
    return (
        f"The training claims are judged on `{shown}/{COMPARISON}`: {len(table)} runs of "
        f"`sepbench experiments` on {values(table, 'device')} ({values(table, 'threads')} "
        f"thread(s) per run), started {dates}, torch {values(epochs, 'torch_version')}, code "
        f"{values(epochs, 'git_sha', lambda v: short_sha(str(v)))}; not measured by this "
        "report's run (`sepbench claims --training DIR` judges another folder)."
    )


def run_time(df: pd.DataFrame, started: float | None = None) -> str:
    """How long the run took: this command's wall clock when known (``started``, a
    time.perf_counter() value), the measuring time summed over the rows, the slowest row."""
    work = df[df["suite"] != PEAKS_SUITE]
    spent = pd.to_numeric(work["elapsed_s"], errors="coerce")
    parts = []
    if started is not None:
        parts.append(f"this command {time.perf_counter() - started:.0f} s wall (summary included)")
    if spent.notna().any():
        slow = work.loc[spent.idxmax()]
        parts.append(
            f"measuring the rows {spent.sum():.0f} s (elapsed_s summed over every session of "
            f"the run); slowest row {slow['workload']} {slow['provider']}, {spent.max():.1f} s"
        )
    return "; ".join(parts) or "not recorded"


def _header(df: pd.DataFrame, started: float | None = None) -> list[str]:
    """Title, provenance table, and what a CPU report cannot show."""
    work = df[df["suite"] != PEAKS_SUITE]
    first = df.iloc[0] if len(df) else pd.Series(dtype=object)
    copy_gbps, roofs = peaks_of(df)
    status = work["status"].value_counts().to_dict()
    sizes = ", ".join(str(s) for s in work["size"].dropna().unique()) or "unrecorded"
    lines = [
        f"# sepbench report: {first.get('device', 'unknown device')}",
        "",
        "Generated from `results.csv` alone (`sepbench plot DIR` redraws it). "
        "Latencies are medians with p20/p80 in the CSV; ratios compare providers measured in "
        "one run on one machine.",
        "",
        "| | |",
        "|---|---|",
        f"| device | {first.get('device', '')} |",
        f"| threads | {_fmt(first.get('threads', ''))} |",
        f"| torch | {first.get('torch_version', '')} |",
        f"| triton | {first.get('triton_version', '')} |",
        f"| git | {first.get('git_sha', '')} |",
        f"| measured | {work['timestamp'].min()} .. {work['timestamp'].max()} |",
        f"| run time | {run_time(df, started)} |",
        f"| suites (size) | {', '.join(dict.fromkeys(work['suite']))} ({sizes}) |",
        f"| rows | {len(work)} ({', '.join(f'{k} {v}' for k, v in status.items())}) and "
        f"{len(df) - len(work)} peak rows |",
        f"| copy bandwidth (measured) | {_fmt(copy_gbps)} GB/s |",
        *(
            f"| {precision} compute roof (measured; each row's % of peak uses its own "
            f"precision's) | {_fmt(tflops)} TFLOP/s |"
            for precision, tflops in roofs.items()
        ),
        "",
    ]
    ranks = work["rank"].dropna().nunique() if "rank" in work else 0
    if ranks > 1:
        cpu = not str(first.get("device", "")).lower().startswith("nvidia")
        lines += [
            f"Measured by {ranks} torchrun ranks, each row alone on its rank's device, merged "
            "here"
            + (
                ". On a CPU the ranks share the cores, so these timings are not meaningful: "
                "this run checks the sharding, not the speed."
                if cpu
                else " (each row's % of peak uses its own GPU's peaks)."
            ),
            "",
        ]
    if "interpreter" in set(work["status"]):
        lines += [
            "On this device the Triton kernels run under the Triton interpreter: their rows "
            "(status `interpreter`) carry a correctness check on a reduced shape (see each row's "
            "note) and no latency. torch.compile builds C++ per shape on CPU (about 15-20 s "
            "each), so the CPU quick suite compiles only the 8.7x workload, the first RBF size "
            "and lenet5_dw; elsewhere compile rows are absent, not failed.",
            "",
        ]
    return lines


def _claims_section(df: pd.DataFrame) -> list[str]:
    from bench.checking.sources import default_training_folder

    claims, why = claims_table(df)
    lines = ["## Claims of the documents, checked", ""]
    if claims is None:
        return [*lines, f"Claims table unavailable: {why}", ""]
    try:
        lines += [training_source(default_training_folder()), ""]
    except Exception as err:  # the provenance line is a courtesy: never the summary's end
        lines += [f"Where the training results came from could not be read: {err}", ""]
    cols = [
        c
        for c in ("claim_id", "document", "claimed", "measured", "verdict", "note")
        if c in claims.columns
    ]
    from bench.checking.claims import runtime_verdicts

    per_runtime = runtime_verdicts(claims).fillna("")
    return [
        *lines,
        "Speed claims per runtime (verdict: measured ratio, the formulas' ratio beside it; "
        "`claim@runtime` rows below give method and note):",
        "",
        _table(per_runtime),
        "",
        _table(claims[cols]),
        "",
    ]


def _losses_section(df: pd.DataFrame) -> list[str]:
    lines = ["## Where the fused kernels lose", ""]
    losses = fused_losses(df)
    if not (ok_rows(df)["provider"].map(family_of) == "fused").any():
        return [
            *lines,
            "No fused-kernel latency was measured on this device, so nothing to "
            "report here; see a GPU report (e.g. reports/h200/).",
            "",
        ]
    if losses.empty:
        return [
            *lines,
            "In this run every timed fused kernel beat every other non-baseline "
            "provider of its workload.",
            "",
        ]
    return [*lines, _table(losses), ""]


def _correctness_section(df: pd.DataFrame) -> list[str]:
    work = df[df["suite"] != PEAKS_SUITE]
    errs = work[work["provider"].notna()]
    errs = errs.groupby("provider")["max_rel_err"].max().dropna().reset_index()
    failed = work[work["status"].isin(("error", "unavailable"))]
    failed = failed[["suite", "workload", "provider", "dtype", "batch", "status", "message"]]
    return [
        "## Correctness: largest max_rel_err per provider",
        "",
        "max |out - ref| / max |ref| against a float64 reference of the same operation.",
        "",
        _table(errs),
        "",
        "## Rows that did not run",
        "",
        _table(failed),
        "",
    ]


def _compiled_section(out_dir: Path) -> list[str]:
    """The report's kernels compiled for sm_90 (compiled.csv, written by a CPU report)."""
    csv = out_dir / "compiled.csv"
    if not csv.is_file():
        return []
    from bench.reporting.compiled import REPORT_SCOPE, compiled_section

    return [
        "## What a GPU would execute (sm_90, compiled here)",
        "",
        *compiled_section(pd.read_csv(csv), REPORT_SCOPE),
        "![compiled](compiled.png)",
        "",
    ]


def write_summary(df: pd.DataFrame, out_dir: Path, started: float | None = None) -> Path:
    naive = DWSEP.names("methodology")[0]
    lines = [
        *_header(df, started),
        "## The 8.7x example (document 001, 128 -> 256 channels at 32x32)",
        "",
        "Ratios are standard conv over the separable provider (bigger is faster separable).",
        "",
        _table(headline_table(df)),
        "",
        "## Document 001's timing method vs an honest timer",
        "",
        f"`{naive}` reruns document 001's snippet (host clock around 100 calls, no warm-up, no "
        "synchronization) on the same function the honest timer measures.",
        "",
        _table(methodology_table(df)),
        "",
        *_claims_section(df),
        "## Plots",
        "",
        *[f"- [{desc}]({name})" for name, desc in PLOTS.items()],
        "",
        *_losses_section(df),
        *_compiled_section(Path(out_dir)),
        *_correctness_section(df),
    ]
    path = Path(out_dir) / "summary.md"
    path.write_text("\n".join(lines))
    return path


def write_report(out_dir: Path, started: float | None = None) -> list[Path]:
    """Plots and summary.md for the results.csv in ``out_dir``; ``started`` (time.perf_counter()
    at the command's start) puts the command's wall time in the summary."""
    out_dir = Path(out_dir)
    df = load_results(out_dir / RESULTS_CSV)
    return [*write_plots(df, out_dir), write_summary(df, out_dir, started)]
