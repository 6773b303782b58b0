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
import multiprocessing
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench.errors import UserError, error_text
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


def _launch(t: Target) -> tuple[Any, tuple, dict]:
    """(Tunable, args, kwargs) of the target's launch, on meta tensors of its shape."""
    import torch

    from kernels import _compiled, dwsep, rbf

    dt, dev = getattr(torch, t.dtype), "meta"
    if t.kernel == "dwsep":
        s, n = t.workload.shape, t.workload.batch
        fmt = torch.channels_last if t.layout == "nhwc" else torch.contiguous_format
        x = torch.empty(n, s.in_ch, s.h, s.w, device=dev, dtype=dt).contiguous(memory_format=fmt)
        out = torch.empty(n, s.out_ch, *s.out_hw, device=dev, dtype=dt, memory_format=fmt)
        dw = torch.empty(s.in_ch, 1, s.kernel, s.kernel, device=dev, dtype=dt)
        pw = torch.empty(s.out_ch, s.in_ch, 1, 1, device=dev, dtype=dt)
        a, b = (torch.empty(c, device=dev) for c in (s.in_ch, s.out_ch))  # folded BN, fp32
        args, kwargs, _ = dwsep.launch_args(
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
        return dwsep.TUNABLE, args, kwargs
    s = t.workload.shape
    B, D, K = s.batch, s.dim, s.centers
    x, c = torch.empty(B, D, device=dev, dtype=dt), torch.empty(K, D, device=dev, dtype=dt)
    target = torch.empty(B, device=dev, dtype=torch.int64)
    f32 = dict(device=dev, dtype=torch.float32)
    lse, g = torch.empty(B, **f32), torch.empty(B, **f32)
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
    return rbf.TUNABLES[RBF_TUNABLES[t.kernel]], launch[0], launch[1]


def config_label(cfg: Any) -> str:
    blocks = "/".join(str(v) for k, v in cfg.kwargs.items() if k.startswith("BLOCK_"))
    reg = f" r{cfg.maxnreg}" if cfg.maxnreg else ""
    return f"{blocks} w{cfg.num_warps} s{cfg.num_stages}{reg}"


def _plan(t: Target) -> list[dict]:
    """The configs the size pruning keeps for one target, each with its compile cache key."""
    from kernels import _compiled
    from kernels._autotune import fit_to_problem, launch_kwargs

    try:
        tunable, args, kwargs = _launch(t)
        named = dict(zip(tunable.kernel.arg_names, args, strict=False))
        kept = fit_to_problem(tunable.configs(args[0].dtype), tunable.sizes(named))
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


# ---------------------------------------------------------------------- in the parent


@contextlib.contextmanager
def compile_pool(workers: int) -> Iterator[Any]:
    """Worker processes that import the kernels compiled, not interpreted: TRITON_INTERPRET is
    read when a kernel is decorated, so the spawned workers start with it set to 0 (this
    process keeps its own setting and its interpreted kernels)."""
    before = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "0"
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
) -> pd.DataFrame:
    """One row per (kernel, arch, workload, dtype, layout, config): compiled figures or error."""
    todo = targets(kernels, suites, archs, dtypes, size)
    return inspect_targets(todo, workers=workers, dump_cubin=dump_cubin)


def inspect_targets(
    todo: list[Target], *, workers: int | None = None, dump_cubin: Path | None = None
) -> pd.DataFrame:
    """The rows of inspect_kernels for the given targets (compiled in parallel, each distinct
    specialization once, cached ones not at all)."""
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
    return _rows(todo, plans, failed, dump_cubin)


def _rows(todo: list[Target], plans: list[list[dict]], failed: dict, dump: Path | None) -> Any:
    import triton

    from kernels import _compiled

    rows = []
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
    return pd.DataFrame(rows).reindex(columns=COLUMNS)
