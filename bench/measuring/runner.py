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

import functools
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pandas as pd
import torch

from bench.errors import Interrupted, UserError, error_text
from bench.files import move_aside, write_csv_atomic
from bench.measuring import plans, samples, sharding, slowdown, timing
from bench.measuring.operators import (
    FAMILIES,
    Case,
    Prepared,
    Unavailable,
    baseline_of,
    cases_for,
    compiling,
    max_rel_err,
    provider_names,
)
from bench.measuring.results import (
    COLUMNS,
    DTYPE_PRECISION,
    KEY,
    LASTING,
    PEAKS_SUITE,
    RESULTS_CSV,
    RUN_FIELDS,
    STATUSES,
    add_derived,
    is_done,
    load_results,
    peaks_of,
    run_of,
)
from bench.measuring.suites import Workload
from bench.progress import progress as progress_bar
from bench.provenance import Dist, environment, short_sha, utc_now

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
    *,
    cuda_graph: bool = False,
) -> dict:
    """Prepare, check and time one case into a row; never raises except KeyboardInterrupt /
    SystemExit. ``timer`` replaces bench.measuring.timing's (the pytest-benchmark suite passes
    its own fixture this way, so both paths build the same row); ``budget_s`` caps the seconds
    spent timing a slow case (see timing.time_callable); ``cuda_graph``: the workload's clock
    is CUDA-graph replay (plans.use_cuda_graph decides it per workload). The row's elapsed_s is
    the whole case."""
    start = time.perf_counter()
    row = _measure(case, device, env, min_run_time, timer, budget_s, cuda_graph)
    return {**row, "elapsed_s": time.perf_counter() - start}


def _measure(
    case: Case,
    device: str,
    env: dict,
    min_run_time: float,
    timer: Timer | None,
    budget_s: float | None,
    cuda_graph: bool,
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
        refusal = plans.memory_refusal(case, device)
    except Exception as err:  # a cost model that cannot be evaluated must not stop the run
        _reraise_interrupt(err)
        refusal = None
    if refusal is not None:
        return {**row, "status": "skipped", "message": refusal}
    graphs_before = compiling.graphs_compiled() if case.spec.family == "compile" else 0
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
    prepared = slowdown.applied(case.provider, prepared, case.spec.times)  # test-only; unset: as is
    row.update(
        macs=prepared.macs,
        macs_fvcore=prepared.macs_fvcore,
        bytes=prepared.nbytes,
        backend=prepared.backend,
        precision=prepared.precision or DTYPE_PRECISION.get(row["dtype"], ""),
        note=prepared.note or case.spec.times,
    )
    try:
        row.update(_run_prepared(prepared, device, min_run_time, timer, budget_s, cuda_graph))
    except torch.cuda.OutOfMemoryError as err:
        torch.cuda.empty_cache()
        return {**row, "status": "error", "message": "out of memory: " + error_text(err)}
    except Exception as err:
        _reraise_interrupt(err)
        return {**row, "status": "error", "message": error_text(err)}
    if prepared.compiled is not None:
        row.update(_compile_record(prepared.compiled, graphs_before))
    return row


def _compile_record(frame: compiling.StaticCompile, graphs_before: int) -> dict:
    """compile_graphs / compile_recompiles of a torch.compile row, read from Dynamo; a frame that
    holds no compiled graph ran eagerly, so its latency is not torch.compile's: an error row."""
    entries = frame.entries()
    record: dict = {"compile_graphs": compiling.graphs_compiled() - graphs_before}
    if entries >= 0:
        record["compile_recompiles"] = max(entries - 1, 0)
    if entries == 0:
        record.update(
            status="error",
            message="torch.compile left no compiled graph for this case: it ran eagerly",
        )
    return record


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
    cuda_graph: bool,
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
    if measured is None and cuda_graph:
        try:
            measured = timing.time_callable(prepared.fn, device, cuda_graph=True)
        except Exception as err:  # capture is not allowed for every provider
            _reraise_interrupt(err)
            out["message"] = (
                f"cuda-graph capture failed ({error_text(err)}): timed by do_bench instead, so "
                "no speed-up against this workload's graph-timed rows"
            )
    if measured is None:
        measured = timing.time_callable(
            prepared.fn, device, min_run_time=min_run_time, warmup_calls=0, budget_s=budget_s
        )
    return {
        **out,
        "latency_ms_p50": measured.p50_ms,
        "latency_ms_p20": measured.p20_ms,
        "latency_ms_p80": measured.p80_ms,
        "timing_method": measured.method,
        "repeats": measured.repeats,
        **samples.columns(measured),  # the raw samples, for compare's significance test
        "status": "ok",
    }


def peak_rows(device: str, env: dict) -> list[dict]:
    """The run's roofs as rows of the CSV itself, so plots need nothing else: the copy
    bandwidth, and the matmul rate of each precision (timing.measure_peaks)."""
    peaks = timing.measure_peaks(device)
    common = {"suite": PEAKS_SUITE, "batch": 1, "status": "ok", "timestamp": utc_now(), **env}
    rows = [
        {
            **common,
            "workload": "copy_bandwidth",
            "provider": "tensor_copy",
            "dtype": "float32",
            "shape": "256 MiB copy",
            "gbps": peaks.copy_gbps,
            "note": "(read + write bytes) / median copy time",
        }
    ]
    for roof in peaks.roofs:
        rows.append(
            {
                **common,
                "workload": "matmul_rate",
                "provider": roof.method,
                "dtype": roof.dtype,
                "precision": roof.precision,
                "shape": "3x3 conv 256->256 32x32" if roof.method == "conv3x3" else "square mm",
                "tflops": roof.tflops,
                "note": f"FLOPs / median time: {timing.PRECISIONS[roof.precision]}",
            }
        )
    return rows


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


def select(cases: list[Case], providers: Sequence[str] = (), skip: Sequence[str] = ()) -> list:
    """The cases whose provider (name or family) is in ``providers`` (all when empty) and not in
    ``skip``; a name that is neither a provider nor a family is a UserError listing both."""
    names = {c.provider for c in cases} | set(provider_names())
    families = set(FAMILIES)
    unknown = [p for p in (*providers, *skip) if p not in names and p not in families]
    if unknown:
        raise UserError(
            f"unknown provider or family name(s) {', '.join(unknown)}; providers: "
            f"{', '.join(sorted(names))}; families: {', '.join(FAMILIES)}"
        )

    def chosen(case: Case) -> bool:
        tags = {case.provider, case.spec.family}
        return (not providers or bool(tags & set(providers))) and not tags & set(skip)

    return [c for c in cases if chosen(c)]


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
    providers: Sequence[str] = (),
    skip_providers: Sequence[str] = (),
    ctx: Dist | None = None,
) -> pd.DataFrame:
    """Measure every provider of every workload into ``out_dir``/results.csv; return the rows.
    ``providers`` / ``skip_providers`` (names or families) choose which; rows of others already
    in the file stay. Under torchrun (``ctx`` of several ranks) each rank measures its share of
    the rows still to do and rank 0 merges them (bench.measuring.sharding). Ctrl-C raises
    Interrupted, whose message says how many rows are saved."""
    ctx = ctx or Dist()
    cases = [
        c
        for w in workloads
        for d in dtypes or default_dtypes(device)
        for c in cases_for(w, device, d)
    ]
    cases = select(cases, providers, skip_providers)
    out_dir = Path(out_dir)
    csv = out_dir / RESULTS_CSV
    say = print if progress and ctx.main else _quiet
    if ctx.world > 1:
        sharding.start(ctx, device)
    env = {**environment(device, threads), "size": size}
    if ctx.main:  # fold a previous launch's shards in before anyone counts what is done
        rows = previous_rows(csv, env, fresh, say)
        found = sharding.read_shards(out_dir, env, say)
        if found:
            rows = sharding.merged(rows + found)
            say(f"folded {len(found)} rows of an earlier launch's shards into {csv}")
            write_csv_atomic(add_derived(sharding.ordered(rows, cases)), csv)
            sharding.clear_shards(out_dir)
    sharding.barrier(ctx)
    if not ctx.main:
        rows = load_results(csv).to_dict("records") if csv.exists() else []
    env = {**env, "rank": ctx.rank, "device_index": _device_index(device)}
    done = {_key(r) for r in rows if is_done(r)}
    todo = [c for c in cases if _case_key(c) not in done]
    if rows:
        kept = len(cases) - len(todo)
        say(
            f"resuming: {kept} of {len(cases)} rows already measured in this run at "
            f"{short_sha(env['git_sha'])} ({csv})"
        )
    mine = sharding.split(todo, ctx.world)[ctx.rank] if ctx.world > 1 else todo
    if ctx.world > 1:
        say(f"{len(todo)} rows over {ctx.world} ranks; rank 0 measures {len(mine)}")
    if device == "cuda":
        say(plans.estimate(mine))
    new: list[dict] = []  # this process's rows (a rank's shard)
    target = sharding.shard_path(out_dir, ctx.rank) if ctx.world > 1 else csv

    def save() -> None:
        frame = new if ctx.world > 1 else sharding.merged(rows + new)
        write_csv_atomic(add_derived(sharding.ordered(frame, cases)), target)

    try:
        device_peaks = [r for r in rows if sharding.peaks_of_device(r, env)]
        if not device_peaks:
            new.extend(peak_rows(device, env))
            save()
        copy_gbps, roofs = peaks_of(pd.DataFrame(device_peaks or new, columns=COLUMNS))
        plan = functools.partial(
            plans.use_cuda_graph, device=device, copy_gbps=copy_gbps, roofs=roofs
        )
        _measure_all(mine, new, device, env, min_run_time, budget_s, save, progress, plan, ctx)
    except KeyboardInterrupt:
        save()  # a row appended just before the signal is on disk too, so the count below holds
        saved = sum(r["suite"] != PEAKS_SUITE for r in rows + new)
        raise Interrupted(f"interrupted; {saved} rows saved in {target}; rerun to resume") from None
    if ctx.world > 1:
        sharding.barrier(ctx)
        if ctx.main:
            rows = sharding.merged(rows + sharding.read_shards(out_dir, env, say))
            missing = [c for c in todo if _case_key(c) not in {_key(r) for r in rows}]
            write_csv_atomic(add_derived(sharding.ordered(rows, cases)), csv)
            sharding.clear_shards(out_dir)
            say(
                f"merged {ctx.world} shards into {csv}"
                + (f"; {len(missing)} rows missing" if missing else "")
            )
        sharding.finish(ctx)
        if not ctx.main:
            return add_derived(pd.DataFrame(new, columns=COLUMNS))
        return add_derived(sharding.ordered(rows, cases))
    return add_derived(sharding.ordered(sharding.merged(rows + new), cases))


def _device_index(device: str) -> int | None:
    return torch.cuda.current_device() if device == "cuda" else None


def _measure_all(
    todo: list[Case],
    rows: list[dict],
    device: str,
    env: dict,
    min_run_time: float,
    budget_s: float | None,
    save: Callable[[], None],
    progress: bool,
    plan: Callable[[Case], bool],
    ctx: Dist | None = None,
) -> None:
    bar = progress_bar(
        total=len(todo), unit="row", disable=not progress or not (ctx or Dist()).main
    )
    measured = 0
    while todo:
        # popping drops the last reference to a finished workload's inputs (GPU memory)
        case = todo.pop(0)
        bar.set_description(f"{case.workload.id} {case.provider}"[:60])
        row = measure_case(
            case, device, env, min_run_time, budget_s=budget_s, cuda_graph=plan(case)
        )
        rows[:] = [r for r in rows if _key(r) != _key(row)]
        rows.append(row)
        save()
        bar.update()
        measured += 1
        sharding.maybe_die(ctx or Dist(), measured)
    bar.close()


def _quiet(*_: object) -> None:
    return None
