"""The results.csv schema: columns, row keys and statuses, the derived columns (TFLOP/s, GB/s,
% of the roof, speed-up), which rows one run owns, and reading the file (checked, with a message
naming what is wrong) and writing it (never half of it).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from bench.errors import UserError
from bench.files import read_csv
from bench.measuring import roofline
from bench.measuring.suites import kind_of_workload_id
from bench.measuring.timing import method_family

KEY = ("suite", "workload", "provider", "dtype", "batch")
COLUMNS = [
    *KEY,
    "kind",  # the operator of the workload: dwsep, rbf, rbfloss, model
    "shape",
    "latency_ms_p50",
    "latency_ms_p20",
    "latency_ms_p80",
    "macs",
    "macs_fvcore",
    "bytes",
    "tflops",
    "gbps",
    "pct_of_peak",
    "speedup_vs_baseline",
    "baseline",
    "max_rel_err",
    "device",
    "backend",
    "layout",
    "precision",  # the arithmetic the row ran on: fp16, bf16, tf32 or fp32 (timing.PRECISIONS)
    "threads",
    "timing_method",
    "repeats",
    "compile_graphs",  # torch.compile rows: graphs Dynamo compiled for the case (one, static)
    "compile_recompiles",  # ... and recompiles of its frame (zero)
    "torch_version",
    "triton_version",
    "git_sha",
    "timestamp",
    "status",
    "message",
    "note",
    "size",
    "rank",  # the torchrun rank that measured it (0 in a plain run)
    "device_index",  # the GPU it ran on (empty on CPU)
    "elapsed_s",  # seconds the runner spent on the row: setup, check and timing
    "samples_ms",  # the raw samples (bench.measuring.samples): compare tests them
]
RESULTS_CSV = "results.csv"
# DESIGN.md's contract: a file without one of these is not a results.csv.
REQUIRED_COLUMNS = (
    *KEY,
    "shape",
    "latency_ms_p50",
    "latency_ms_p20",
    "latency_ms_p80",
    "macs",
    "bytes",
    "tflops",
    "gbps",
    "speedup_vs_baseline",
    "max_rel_err",
    "device",
    "torch_version",
    "triton_version",
    "git_sha",
    "timestamp",
    "status",
)
STATUSES = ("ok", "error", "unavailable", "interpreter", "skipped")
DONE_STATUSES = ("ok", "interpreter")
# Appended to the message of an "unavailable" row whose reason holds for this code on this device
# (the interpreter's size limit): a resumed run keeps the row instead of trying again.
LASTING = " [lasting: not retried when this run resumes]"
PEAKS_SUITE = "peaks"
NUMERIC = (
    "latency_ms_p50",
    "latency_ms_p20",
    "latency_ms_p80",
    "macs",
    "bytes",
    "tflops",
    "gbps",
    "max_rel_err",
)
# Must hold a number (or nothing) in a results.csv this module reads back.
CHECKED_NUMERIC = (
    "compile_graphs",
    "compile_recompiles",
    *NUMERIC,
    "batch",
    "macs_fvcore",
    "pct_of_peak",
    "speedup_vs_baseline",
    "threads",
    "repeats",
    "rank",
    "device_index",
    "elapsed_s",
)
# What makes two rows rows of one run: same machine, thread count, versions, code and size.
RUN_FIELDS = ("device", "threads", "torch_version", "triton_version", "git_sha", "size")


def work_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The measured workloads: every row but the run's peaks."""
    return df[df["suite"] != PEAKS_SUITE]


def ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Workload rows with a latency."""
    return df[(df["status"] == "ok") & (df["suite"] != PEAKS_SUITE)]


# A row's precision when it names none (older files; CPU rows): its dtype's own arithmetic.
DTYPE_PRECISION = {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32"}


def peaks_of(df: pd.DataFrame) -> tuple[float, dict[str, float]]:
    """(copy GB/s, {precision: matmul TFLOP/s}) from the peaks rows; NaN / {} when a run has
    none. Rows written before peaks carried a precision count as their dtype's."""
    peaks = df[df["suite"] == PEAKS_SUITE]
    copy = peaks.loc[peaks["workload"] == "copy_bandwidth", "gbps"]
    roofs = {}
    for _, r in peaks[peaks["workload"] == "matmul_rate"].iterrows():
        precision = r.get("precision")
        if not isinstance(precision, str):
            precision = DTYPE_PRECISION.get(str(r["dtype"]), str(r["dtype"]))
        roofs[precision] = float(r["tflops"])
    return (float(copy.iloc[-1]) if len(copy) else math.nan), roofs


def row_precisions(df: pd.DataFrame) -> pd.Series:
    """Each row's precision, its dtype's when it names none."""
    default = df["dtype"].astype(str).map(DTYPE_PRECISION)
    return df["precision"].where(df["precision"].notna(), default)


def fill_kinds(df: pd.DataFrame) -> pd.DataFrame:
    """Rows written before rows carried their operator ``kind`` get it from their workload id."""
    kind = df["kind"].astype("object")
    legacy = kind.isna() & (df["suite"] != PEAKS_SUITE)
    kind[legacy] = df.loc[legacy, "workload"].map(kind_of_workload_id)
    return df.assign(kind=kind)


def add_derived(df: pd.DataFrame) -> pd.DataFrame:
    """TFLOP/s, GB/s, % of the roof and speedup vs the baseline of the same workload/dtype/batch."""
    df = fill_kinds(df.reindex(columns=COLUMNS))
    for col in NUMERIC:
        df[col] = pd.to_numeric(df[col], errors="coerce")
    work = df["suite"] != PEAKS_SUITE
    seconds = df["latency_ms_p50"] * 1e-3
    df.loc[work, "tflops"] = 2 * df["macs"] / seconds / 1e12
    df.loc[work, "gbps"] = df["bytes"] / seconds / 1e9
    precision = row_precisions(df)
    pct = pd.Series(math.nan, index=df.index)
    # each row against the peaks of the device it ran on (a sharded run measures every GPU's)
    device = df["device_index"].astype("string").fillna("")
    for index in device[work].unique():
        own = df[(df["suite"] == PEAKS_SUITE) & (device == index)]
        copy_gbps, roofs = peaks_of(own if len(own) else df)
        rows = work & (device == index)
        pct[rows] = [
            roofline.pct_of_peak(t, m, b, copy_gbps, roofs.get(p, math.nan))
            for t, m, b, p in zip(
                df.loc[rows, "tflops"],
                df.loc[rows, "macs"],
                df.loc[rows, "bytes"],
                precision[rows],
                strict=True,
            )
        ]
    df["pct_of_peak"] = pct
    # Speed-up against the baseline of the same workload, dtype and batch, timed by the same
    # clock (timing.method_family): a ratio of two methods is no speed-up.
    group = ["suite", "workload", "dtype", "batch", "_clock"]
    df["_clock"] = df["timing_method"].map(timing_family)
    base = df[(df["provider"] == df["baseline"]) & (df["status"] == "ok")]
    base = base.set_index(group)["latency_ms_p50"]
    base = base[~base.index.duplicated(keep="last")]
    joined = df.join(base.rename("_base_ms"), on=group)
    df["speedup_vs_baseline"] = joined["_base_ms"] / df["latency_ms_p50"]
    return df.drop(columns="_clock")


def timing_family(method: object) -> str:
    """timing.method_family of a timing_method cell ("" for none)."""
    return method_family(method) if isinstance(method, str) else ""


def is_done(row: dict) -> bool:
    """Whether a resumed run keeps ``row`` rather than measuring it again."""
    if row["status"] in DONE_STATUSES:
        return True
    return row["status"] == "unavailable" and str(row.get("message", "")).endswith(LASTING)


def run_of(row: dict) -> tuple[str, ...]:
    """The run a row belongs to (RUN_FIELDS as text; threads 1 and 1.0 are one run)."""
    return tuple(_text(row.get(f)) for f in RUN_FIELDS)


def _text(value: object) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:g}"
    return str(value)


def load_results(path: Path) -> pd.DataFrame:
    """A results.csv as written by the runner (missing optional columns added empty).

    A UserError names the file and what is wrong: missing, empty, not text, not a CSV, a key
    column missing, text in a numeric column. A last line cut mid-row (a writer killed while
    writing; the runner replaces the file whole, so never ours) is dropped and counted in
    ``df.attrs["dropped"]``. Files written before rows carried their operator ``kind`` get it
    from their workload ids.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"no results file at {path}; run `sepbench report` first")
    df = read_csv(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        has = ", ".join(map(str, df.columns[:8])) + (" ..." if df.shape[1] > 8 else "")
        raise UserError(
            f"{path} lacks the column(s) {', '.join(missing)}: not a sepbench results.csv "
            f"(its columns: {has})"
        )
    if df.empty:
        raise UserError(f"{path} has a header but no rows")
    _check_numeric(df, path)
    dropped = df.attrs.get("dropped", 0)
    df = df.reindex(columns=COLUMNS)
    df = fill_kinds(df)
    df.attrs["dropped"] = dropped
    return df


def _check_numeric(df: pd.DataFrame, path: Path) -> None:
    for col in CHECKED_NUMERIC:
        if col not in df.columns:
            continue
        bad = df[col].notna() & pd.to_numeric(df[col], errors="coerce").isna()
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise UserError(
                f"{path}: column {col} holds {df[col].iloc[i]!r} on line {i + 2}, not a number"
            )
