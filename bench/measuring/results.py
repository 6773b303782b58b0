"""The results.csv schema: columns, row keys and statuses, the derived columns (TFLOP/s, GB/s,
% of the roof, speed-up), and reading and writing the file without ever leaving half of it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd

from bench.errors import UserError
from bench.measuring import roofline

KEY = ("suite", "workload", "provider", "dtype", "batch")
COLUMNS = [
    *KEY,
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
    "threads",
    "timing_method",
    "repeats",
    "torch_version",
    "triton_version",
    "git_sha",
    "timestamp",
    "status",
    "message",
    "note",
    "size",
]
STATUSES = ("ok", "error", "unavailable", "interpreter")
DONE_STATUSES = ("ok", "interpreter")
PEAKS_SUITE = "peaks"
NUMERIC = ("latency_ms_p50", "latency_ms_p20", "latency_ms_p80", "macs", "bytes", "tflops",
           "gbps", "max_rel_err")  # fmt: skip


def work_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The measured workloads: every row but the run's peaks."""
    return df[df["suite"] != PEAKS_SUITE]


def ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Workload rows with a latency."""
    return df[(df["status"] == "ok") & (df["suite"] != PEAKS_SUITE)]


def peaks_of(df: pd.DataFrame) -> tuple[float, float]:
    """(copy GB/s, matmul TFLOP/s) from the peaks rows; NaN when a run has none."""
    peaks = df[df["suite"] == PEAKS_SUITE]
    copy = peaks.loc[peaks["workload"] == "copy_bandwidth", "gbps"]
    mm = peaks.loc[peaks["workload"] == "matmul_rate", "tflops"]
    return (
        float(copy.iloc[-1]) if len(copy) else math.nan,
        float(mm.iloc[-1]) if len(mm) else math.nan,
    )


def add_derived(df: pd.DataFrame) -> pd.DataFrame:
    """TFLOP/s, GB/s, % of the roof and speedup vs the baseline of the same workload/dtype/batch."""
    df = df.reindex(columns=COLUMNS).copy()
    for col in NUMERIC:
        df[col] = pd.to_numeric(df[col], errors="coerce")
    work = df["suite"] != PEAKS_SUITE
    seconds = df["latency_ms_p50"] * 1e-3
    df.loc[work, "tflops"] = 2 * df["macs"] / seconds / 1e12
    df.loc[work, "gbps"] = df["bytes"] / seconds / 1e9
    copy_gbps, mm_tflops = peaks_of(df)
    df["pct_of_peak"] = [
        roofline.pct_of_peak(t, m, b, copy_gbps, mm_tflops) if w else math.nan
        for t, m, b, w in zip(df["tflops"], df["macs"], df["bytes"], work, strict=True)
    ]
    group = ["suite", "workload", "dtype", "batch"]
    base = df[(df["provider"] == df["baseline"]) & (df["status"] == "ok")]
    base = base.set_index(group)["latency_ms_p50"]
    base = base[~base.index.duplicated(keep="last")]
    joined = df.join(base.rename("_base_ms"), on=group)
    df["speedup_vs_baseline"] = joined["_base_ms"] / df["latency_ms_p50"]
    return df


def write_csv_atomic(df: pd.DataFrame, path: Path) -> None:
    """Write to a temp file beside ``path`` and rename over it: never a half-written CSV."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    df.to_csv(tmp, index=False)
    os.replace(tmp, path)


def load_results(path: Path) -> pd.DataFrame:
    """A results.csv as written by this module (missing columns added as empty)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"no results file at {path}; run `sepbench report` first")
    return pd.read_csv(path).reindex(columns=COLUMNS)
