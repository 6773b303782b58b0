"""What the runner decides for a workload before timing any of its providers: which clock
times all of them, and whether a provider fits in the device's free memory at all.

One clock per workload: on a GPU a workload whose floor (its fewest bytes at the measured copy
bandwidth, or its FLOPs at the matmul roof) is below LAUNCH_BOUND_US is dominated by launch
overhead; every provider of it is then timed by CUDA-graph replay, every provider of the others
by do_bench with a flushed L2. Deciding per provider from its own median (as the runner once
did) timed a one-kernel fused row by warm-L2 graph replay and its six-kernel eager baseline by
cold-L2 events, which inflated exactly the small shapes' speed-ups.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from bench.measuring.operators import Case

# Below this floor a GPU workload is launch-bound (one launch costs ~3-5 us, a fused block is
# one launch and its eager baseline four to six).
LAUNCH_BOUND_US = 10.0
# Keep this share of the free memory for the allocator's own slack and the timer's buffers
# (do_bench's 256 MB L2-flush buffer).
MEMORY_HEADROOM = 0.9


def floor_us(case: Case, copy_gbps: float, roofs: dict[str, float]) -> float:
    """The workload's floor in microseconds: the larger of its bytes at ``copy_gbps`` and its
    FLOPs at the roof of its dtype's precision (NaN when the setting or the peaks are unknown)."""
    s = case.setting
    if s is None or not copy_gbps or math.isnan(copy_gbps):
        return math.nan
    memory_us = s.nbytes / (copy_gbps * 1e9) * 1e6
    precision = {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(case.dtype, "fp32")
    tflops = roofs.get(precision) or max(roofs.values(), default=math.nan)
    compute_us = 2 * s.macs / (tflops * 1e12) * 1e6 if tflops and not math.isnan(tflops) else 0
    return max(memory_us, compute_us)


def use_cuda_graph(case: Case, device: str, copy_gbps: float, roofs: dict[str, float]) -> bool:
    """Whether every provider of ``case``'s workload is timed by CUDA-graph replay."""
    return device == "cuda" and floor_us(case, copy_gbps, roofs) < LAUNCH_BOUND_US


def free_bytes(device: str) -> float | None:
    """Free memory of the device: the GPU's from CUDA; the host's MemAvailable on CPU (free
    pages plus the page cache it can drop); None where it cannot be read."""
    if device == "cuda":
        free, _ = torch.cuda.mem_get_info()
        return float(free)
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def memory_refusal(case: Case, device: str) -> str | None:
    """Why ``case`` is not even prepared (its cost model needs more memory than is free), or
    None. Checked before anything of it is allocated."""
    if case.setting is None:
        return None
    free = free_bytes(device)
    need = case.spec.memory_bytes(case.setting)
    if free is None or need <= MEMORY_HEADROOM * free:
        return None
    return (
        f"needs {need / 1e9:.1f} GB of {device} memory by its cost model; "
        f"{free / 1e9:.1f} GB free ({MEMORY_HEADROOM:.0%} usable)"
    )


# Rough seconds per item on one H100/H200, for the estimate printed before a GPU run starts.
# Assumptions, not measurements (no GPU has run this harness): an Inductor compile 10 s in
# default mode and 40 s in max-autotune (20-60 s is what such compiles are reported to take),
# an autotuned Triton launch ~1.5 s per config kept (compile + benchmark), a timed row ~1.5 s
# (setup, warm-up, do_bench's 125 ms of repetitions and the float64 check).
SECONDS_PER = {"compile": 10.0, "max-autotune": 40.0, "fused": 12.0, "row": 1.5}


def estimate(cases: list[Case]) -> str:
    """How many compiles the rows ahead hold and roughly how long they take on a GPU."""
    compiles = [c for c in cases if c.spec.family == "compile"]
    autotune = sum("max_autotune" in c.provider for c in compiles)
    fused = sum(c.spec.family == "fused" for c in cases)
    seconds = (
        (len(compiles) - autotune) * SECONDS_PER["compile"]
        + autotune * SECONDS_PER["max-autotune"]
        + fused * SECONDS_PER["fused"]
        + len(cases) * SECONDS_PER["row"]
    )
    return (
        f"{len(cases)} rows ahead: {len(compiles)} torch.compile graphs ({autotune} max-autotune) "
        f"and {fused} autotuned Triton rows; roughly {seconds / 60:.0f} min on one H100/H200 "
        "(an estimate from per-item assumptions in bench/measuring/plans.py; narrow it with "
        "--providers / --skip-providers / --smoke)"
    )
