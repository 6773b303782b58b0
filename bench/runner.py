"""Run suites into rows: one row per (suite, workload, provider, dtype, batch), resumable.

Every finished row is written at once (whole CSV to a temp file, then os.replace), so killing a
run loses nothing measured; a rerun skips rows whose status is ok or interpreter and redoes
error / unavailable rows (a kernel may have arrived since). A provider that fails becomes a row
with its status and message; the run goes on. Derived columns (TFLOP/s, GB/s, % of peak,
speedup) are recomputed from the raw columns on every write, so they always agree with the file.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import torch

from bench import roofline, timing
from bench.errors import UserError
from bench.providers import Case, Prepared, Unavailable, baseline_of, cases_for, max_rel_err
from bench.suites import SUITES, DwsepShape, ModelShape, RbfShape, Workload, build_suites

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
REPO_ROOT = Path(__file__).resolve().parent.parent
# CPU runs use one thread unless SEPBENCH_THREADS says otherwise: on a machine whose cores are
# shared, two OpenMP threads stalled at barriers (a 4->8 channel 8x8 conv: 24-48 ms with 2
# threads vs 0.008 ms with 1, measured on the 2-core reference machine).
CPU_THREADS_ENV = "SEPBENCH_THREADS"
# Below this median a GPU workload is launch-bound; it is re-timed with CUDA-graph replay.
CUDA_GRAPH_BELOW_MS = 0.02


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise UserError(f"--device must be auto, cpu or cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is visible (torch.cuda.is_available())")
    return device


def device_name(device: str) -> str:
    """The hardware's own name: 'NVIDIA H200', or the CPU model."""
    if device == "cuda":
        return torch.cuda.get_device_name()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def device_slug(device: str, name: str | None = None) -> str:
    """Folder name under reports/: 'cpu' for any CPU, 'h200' for an 'NVIDIA H200'."""
    if device == "cpu":
        return "cpu"
    name = (name or device_name(device)).lower().replace("nvidia", "").strip()
    return re.sub(r"[^a-z0-9]+", "-", name).strip("-") or "cuda"


def default_out(device: str) -> Path:
    return REPO_ROOT / "reports" / device_slug(device)


def git_sha() -> str:
    """HEAD's SHA, with '-dirty' when the working tree has changes; 'unknown' outside git."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def default_threads(device: str) -> int | None:
    """Threads to fix for a run: SEPBENCH_THREADS, else 1 on CPU; None leaves torch's choice."""
    value = os.environ.get(CPU_THREADS_ENV)
    if value:
        if not value.isdigit() or int(value) < 1:
            raise UserError(f"{CPU_THREADS_ENV} must be a positive integer, got {value!r}")
        return int(value)
    return 1 if device == "cpu" else None


def environment(device: str, threads: int | None = None) -> dict:
    """Columns shared by every row of a run (thread count fixed here and recorded)."""
    if threads is None:
        threads = default_threads(device)
    return {
        "device": device_name(device),
        "threads": timing.set_threads(threads),
        "torch_version": torch.__version__,
        "triton_version": _version("triton"),
        "git_sha": git_sha(),
    }


def describe_shape(workload: Workload) -> str:
    s, b = workload.shape, workload.batch
    if isinstance(s, DwsepShape):
        return (
            f"N{b} C{s.in_ch}->{s.out_ch} {s.h}x{s.w} k{s.kernel} s{s.stride} p{s.pad} "
            f"act={s.activation} pw_act={s.pw_activation}"
        )
    if isinstance(s, RbfShape):
        return f"B{s.batch} D{s.dim} K{s.centers}" + (" fwd+bwd" if s.loss else "")
    if isinstance(s, ModelShape):
        return f"N{b} model {s.name}"
    raise TypeError(f"unknown shape {s!r}")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _short(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}".strip().replace("\n", " ")
    return text if len(text) <= 300 else text[:297] + "..."


def measure_case(case: Case, device: str, env: dict, min_run_time: float = 0.2) -> dict:
    """Prepare, check and time one case; never raises except KeyboardInterrupt / SystemExit."""
    row = {
        "suite": case.workload.suite,
        "workload": case.workload.id,
        "provider": case.provider,
        "dtype": _dtype_name(case.dtype),
        "batch": case.workload.batch,
        "shape": describe_shape(case.workload),
        "baseline": baseline_of(case.workload.kind),
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
        layout=prepared.layout,
        note=prepared.note,
    )
    try:
        return {**row, **_run_prepared(prepared, device, min_run_time)}
    except torch.cuda.OutOfMemoryError as err:
        torch.cuda.empty_cache()
        return {**row, "status": "error", "message": "out of memory: " + _short(err)}
    except Exception as err:
        return {**row, "status": "error", "message": _short(err)}


def _run_prepared(prepared: Prepared, device: str, min_run_time: float) -> dict:
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


def add_derived(df: pd.DataFrame) -> pd.DataFrame:
    """TFLOP/s, GB/s, % of the roof and speedup vs the baseline of the same workload/dtype/batch."""
    df = df.reindex(columns=COLUMNS).copy()
    for col in ("latency_ms_p50", "macs", "bytes", "tflops", "gbps", "max_rel_err"):
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


def peaks_of(df: pd.DataFrame) -> tuple[float, float]:
    """(copy GB/s, matmul TFLOP/s) from the peaks rows; NaN when a run has none."""
    peaks = df[df["suite"] == PEAKS_SUITE]
    copy = peaks.loc[peaks["workload"] == "copy_bandwidth", "gbps"]
    mm = peaks.loc[peaks["workload"] == "matmul_rate", "tflops"]
    return (
        float(copy.iloc[-1]) if len(copy) else math.nan,
        float(mm.iloc[-1]) if len(mm) else math.nan,
    )


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


# ---------------------------------------------------------------------------------------------
# pytest-benchmark JSON -> rows

EXTRA_FIELDS = (
    "suite", "workload", "provider", "dtype", "batch", "shape", "macs", "macs_fvcore", "bytes",
    "max_rel_err", "device", "backend", "layout", "threads", "baseline", "status", "message",
    "note", "torch_version", "triton_version", "git_sha",
)  # fmt: skip


def rows_from_pytest_benchmark(path: Path) -> pd.DataFrame:
    """Rows from a ``pytest --benchmark-json`` file whose benchmarks carry our extra_info.

    p50 is pytest-benchmark's median; p20/p80 come from the raw samples when the file has them
    (--benchmark-save-data), else from its q1/q3 (p25/p75), and the row's message says which.
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"cannot read pytest-benchmark JSON {path}: {err}") from err
    benchmarks = data.get("benchmarks") if isinstance(data, dict) else None
    if not isinstance(benchmarks, list):
        raise UserError(f"{path} is not a --benchmark-json file (no 'benchmarks' list)")
    commit = data.get("commit_info") or {}
    rows = []
    for bench in benchmarks:
        extra = bench.get("extra_info") or {}
        missing = [k for k in KEY if k not in extra]
        if missing:
            raise UserError(
                f"benchmark {bench.get('name')!r} lacks extra_info {missing}: only the suite in "
                "tests/benchmarks/ records them"
            )
        row = {k: extra.get(k) for k in EXTRA_FIELDS}
        stats = bench.get("stats") or {}
        samples = stats.get("data")
        if extra.get("status", "ok") == "ok" and "median" in stats:
            if samples:
                p20, p50, p80 = timing._percentiles([s * 1e3 for s in samples])
                method = "pytest-benchmark samples"
            else:
                p20, p50, p80 = stats["q1"] * 1e3, stats["median"] * 1e3, stats["q3"] * 1e3
                method = "pytest-benchmark (p20/p80 columns hold q1/q3)"
            row.update(
                latency_ms_p20=p20,
                latency_ms_p50=p50,
                latency_ms_p80=p80,
                repeats=stats.get("rounds"),
                timing_method=method,
                status="ok",
            )
        if not row.get("git_sha") and commit.get("id"):
            row["git_sha"] = commit["id"] + ("-dirty" if commit.get("dirty") else "")
        row["timestamp"] = data.get("datetime", _now())
        rows.append(row)
    return add_derived(pd.DataFrame(rows, columns=COLUMNS))


# ---------------------------------------------------------------------------------------------
# CLI


def cli_report(args) -> int:
    """`sepbench report`: measure (or convert a pytest-benchmark file), then plots + summary."""
    from bench import report

    size = getattr(args, "size", "quick") or "quick"
    if args.from_pytest_benchmark:
        df = rows_from_pytest_benchmark(Path(args.from_pytest_benchmark))
        devices = df["device"].dropna().unique()
        if args.out:
            out = Path(args.out)
        else:
            name = str(devices[0]) if len(devices) else "unknown"
            is_cpu = not name.lower().startswith("nvidia")
            out = REPO_ROOT / "reports" / device_slug("cpu" if is_cpu else "cuda", name)
        write_csv_atomic(df, out / "results.csv")
    else:
        suites = args.suite or list(SUITES)
        unknown = [s for s in suites if s not in SUITES]
        if unknown:
            raise UserError(f"unknown suite(s) {unknown}; choose from {', '.join(SUITES)}")
        device = resolve_device(args.device)
        out = Path(args.out) if args.out else default_out(device)
        workloads = build_suites(suites, size, device)
        df = run(
            workloads,
            out,
            device,
            fresh=args.fresh,
            size=size,
            min_run_time=0.1 if size != "full" else 0.3,
        )
    paths = report.write_report(out)
    counts = df[df["suite"] != PEAKS_SUITE]["status"].value_counts().to_dict()
    print(f"{len(df)} rows in {out / 'results.csv'} ({counts})")
    for p in paths:
        print(f"wrote {p}")
    return 0
