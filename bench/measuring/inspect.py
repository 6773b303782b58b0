"""Compiled-kernel analysis that needs no GPU: every Triton kernel of the suite, for each workload,
dtype, layout, autotune config the size pruning keeps and target (sm_80, sm_90), compiled exactly
as a launch would compile it, with registers, spills, shared memory, occupancy and the SASS mix.

The launches are built by the kernels' own launch functions on meta tensors of the workload's
shape (nothing is allocated), in worker processes that import the kernels with
TRITON_INTERPRET=0; kernels._compiled compiles and reads each cubin and caches the figures.
Launches that specialise identically (batch 1 and 64 of one shape, say) compile once.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench.errors import UserError, error_text
from bench.measuring.inspect_traffic import TRAFFIC_COLUMNS
from bench.measuring.suites import HEADLINE_ID, DwsepShape, RbfShape, Workload, build_suites
from bench.progress import progress

KERNELS = ("dwsep", "rbf_distance", "rbf_loss_fwd", "rbf_loss_grad_x", "rbf_loss_grad_c")
DEFAULT_SUITES = ("documents", "mobilenet", "rbf")
DTYPES = ("float32", "float16", "bfloat16")
# kernel name here -> key of kernels.rbf.TUNABLES
RBF_TUNABLES = {
    "rbf_distance": "distance",
    "rbf_loss_fwd": "loss_fwd",
    "rbf_loss_grad_x": "grad_x",
    "rbf_loss_grad_c": "grad_c",
}
FIGURE_COLUMNS = [
    "registers",
    "spill_bytes",
    "stack_bytes",
    "shared_bytes",
    "occupancy",
    "blocks_per_sm",
    "ldg_8",
    "ldg_16",
    "ldg_32",
    "ldg_64",
    "ldg_128",
    "stg_8",
    "stg_16",
    "stg_32",
    "stg_64",
    "stg_128",
    "mma",
    "mma_kinds",
    "sass_instructions",
]
COLUMNS = [
    "kernel",
    "arch",
    "suite",
    "workload",
    "batch",
    "dtype",
    "layout",
    "config",
    "num_warps",
    "num_stages",
    *FIGURE_COLUMNS,
    "shared_limit",
    "fits",
    "cubin",
    "cache_key",
    "triton_version",
    "status",
    "message",
    *TRAFFIC_COLUMNS,
]


@dataclass(frozen=True)
class Target:
    """One kernel launch to compile: which kernel, for which workload, dtype, layout and arch."""

    kernel: str
    arch: str
    workload: Workload
    dtype: str
    layout: str


def report_targets(workloads: list[Workload], arch: str = "sm_90") -> list[Target]:
    """What a CPU report adds about the GPU: each kernel it ran under the interpreter, compiled
    for ``arch`` on one workload of the report as its fused provider runs it (float32;
    channels_last for dw-sep): the 8.7x example (or the first dw-sep workload) and the first
    RBF distance and loss workloads, LeNet-5's own when the lenet suite ran. The full matrix is
    `sepbench inspect`'s (reports/compiled/)."""

    def first(kernel: str) -> Workload | None:
        mine = [w for w in workloads if applies(kernel, w)]
        preferred = [w for w in mine if w.id == HEADLINE_ID or w.suite == "lenet"]
        return (preferred or mine or [None])[0]

    picked = [(k, first(k)) for k in KERNELS]
    return [
        Target(k, arch, w, "float32", "nhwc" if k == "dwsep" else "row-major")
        for k, w in picked
        if w is not None
    ]


def layouts_of(kernel: str) -> tuple[str, ...]:
    return ("nchw", "nhwc") if kernel == "dwsep" else ("row-major",)


def applies(kernel: str, workload: Workload) -> bool:
    shape = workload.shape
    if kernel == "dwsep":
        return isinstance(shape, DwsepShape)
    if not isinstance(shape, RbfShape):
        return False
    return shape.loss == (kernel != "rbf_distance")


def targets(
    kernels: tuple[str, ...],
    suites: tuple[str, ...],
    archs: tuple[str, ...],
    dtypes: tuple[str, ...] = DTYPES,
    size: str = "quick",
) -> list[Target]:
    """Every (kernel, arch, workload, dtype, layout) of the suites' GPU workloads."""
    from kernels._compiled import ARCHS

    bad = [k for k in kernels if k not in KERNELS] + [a for a in archs if a not in ARCHS]
    if bad:
        raise UserError(
            f"unknown kernel or arch {bad}; kernels: {', '.join(KERNELS)}; "
            f"archs: {', '.join(ARCHS)}"
        )
    try:
        workloads = build_suites(list(suites), size, "cuda")  # what a GPU run would launch
    except ValueError as err:
        raise UserError(str(err)) from None
    return [
        Target(k, a, w, d, layout)
        for a in archs
        for k in kernels
        for w in workloads
        if applies(k, w)
        for d in dtypes
        for layout in layouts_of(k)
    ]


# ------------------------------------------------------------- in the worker processes


def _launch(t: Target, device: str = "meta", dtype: str | None = None) -> tuple[Any, tuple, dict]:
    """(Tunable, args, kwargs) of the target's launch, on meta tensors of its shape."""
    return _launch_grid(t, device, dtype)[:3]


def _launch_grid(t: Target, device: str = "meta", dtype: str | None = None) -> tuple:
    """(Tunable, args, kwargs, grid) of the target's launch on ``device`` (meta: nothing is
    allocated), in ``dtype`` (default the target's)."""
    import torch

    from kernels import _compiled, dwsep, rbf

    dt, dev = getattr(torch, dtype or t.dtype), device
    if t.kernel == "dwsep":
        s, n = t.workload.shape, t.workload.batch
        fmt = torch.channels_last if t.layout == "nhwc" else torch.contiguous_format
        x = torch.empty(n, s.in_ch, s.h, s.w, device=dev, dtype=dt).contiguous(memory_format=fmt)
        out = torch.empty(n, s.out_ch, *s.out_hw, device=dev, dtype=dt, memory_format=fmt)
        dw = torch.empty(s.in_ch, 1, s.kernel, s.kernel, device=dev, dtype=dt)
        pw = torch.empty(s.out_ch, s.in_ch, 1, 1, device=dev, dtype=dt)
        a, b = (torch.empty(c, device=dev) for c in (s.in_ch, s.out_ch))  # folded BN, fp32
        args, kwargs, grid = dwsep.launch_args(
            x,
            dw,
            pw,
            out,
            stride=s.stride,
            pad=s.pad,
            dw_scale=a,
            dw_shift=a,
            activation=s.activation,
            pw_scale=b,
            pw_shift=b,
            pw_activation=s.pw_activation,
        )
        return dwsep.TUNABLE, args, kwargs, grid
    s = t.workload.shape
    B, D, K = s.batch, s.dim, s.centers
    x, c = torch.empty(B, D, device=dev, dtype=dt), torch.empty(K, D, device=dev, dtype=dt)
    target = torch.empty(B, device=dev, dtype=torch.int64)
    f32 = dict(device=dev, dtype=torch.float32)
    lse, g = torch.empty(B, **f32), torch.empty(B, **f32)
    if dev != "meta":  # counted under the interpreter: random data takes the common paths
        gen = torch.Generator().manual_seed(0)
        x.copy_(torch.randn(B, D, generator=gen))
        c.copy_(torch.randn(K, D, generator=gen))
        target.copy_(torch.randint(0, K, (B,), generator=gen))
        lse.fill_(math.log(K))
        g.fill_(1.0 / B)
    if t.kernel == "rbf_distance":
        launch = rbf.distance_launch(x, c, torch.empty(B, K, device=dev, dtype=dt))
    elif t.kernel == "rbf_loss_fwd":
        launch = rbf.loss_fwd_launch(x, c, target, torch.empty(B, **f32), lse, 0.3)
    elif t.kernel == "rbf_loss_grad_x":
        launch = rbf.grad_x_launch(x, c, target, lse, g, torch.empty(B, D, device=dev, dtype=dt))
    else:
        rows = rbf.rows_per_slab(B, K, D, _compiled.ARCH_LIMITS[_compiled.ARCHS[t.arch]].sms)
        partial = torch.empty(-(-B // rows), K, D, **f32)
        launch = rbf.grad_c_launch(x, c, target, lse, g, partial, rows)
    return rbf.TUNABLES[RBF_TUNABLES[t.kernel]], *launch


def config_label(cfg: Any) -> str:
    blocks = "/".join(str(v) for k, v in cfg.kwargs.items() if k.startswith("BLOCK_"))
    reg = f" r{cfg.maxnreg}" if cfg.maxnreg else ""
    loop = f" coloop{cfg.kwargs.get('CO_STAGES', '')}" if cfg.kwargs.get("CO_LOOP") else ""
    return f"{blocks} w{cfg.num_warps} s{cfg.num_stages}{loop}{reg}"


def _plan(t: Target) -> list[dict]:
    """The configs the size pruning keeps for one target, each with its compile cache key."""
    from kernels import _compiled
    from kernels._autotune import launch_kwargs

    try:
        tunable, args, kwargs = _launch(t)
        named = dict(zip(tunable.kernel.arg_names, args, strict=False))
        kept = tunable.fit(tunable.configs(args[0].dtype), named)
        arch = _compiled.ARCHS[t.arch]
        jobs = []
        for cfg in kept:
            src, options = _compiled.launch_source(
                tunable.kernel, args, launch_kwargs(cfg, kwargs), arch
            )
            jobs.append(
                {
                    "config": config_label(cfg),
                    "num_warps": cfg.num_warps,
                    "num_stages": cfg.num_stages,
                    "cfg": cfg.all_kwargs(),
                    "cache_key": _compiled.cache_key(src, options, arch),
                }
            )
        return jobs
    except Exception as err:
        return [{"config": "", "status": "error", "message": error_text(err, 400)}]


def _compile(job: tuple[str, Target, dict]) -> tuple[str, str]:
    """Compile one config (or find it cached); (its planned cache key, error message or "")."""
    from kernels import _compiled

    key, t, cfg_kwargs = job
    try:
        tunable, args, kwargs = _launch(t)
        _compiled.analyze(tunable.kernel, args, {**kwargs, **cfg_kwargs}, _compiled.ARCHS[t.arch])
        return key, ""
    except Exception as err:
        return key, error_text(err, 400)


def run_dtype(t: Target) -> str:
    """The dtype a traffic count runs in: the dw-sep kernel's loads and control flow do not
    depend on it (element counts are scaled to the target's sizes), so it runs in float16 (half
    the memory of float32); the RBF kernels' configs and refinement do, so they run as targeted."""
    return "float16" if t.kernel == "dwsep" else t.dtype


def traffic_key(t: Target, cfg_kwargs: dict) -> tuple:
    tiles = tuple(sorted((k, v) for k, v in cfg_kwargs.items() if k.isupper()))
    return (t.kernel, t.workload.shape, t.workload.batch, t.layout, run_dtype(t), tiles)


def _count(job: tuple[tuple, Target, dict, int | None]) -> tuple[tuple, Any]:
    """Count one launch's traffic under the interpreter (in a TRITON_INTERPRET=1 worker):
    (its key, a Count or the error message)."""
    from bench.measuring.inspect_traffic import count_launch

    key, t, cfg_kwargs, budget = job
    try:
        tunable, args, kwargs, grid = _launch_grid(t, "cpu", run_dtype(t))
        kw = {**kwargs, **cfg_kwargs}
        return key, count_launch(tunable.kernel, args, kw, grid, budget=budget)
    except Exception as err:
        return key, error_text(err, 400)


def traffic_row(t: Target, count: Any, sass_per_tap: float | None) -> dict:
    """The TRAFFIC_COLUMNS of one target and config from its (dtype-free) count."""
    import torch

    from bench.measuring.inspect_traffic import dwsep_tap_elements, figures

    _, args, _ = _launch(t)
    tunable = _launch(t)[0]
    names = tunable.kernel.arg_names
    itemsize, numel, aliases, first = {}, {}, {}, {}
    for name, arg in zip(names, args, strict=False):
        if isinstance(arg, torch.Tensor):
            canon = first.setdefault(id(arg), name)
            aliases[name] = canon
            itemsize[canon], numel[canon] = arg.element_size(), arg.numel()
    if t.dtype != "float32":
        mma_class = "16bit"
    elif t.kernel == "dwsep" and torch.backends.cudnn.allow_tf32:
        mma_class = "tf32"  # the launcher's rule on a GPU (the same rounding as cuDNN's)
    else:
        mma_class = "ieee"
    taps = None
    if t.kernel == "dwsep":
        s = t.workload.shape
        taps = dwsep_tap_elements(t.workload.batch, s.in_ch, s.h, s.w, s.kernel, s.stride, s.pad)
    return figures(
        count, itemsize, numel, aliases, mma_class, dw_taps=taps, sass_per_tap=sass_per_tap
    )


def sass_per_tap(key: str) -> float | None:
    """SASS instructions per depthwise multiply-add (FFMA) in the innermost loop of the cached
    cubin, or None."""
    import subprocess

    from bench.measuring.inspect_traffic import innermost_loop
    from kernels import _compiled

    cubin = _compiled._entry(key)[1]
    if not cubin.is_file():
        return None
    sass = subprocess.run(
        [_compiled._tool("nvdisasm"), "-c", str(cubin)], check=True, capture_output=True, text=True
    ).stdout
    total, ffma = innermost_loop(sass)
    return total / ffma if ffma else None


# ---------------------------------------------------------------------- in the parent


@contextlib.contextmanager
def compile_pool(workers: int, interpret: str = "0") -> Iterator[Any]:
    """Worker processes that import the kernels compiled, not interpreted: TRITON_INTERPRET is
    read when a kernel is decorated, so the spawned workers start with it set to 0 (this
    process keeps its own setting and its interpreted kernels). ``interpret="1"``: workers
    that run the kernels under the interpreter (traffic counts)."""
    before = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = interpret
    try:
        pool = multiprocessing.get_context("spawn").Pool(workers)  # starts every worker now
    finally:
        if before is None:
            os.environ.pop("TRITON_INTERPRET", None)
        else:
            os.environ["TRITON_INTERPRET"] = before
    try:
        yield pool
    finally:
        pool.terminate()
        pool.join()


def inspect_kernels(
    kernels: tuple[str, ...] = KERNELS,
    suites: tuple[str, ...] = DEFAULT_SUITES,
    archs: tuple[str, ...] = ("sm_80", "sm_90"),
    *,
    dtypes: tuple[str, ...] = DTYPES,
    size: str = "quick",
    workers: int | None = None,
    dump_cubin: Path | None = None,
    traffic: bool = False,
) -> pd.DataFrame:
    """One row per (kernel, arch, workload, dtype, layout, config): compiled figures or error;
    with ``traffic``, also what each launch moves (bench.measuring.inspect_traffic)."""
    todo = targets(kernels, suites, archs, dtypes, size)
    return inspect_targets(todo, workers=workers, dump_cubin=dump_cubin, traffic=traffic)


def inspect_targets(
    todo: list[Target],
    *,
    workers: int | None = None,
    dump_cubin: Path | None = None,
    traffic: bool = False,
    budget: int | None = None,
) -> pd.DataFrame:
    """The rows of inspect_kernels for the given targets (compiled in parallel, each distinct
    specialization once, cached ones not at all). ``traffic``: each distinct launch (dtype-free
    for dw-sep, arch-free) is also counted under the interpreter, on at most ``budget``
    programs (default inspect_traffic.SAMPLE_PROGRAMS; None there means all)."""
    from bench.measuring.inspect_traffic import SAMPLE_PROGRAMS
    from kernels import _compiled

    workers = workers or os.cpu_count() or 1
    with compile_pool(workers) as pool:
        plans = pool.map(_plan, todo, chunksize=4)
        jobs: dict[str, tuple[str, Target, dict]] = {}
        for t, plan in zip(todo, plans, strict=True):
            for job in plan:
                key = job.get("cache_key")
                if key and key not in jobs and not _compiled.is_cached(key):
                    jobs[key] = (key, t, job["cfg"])
        failed: dict[str, str] = {}
        results = pool.imap_unordered(_compile, list(jobs.values()))
        for key, error in progress(results, total=len(jobs), desc="compiling", unit="config"):
            if error:
                failed[key] = error
    counts: dict[tuple, Any] = {}
    if traffic:
        budget = SAMPLE_PROGRAMS if budget is None else budget
        jobs_t: dict[tuple, tuple] = {}
        for t, plan in zip(todo, plans, strict=True):
            for job in plan:
                if "cfg" in job:
                    key = traffic_key(t, job["cfg"])
                    jobs_t.setdefault(key, (key, t, job["cfg"], budget or None))
        with compile_pool(min(workers, max(1, len(jobs_t))), interpret="1") as pool:
            results = pool.imap_unordered(_count, list(jobs_t.values()))
            for key, count in progress(results, total=len(jobs_t), desc="counting", unit="launch"):
                counts[key] = count
    return _rows(todo, plans, failed, dump_cubin, counts if traffic else None)


def _traffic_columns(t: Target, job: dict, key: str, counts: dict, per_tap: dict) -> dict:
    count = counts.get(traffic_key(t, job["cfg"]))
    if count is None or isinstance(count, str):
        return {"message": f"traffic: {count or 'not counted'}"}
    if t.kernel == "dwsep" and key not in per_tap:
        per_tap[key] = sass_per_tap(key)
    return traffic_row(t, count, per_tap.get(key))


def _rows(
    todo: list[Target],
    plans: list[list[dict]],
    failed: dict,
    dump: Path | None,
    counts: dict | None = None,
) -> Any:
    import triton

    from kernels import _compiled

    rows = []
    per_tap: dict[str, float | None] = {}
    for t, plan in zip(todo, plans, strict=True):
        base = {
            "kernel": t.kernel,
            "arch": t.arch,
            "suite": t.workload.suite,
            "workload": t.workload.id,
            "batch": t.workload.batch,
            "dtype": t.dtype,
            "layout": t.layout,
            "triton_version": triton.__version__,
        }
        for job in plan:
            row = {**base, **{k: job.get(k) for k in ("config", "num_warps", "num_stages")}}
            key = job.get("cache_key")
            figures = _compiled.cached_figures(key) if key else None
            if figures is None:
                message = job.get("message") or failed.get(key) or "compile failed"
                rows.append({**row, "status": "error", "message": message, "cache_key": key})
                continue
            limit = _compiled.ARCH_LIMITS[_compiled.ARCHS[t.arch]].shared_per_block
            cubin = ""
            if dump is not None:
                cubin = f"{t.kernel}_{t.arch}_{key[:16]}.cubin"
                _compiled.copy_cubin(key, dump / cubin)
            fits = figures.spill_bytes == 0 and figures.shared_bytes <= limit
            rows.append(
                {
                    **row,
                    **figures.to_row(),
                    "shared_limit": limit,
                    "fits": fits,
                    "cubin": cubin,
                    "cache_key": key,
                    "status": "ok",
                    "message": "",
                }
            )
            if counts is not None:
                rows[-1].update(_traffic_columns(t, job, key, counts, per_tap))
    return pd.DataFrame(rows).reindex(columns=COLUMNS)
