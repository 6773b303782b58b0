"""Run suites into rows: one row per (suite, workload, provider, dtype, batch), resumable.

Every finished row is written at once (whole CSV to a temp file, then os.replace), so killing a
run loses nothing measured. A rerun resumes only a run of the same machine, thread count,
versions, git SHA and size: it keeps the rows measured (ok, interpreter, and unavailable for a
lasting reason) and redoes error / unavailable rows. A results.csv of any other run is moved aside
(results-<sha>-<time>.csv, said on the console), never mixed in. A provider that fails becomes a
row with its status and message; the run goes on. Derived columns (TFLOP/s, GB/s, % of peak,
speedup) are recomputed from the raw columns on every write, so they always agree with the file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
import torch

from bench.errors import Interrupted, UserError, error_text
from bench.files import move_aside, write_csv_atomic
from bench.measuring import timing
from bench.measuring.operators import (
    Case,
    Prepared,
    Unavailable,
    baseline_of,
    cases_for,
    max_rel_err,
)
from bench.measuring.results import (
    COLUMNS,
    KEY,
    LASTING,
    PEAKS_SUITE,
    RESULTS_CSV,
    RUN_FIELDS,
    STATUSES,
    add_derived,
    is_done,
    load_results,
    run_of,
)
from bench.measuring.suites import Workload
from bench.progress import progress as progress_bar
from bench.provenance import environment, short_sha, utc_now

# Below this median a GPU workload is launch-bound; it is re-timed with CUDA-graph replay.
CUDA_GRAPH_BELOW_MS = 0.02
# CPU timer settings per suite size: (min_run_time, per-row budget), seconds. The budget caps
# slow rows at 3 samples (timing.MIN_BUDGET_SAMPLES); the quick CPU report must fit in 150 s.
TIMER_SETTINGS = {"quick": (0.1, 2.0), "smoke": (0.1, 2.0), "full": (0.3, 10.0)}
Timer = Callable[[Callable[[], object]], timing.Timing]


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def measure_case(
    case: Case,
    device: str,
    env: dict,
    min_run_time: float = 0.2,
    timer: Timer | None = None,
    budget_s: float | None = None,
) -> dict:
    """Prepare, check and time one case into a row; never raises except KeyboardInterrupt /
    SystemExit. ``timer`` replaces bench.measuring.timing's (the pytest-benchmark suite passes
    its own fixture this way, so both paths build the same row); ``budget_s`` caps the seconds
    spent timing a slow case (see timing.time_callable). The row's elapsed_s is the whole case."""
    start = time.perf_counter()
    row = _measure(case, device, env, min_run_time, timer, budget_s)
    return {**row, "elapsed_s": time.perf_counter() - start}


def _measure(
    case: Case,
    device: str,
    env: dict,
    min_run_time: float,
    timer: Timer | None,
    budget_s: float | None,
) -> dict:
    row = {
        "suite": case.workload.suite,
        "workload": case.workload.id,
        "provider": case.provider,
        "dtype": _dtype_name(case.dtype),
        "batch": case.workload.batch,
        "shape": case.workload.describe(),
        "kind": case.workload.kind,
        "baseline": baseline_of(case.workload.kind),
        "layout": case.spec.layout,
        "timestamp": utc_now(),
        **env,
    }
    try:
        prepared = case.prepare()
    except Unavailable as err:
        lasting = LASTING if err.lasting else ""
        return {**row, "status": "unavailable", "message": error_text(err) + lasting}
    except ImportError as err:
        return {**row, "status": "unavailable", "message": error_text(err)}
    except Exception as err:
        _reraise_interrupt(err)
        return {**row, "status": "error", "message": error_text(err)}
    row.update(
        macs=prepared.macs,
        macs_fvcore=prepared.macs_fvcore,
        bytes=prepared.nbytes,
        backend=prepared.backend,
        note=prepared.note or case.spec.times,
    )
    try:
        return {**row, **_run_prepared(prepared, device, min_run_time, timer, budget_s)}
    except torch.cuda.OutOfMemoryError as err:
        torch.cuda.empty_cache()
        return {**row, "status": "error", "message": "out of memory: " + error_text(err)}
    except Exception as err:
        _reraise_interrupt(err)
        return {**row, "status": "error", "message": error_text(err)}


def _reraise_interrupt(err: BaseException) -> None:
    """Ctrl-C inside a library that wraps it (torch.compile's InductorError does) is still
    Ctrl-C: a half-measured case must not become an error row."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            raise KeyboardInterrupt from err
        seen = seen.__cause__ or seen.__context__


def _run_prepared(
    prepared: Prepared,
    device: str,
    min_run_time: float,
    timer: Timer | None,
    budget_s: float | None,
) -> dict:
    out: dict = {}
    measured = None
    if prepared.mode == "naive":  # cold, as document 001's snippet runs it
        measured = timing.naive_host_clock(prepared.fn)
    result = prepared.fn()  # also the warm-up: compile, autotune and first-touch happen here
    timing.synchronize(device)
    if prepared.oracle is not None:
        out["max_rel_err"] = max_rel_err(result, prepared.oracle())
    del result
    if prepared.mode == "interpreter":
        return {**out, "status": "interpreter", "message": "no latency: Triton interpreter"}
    if measured is None and timer is not None:
        measured = timer(prepared.fn)
    if measured is None:
        measured = timing.time_callable(
            prepared.fn, device, min_run_time=min_run_time, warmup_calls=0, budget_s=budget_s
        )
        if device == "cuda" and measured.p50_ms < CUDA_GRAPH_BELOW_MS:
            try:
                measured = timing.time_callable(prepared.fn, device, cuda_graph=True)
            except Exception as err:  # capture is not allowed for every provider
                out["message"] = f"cuda-graph replay failed ({error_text(err)}); do_bench kept"
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
    common = {"suite": PEAKS_SUITE, "batch": 1, "status": "ok", "timestamp": utc_now(), **env}
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


def previous_rows(csv: Path, env: dict, fresh: bool, say: Callable[[str], None]) -> list[dict]:
    """The rows of this run already in ``csv``: same machine, threads, versions, git SHA and size
    (RUN_FIELDS). A file of any other run, or any file under ``fresh``, is moved aside and said
    so; a file that cannot be read is a UserError (nothing is overwritten unread)."""
    if not csv.exists():
        return []
    if fresh:
        say(f"--fresh: {csv} moved to {_move_aside(csv, []).name}; measuring anew")
        return []
    try:
        df = load_results(csv)
    except UserError as err:
        raise UserError(f"{err}; pass --fresh to move it aside, or choose another --out") from None
    rows = [r for r in df.to_dict("records") if r["status"] in STATUSES]
    dropped = df.attrs.get("dropped", 0) + len(df) - len(rows)
    if dropped:
        say(f"dropped {dropped} incomplete row(s) of {csv} (a run killed while writing)")
    if {run_of(r) for r in rows} == {run_of(env)}:
        return rows
    why = _difference(rows, env)
    say(f"{csv} holds another run ({why}): moved to {_move_aside(csv, rows).name}; measuring anew")
    return []


def _difference(rows: list[dict], env: dict) -> str:
    now = run_of(env)
    parts = []
    for i, field in enumerate(RUN_FIELDS):
        seen = sorted({run_of(r)[i] for r in rows})
        if seen != [now[i]]:
            show = short_sha if field == "git_sha" else str
            parts.append(f"{field} {', '.join(map(show, seen))}, now {show(now[i])}")
    return "; ".join(parts) or "no rows"


def _move_aside(csv: Path, rows: Iterable[dict]) -> Path:
    """results.csv -> results-<sha>-<time>.csv, the sha of the code that wrote its rows."""
    shas = {str(r.get("git_sha")) for r in rows}
    return move_aside(csv, short_sha(shas.pop()) if len(shas) == 1 else None)


def run(
    workloads: Iterable[Workload],
    out_dir: Path,
    device: str = "cpu",
    *,
    fresh: bool = False,
    dtypes: tuple[torch.dtype, ...] | None = None,
    min_run_time: float = 0.1,
    budget_s: float | None = None,
    threads: int | None = None,
    progress: bool = True,
    size: str = "",
) -> pd.DataFrame:
    """Measure every provider of every workload into ``out_dir``/results.csv; return the rows.
    Ctrl-C raises Interrupted, whose message says how many rows are saved where."""
    csv = Path(out_dir) / RESULTS_CSV
    say = print if progress else _quiet
    env = {**environment(device, threads), "size": size}
    rows = previous_rows(csv, env, fresh, say)

    def save() -> None:
        write_csv_atomic(add_derived(pd.DataFrame(rows, columns=COLUMNS)), csv)

    cases = [
        c
        for w in workloads
        for d in dtypes or default_dtypes(device)
        for c in cases_for(w, device, d)
    ]
    done = {_key(r) for r in rows if is_done(r)}
    todo = [c for c in cases if _case_key(c) not in done]
    if rows:
        kept = len(cases) - len(todo)
        say(
            f"resuming: {kept} of {len(cases)} rows already measured in this run at "
            f"{short_sha(env['git_sha'])} ({csv})"
        )
    del cases
    try:
        if not any(r["suite"] == PEAKS_SUITE for r in rows):
            rows.extend(peak_rows(device, env))
            save()
        _measure_all(todo, rows, device, env, min_run_time, budget_s, save, progress)
    except KeyboardInterrupt:
        saved = sum(r["suite"] != PEAKS_SUITE for r in rows)
        raise Interrupted(f"interrupted; {saved} rows saved in {csv}; rerun to resume") from None
    return add_derived(pd.DataFrame(rows, columns=COLUMNS))


def _measure_all(
    todo: list[Case],
    rows: list[dict],
    device: str,
    env: dict,
    min_run_time: float,
    budget_s: float | None,
    save: Callable[[], None],
    progress: bool,
) -> None:
    bar = progress_bar(total=len(todo), unit="row", disable=not progress)
    while todo:
        # popping drops the last reference to a finished workload's inputs (GPU memory)
        case = todo.pop(0)
        bar.set_description(f"{case.workload.id} {case.provider}"[:60])
        row = measure_case(case, device, env, min_run_time, budget_s=budget_s)
        rows[:] = [r for r in rows if _key(r) != _key(row)]
        rows.append(row)
        save()
        bar.update()
    bar.close()


def _quiet(*_: object) -> None:
    return None
