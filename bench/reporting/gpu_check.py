"""`make gpu-check` (`sepbench gpu-check`): a first check of a new GPU in one command of at most
ten minutes, needing nothing from a package registry.

In order, each step writing its file and none able to stop the next:
1. env.txt: the device, driver, CUDA/cuDNN, torch/triton/numpy versions and nvidia-smi;
2. the smoke report (every suite's tiny workload, every provider but max-autotune, with the run's
   copy bandwidth and a matmul roof per precision): results.csv and summary.md, the plots in
   plots.tar;
3. the GPU tests that matter (tests.txt): the timer waits for the device, the fused kernels
   against float64 on the documents' block and the kernel/stride/layout matrix, the RBF loss and
   gradients, the profiler's view of the depthwise backend, MobileNetV2 fused end to end;
4. autotune.csv: the configs the autotuner chose in step 2, beside `sepbench inspect`'s compiled
   figures (registers, spills, shared memory, occupancy) of those configs for this GPU's arch;
5. check.md: a short table of all of it, also printed last.
At most 8 files in OUT with the caller's log.txt (`make gpu-check 2>&1 | tee OUT/log.txt`).

The time, estimated (no GPU has run it yet): the smoke report ~4 min by plans.estimate's
per-item assumptions (about 60 rows, 8 Inductor compiles, 2 x 2 autotuned fused launches), the
tests capped at TESTS_BUDGET_S, the compiles of step 4 ~1 min: about 9 minutes on one H200.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench import provenance
from bench.errors import error_text
from bench.files import check_out_dir, write_csv_atomic
from bench.measuring.suites import SUITES, build_suites

GPU_CHECK_OURS = ("check.md", "env.txt")
TESTS_BUDGET_S = 240
# The GPU tests of step 3 (node ids under tests/; the full GPU matrix is `pytest -m gpu`).
GPU_TESTS = (
    "tests/test_timing.py::test_gpu_timer_waits_for_the_device",
    "tests/test_dwsep.py::TestGPU::test_documents_block_128_to_256_at_32x32",
    "tests/test_dwsep.py::TestGPU::test_kernel_stride_layout_matrix",
    "tests/test_dwsep.py::TestGPU::test_tf32_follows_cudnn_flag",
    "tests/test_dwsep.py::TestGPU::test_depthwise_backend_is_what_ran",
    "tests/test_rbf.py::TestRBFOnGPU::test_loss_and_gradients",
    "tests/test_mobilenet_fuse.py::test_full_mobilenet_v2_on_gpu",
)


def environment_text(device: str) -> str:
    """What the machine is: versions, device, driver, and nvidia-smi's own view."""
    info = {**provenance.machine_info(), **provenance.environment(device)}
    import numpy

    info["numpy"] = numpy.__version__
    info["python"] = sys.version.split()[0]
    lines = [f"{k}: {v}" for k, v in info.items()]
    try:
        smi = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as err:
        smi = f"nvidia-smi: {error_text(err)}"
    return "\n".join(lines) + "\n\n" + smi


def run_tests(budget_s: float) -> tuple[str, str]:
    """(summary line, full output) of the GPU tests, stopped after ``budget_s``."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *GPU_TESTS]
    try:
        done = subprocess.run(
            cmd, cwd=provenance.REPO_ROOT, capture_output=True, text=True, timeout=budget_s
        )
        output = done.stdout + done.stderr
        lines = [ln for ln in output.splitlines() if " passed" in ln or " failed" in ln]
        return (lines[-1].strip("= ") if lines else f"pytest exit {done.returncode}"), output
    except subprocess.TimeoutExpired as err:
        out = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
        return f"stopped after {budget_s:.0f} s (the budget)", out


def _key_dtype(key: object) -> str:
    """The first tensor dtype in an autotuner cache key (Triton appends each tensor argument's
    dtype to the key; the first is the input's): 'float32', 'float16', ..."""
    for part in key if isinstance(key, tuple) else ():
        if isinstance(part, str) and part.startswith("torch."):
            return part.removeprefix("torch.")
    return ""


def autotune_choices() -> pd.DataFrame:
    """Every config the autotuners of this process chose: JIT kernel, input dtype, key, config
    and the autotuner's own time for it."""
    from bench.measuring.inspect import config_label
    from kernels import _autotune

    rows = []
    for jit_name, tuner in _autotune.BUILT:
        timings = getattr(tuner, "configs_timings", None) or {}
        for key, cfg in getattr(tuner, "cache", {}).items():
            best = timings.get(cfg)
            rows.append(
                {
                    "jit_kernel": jit_name,
                    "dtype": _key_dtype(key),
                    "key": str(key),
                    "config": config_label(cfg),
                    "autotune_ms": best[0] if isinstance(best, (list, tuple)) else best,
                }
            )
    return pd.DataFrame(rows, columns=["jit_kernel", "dtype", "key", "config", "autotune_ms"])


def beside_inspect(choices: pd.DataFrame, workloads: list, arch: str) -> pd.DataFrame:
    """The chosen configs with inspect's compiled figures of the same kernel, input dtype and
    config for ``arch`` on the smoke workloads (a row per workload that config compiled for)."""
    from bench.measuring import inspect

    targets = [
        inspect.Target(k, arch, w, dtype, inspect.layouts_of(k)[-1])
        for k in inspect.KERNELS
        for w in workloads
        if inspect.applies(k, w)
        for dtype in sorted(set(choices["dtype"]) & set(inspect.DTYPES))
    ]
    names = {}
    for t in targets:  # the JIT function behind each of inspect's kernel names
        tunable = inspect._launch(t)[0]
        names[getattr(tunable.kernel, "__name__", "")] = t.kernel
    figures = inspect.inspect_targets(targets, workers=2)
    keep = [
        "kernel",
        "dtype",
        "config",
        "workload",
        "registers",
        "spill_bytes",
        "shared_bytes",
        "occupancy",
        "mma_kinds",
        "status",
    ]
    choices = choices.assign(kernel=choices["jit_kernel"].map(names))
    return choices.merge(figures[keep], on=["kernel", "dtype", "config"], how="left")


def run_gpu_check(out: str | Path, say=print) -> Path:
    """All five steps into ``out``; returns check.md. Needs a CUDA device (a UserError else)."""
    from bench.reporting.pipeline import ReportOptions, make_report

    started = time.perf_counter()
    device = provenance.resolve_device("cuda")
    out = check_out_dir(out, GPU_CHECK_OURS)
    table: list[tuple[str, str]] = []

    def step(name: str, fn) -> None:
        t0 = time.perf_counter()
        try:
            result = fn()
        except Exception as err:  # one failing step must not lose the others' files
            result = f"failed: {error_text(err)}"
        table.append((name, f"{result} ({time.perf_counter() - t0:.0f} s)"))
        say(f"gpu-check: {name}: {table[-1][1]}")

    def env() -> str:
        (out / "env.txt").write_text(environment_text(device))
        return torch_device_line()

    scratch = tempfile.TemporaryDirectory(prefix="sepbench-gpu-check-")
    report_dir = Path(scratch.name)  # outside OUT: only the files named above come back

    def report() -> str:
        opts = ReportOptions(
            suites=SUITES,
            size="smoke",
            device="cuda",
            out=report_dir,
            fresh=True,
            skip_providers=("compile_max_autotune",),
        )
        done = make_report(opts, say)
        for name in ("results.csv", "summary.md"):
            (out / name).write_bytes((report_dir / name).read_bytes())
        with tarfile.open(out / "plots.tar", "w") as tar:
            for png in sorted(report_dir.glob("*.png")):
                tar.add(png, arcname=png.name)
        df = done.results
        work = df[df["suite"] != "peaks"]
        counts = ", ".join(f"{k} {v}" for k, v in work["status"].value_counts().items())
        copy = df.loc[df["workload"] == "copy_bandwidth", "gbps"]
        roofs = df.loc[df["workload"] == "matmul_rate", ["precision", "tflops"]]
        peaks = ", ".join(f"{p} {t:.0f} TFLOP/s" for p, t in roofs.itertuples(index=False))
        return f"{len(work)} rows ({counts}); copy {float(copy.iloc[-1]):.0f} GB/s; {peaks}"

    def tests() -> str:
        budget = min(TESTS_BUDGET_S, max(60.0, 540 - (time.perf_counter() - started)))
        line, output = run_tests(budget)
        (out / "tests.txt").write_text(output)
        return line

    def autotune() -> str:
        import torch

        from kernels import _compiled

        major, minor = torch.cuda.get_device_capability()
        arch = f"sm_{10 * major + minor}"
        choices = autotune_choices()
        if arch in _compiled.ARCHS and len(choices):
            choices = beside_inspect(choices, build_suites(list(SUITES), "smoke", "cuda"), arch)
        write_csv_atomic(choices, out / "autotune.csv")
        return f"{len(choices)} chosen configs ({arch})"

    step("environment", env)
    step("smoke report", report)
    step("GPU tests", tests)
    step("autotuned configs", autotune)
    scratch.cleanup()
    lines = ["# gpu-check", "", "| step | result |", "|---|---|"]
    lines += [f"| {name} | {result} |" for name, result in table]
    lines += ["", f"total {time.perf_counter() - started:.0f} s", ""]
    path = out / "check.md"
    path.write_text("\n".join(lines))
    say("\n".join(lines))
    return path


def torch_device_line() -> str:
    import torch

    name = torch.cuda.get_device_name()
    return f"{name}, torch {torch.__version__}, CUDA {torch.version.cuda}"
