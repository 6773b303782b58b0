"""pytest-benchmark in and out: the timer the benchmark suite hands to the runner, and rows
read back from a saved ``--benchmark-json`` file (``sepbench report --from-pytest-benchmark``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from bench.errors import UserError
from bench.measuring import samples, timing
from bench.measuring.results import COLUMNS, KEY, add_derived

# Row fields the benchmark suite stores in each benchmark's extra_info.
EXTRA_FIELDS = (
    "suite",
    "workload",
    "provider",
    "dtype",
    "batch",
    "kind",
    "shape",
    "macs",
    "macs_fvcore",
    "bytes",
    "max_rel_err",
    "device",
    "backend",
    "layout",
    "threads",
    "baseline",
    "status",
    "message",
    "note",
    "torch_version",
    "triton_version",
    "git_sha",
    "timestamp",
    "elapsed_s",
)
SAMPLES_METHOD = "pytest-benchmark samples"


def benchmark_timer(benchmark: Any, device: str) -> Callable[[Callable[[], object]], timing.Timing]:
    """A runner timer that times with the pytest-benchmark fixture (the clock stops after the
    device finishes). With --benchmark-disable the fixture runs the call once and keeps no
    statistics: the Timing is then NaN and says so."""

    def timer(fn: Callable[[], object]) -> timing.Timing:
        def timed() -> object:
            out = fn()
            timing.synchronize(device)
            return out

        benchmark(timed)
        stats = getattr(benchmark, "stats", None)
        if benchmark.disabled or stats is None:
            nan = math.nan
            return timing.Timing(nan, nan, nan, 1, "pytest-benchmark disabled: ran once, untimed")
        data_ms = [t * 1e3 for t in stats.stats.data]
        p20, p50, p80 = timing.percentiles(data_ms)
        return timing.Timing(p20, p50, p80, stats.stats.rounds, SAMPLES_METHOD, tuple(data_ms))

    return timer


def rows_from_pytest_benchmark(path: Path) -> pd.DataFrame:
    """Rows from a ``pytest --benchmark-json`` file whose benchmarks carry our extra_info.

    p50 is pytest-benchmark's median; p20/p80 come from the raw samples when the file has them
    (--benchmark-save-data), else from its q1/q3 (p25/p75), and the row's message says which.
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read pytest-benchmark JSON {path}: {err}") from err
    benchmarks = data.get("benchmarks") if isinstance(data, dict) else None
    if not isinstance(benchmarks, list):
        raise UserError(f"{path} is not a --benchmark-json file (no 'benchmarks' list)")
    commit = data.get("commit_info") or {}
    rows = []
    for bench in benchmarks:
        if not isinstance(bench, dict) or not isinstance(bench.get("extra_info") or {}, dict):
            raise UserError(f"{path}: a benchmark entry is not a JSON object with extra_info")
        extra = bench.get("extra_info") or {}
        missing = [k for k in KEY if k not in extra]
        if missing:
            raise UserError(
                f"benchmark {bench.get('name')!r} lacks extra_info {missing}: only the suite in "
                "tests/benchmarks/ records them"
            )
        row = {k: extra.get(k) for k in EXTRA_FIELDS}
        stats = bench.get("stats") or {}
        if extra.get("status", "ok") == "ok" and "median" in stats:
            row.update(_latencies(stats, f"{path}: benchmark {bench.get('name')!r}"), status="ok")
        if not row.get("git_sha") and commit.get("id"):
            row["git_sha"] = commit["id"] + ("-dirty" if commit.get("dirty") else "")
        row["timestamp"] = row.get("timestamp") or data.get("datetime")
        rows.append(row)
    return add_derived(pd.DataFrame(rows, columns=COLUMNS))


def _latencies(stats: dict, where: str) -> dict:
    data = stats.get("data")
    data_ms: list[float] = []
    try:
        if data:
            data_ms = [float(s) * 1e3 for s in data]
            p20, p50, p80 = timing.percentiles(data_ms)
            method = SAMPLES_METHOD
        else:
            p20, p50, p80 = (float(stats[k]) * 1e3 for k in ("q1", "median", "q3"))
            method = "pytest-benchmark (p20/p80 columns hold q1/q3)"
    except KeyError as err:
        raise UserError(
            f"{where}: its stats lack {err.args[0]!r} (pytest-benchmark's --benchmark-json "
            "writes q1, median and q3, and the raw samples with --benchmark-save-data)"
        ) from None
    except (TypeError, ValueError) as err:
        raise UserError(f"{where}: its stats hold something that is not a number ({err})") from None
    return {
        "latency_ms_p20": p20,
        "latency_ms_p50": p50,
        "latency_ms_p80": p80,
        "repeats": stats.get("rounds"),
        "timing_method": method,
        samples.COLUMN: samples.encode(data_ms),
    }
