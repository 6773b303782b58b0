"""Run suites into rows: one row per (suite, workload, provider, dtype, batch), resumable.

Every finished row is written at once (whole CSV to a temp file, then os.replace), so killing a
run loses nothing measured; a rerun skips rows whose status is ok or interpreter and redoes
error / unavailable rows (a kernel may have arrived since). A provider that fails becomes a row
with its status and message; the run goes on. Derived columns (TFLOP/s, GB/s, % of peak,
speedup) are recomputed from the raw columns on every write, so they always agree with the file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
import torch

from bench.measuring import timing
from bench.measuring.operators import (
    Case,
    Prepared,
    Unavailable,
    baseline_of,
    cases_for,
    max_rel_err,
)
from bench.measuring.provenance import environment
from bench.measuring.results import (
    COLUMNS,
    DONE_STATUSES,
    KEY,
    PEAKS_SUITE,
    add_derived,
    load_results,
    write_csv_atomic,
)
from bench.measuring.suites import Workload

# Below this median a GPU workload is launch-bound; it is re-timed with CUDA-graph replay.
CUDA_GRAPH_BELOW_MS = 0.02
Timer = Callable[[Callable[[], object]], timing.Timing]


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _short(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}".strip().replace("\n", " ")
    return text if len(text) <= 300 else text[:297] + "..."


def measure_case(
    case: Case, device: str, env: dict, min_run_time: float = 0.2, timer: Timer | None = None
) -> dict:
    """Prepare, check and time one case into a row; never raises except KeyboardInterrupt /
    SystemExit. ``timer`` replaces bench.measuring.timing's (the pytest-benchmark suite passes
    its own fixture this way, so both paths build the same row)."""
    row = {
        "suite": case.workload.suite,
        "workload": case.workload.id,
        "provider": case.provider,
        "dtype": _dtype_name(case.dtype),
        "batch": case.workload.batch,
        "shape": case.workload.describe(),
        "baseline": baseline_of(case.workload.kind),
        "layout": case.spec.layout,
        "timestamp": _now(),
        **env,
    }
    try:
        prepared = case.prepare()
    except (Unavailable, ImportError) as err:
        return {**row, "status": "unavailable", "message": _short(err)}
    except Exception as err:
        return {**row, "status": "error", "message": _short(err)}
    row.update(
        macs=prepared.macs,
        macs_fvcore=prepared.macs_fvcore,
        bytes=prepared.nbytes,
        backend=prepared.backend,
        note=prepared.note or case.spec.times,
    )
    try:
        return {**row, **_run_prepared(prepared, device, min_run_time, timer)}
    except torch.cuda.OutOfMemoryError as err:
        torch.cuda.empty_cache()
        return {**row, "status": "error", "message": "out of memory: " + _short(err)}
    except Exception as err:
        return {**row, "status": "error", "message": _short(err)}


def _run_prepared(
    prepared: Prepared, device: str, min_run_time: float, timer: Timer | None
) -> dict:
    out: dict = {}
    measured = None
    if prepared.mode == "naive":  # cold, as document 001's snippet runs it
        measured = timing.naive_host_clock(prepared.fn)
    result = prepared.fn()
    timing.synchronize(device)
    if prepared.oracle is not None:
        out["max_rel_err"] = max_rel_err(result, prepared.oracle())
    del result
    if prepared.mode == "interpreter":
        return {**out, "status": "interpreter", "message": "no latency: Triton interpreter"}
    if measured is None and timer is not None:
        measured = timer(prepared.fn)
    if measured is None:
        measured = timing.time_callable(prepared.fn, device, min_run_time=min_run_time)
        if device == "cuda" and measured.p50_ms < CUDA_GRAPH_BELOW_MS:
            try:
                measured = timing.time_callable(prepared.fn, device, cuda_graph=True)
            except Exception as err:  # capture is not allowed for every provider
                out["message"] = f"cuda-graph replay failed ({_short(err)}); do_bench kept"
    return {
        **out,
        "latency_ms_p50": measured.p50_ms,
        "latency_ms_p20": measured.p20_ms,
        "latency_ms_p80": measured.p80_ms,
        "timing_method": measured.method,
        "repeats": measured.repeats,
        "status": "ok",
    }


def peak_rows(device: str, env: dict) -> list[dict]:
    """The run's roofs as rows of the CSV itself, so plots need nothing else."""
    peaks = timing.measure_peaks(device)
    common = {"suite": PEAKS_SUITE, "batch": 1, "status": "ok", "timestamp": _now(), **env}
    return [
        {
            **common,
            "workload": "copy_bandwidth",
            "provider": "tensor_copy",
            "dtype": "float32",
            "shape": "256 MiB copy",
            "gbps": peaks.copy_gbps,
            "note": "(read + write bytes) / median copy time",
        },
        {
            **common,
            "workload": "matmul_rate",
            "provider": peaks.matmul_method,
            "dtype": peaks.matmul_dtype,
            "shape": "square matmul"
            if peaks.matmul_method == "torch_mm"
            else "3x3 conv 256->256 32x32",
            "tflops": peaks.matmul_tflops,
            "note": "FLOPs / median time of the faster of torch.mm and (CPU) a dense 3x3 conv",
        },
    ]


def _key(row: dict) -> tuple:
    return tuple(str(row[k]) for k in KEY)


def _case_key(case: Case) -> tuple:
    w = case.workload
    return (w.suite, w.id, case.provider, _dtype_name(case.dtype), str(w.batch))


def default_dtypes(device: str) -> tuple[torch.dtype, ...]:
    return (torch.float32,) if device == "cpu" else (torch.float32, torch.float16)


def run(
    workloads: Iterable[Workload],
    out_dir: Path,
    device: str = "cpu",
    *,
    fresh: bool = False,
    dtypes: tuple[torch.dtype, ...] | None = None,
    min_run_time: float = 0.1,
    threads: int | None = None,
    progress: bool = True,
    size: str = "",
) -> pd.DataFrame:
    """Measure every provider of every workload into ``out_dir``/results.csv; return the rows."""
    from tqdm.auto import tqdm

    csv = Path(out_dir) / "results.csv"
    rows: list[dict] = []
    if csv.exists() and not fresh:
        rows = [r for r in load_results(csv).to_dict("records")]
    env = {**environment(device, threads), "size": size}

    def save() -> None:
        write_csv_atomic(add_derived(pd.DataFrame(rows, columns=COLUMNS)), csv)

    if not any(r["suite"] == PEAKS_SUITE for r in rows):
        rows.extend(peak_rows(device, env))
        save()
    done = {_key(r) for r in rows if r["status"] in DONE_STATUSES}
    cases = [
        c
        for w in workloads
        for d in dtypes or default_dtypes(device)
        for c in cases_for(w, device, d)
    ]
    todo = [c for c in cases if _case_key(c) not in done]
    del cases
    bar = tqdm(total=len(todo), disable=not progress, unit="row", dynamic_ncols=True)
    while todo:
        # popping drops the last reference to a finished workload's inputs (GPU memory)
        case = todo.pop(0)
        bar.set_description(f"{case.workload.id} {case.provider}"[:60])
        row = measure_case(case, device, env, min_run_time)
        rows = [r for r in rows if _key(r) != _key(row)]
        rows.append(row)
        save()
        bar.update()
    bar.close()
    return add_derived(pd.DataFrame(rows, columns=COLUMNS))
