"""One timer interface for both devices, plus the peaks a run compares against.

GPU: ``triton.testing.do_bench`` (CUDA events, L2 flushed by a 256 MB memset before every call,
warm-up discarded) or ``do_bench_cudagraph`` for tiny workloads whose launch overhead would
otherwise dominate. CPU: ``torch.utils.benchmark.Timer.blocked_autorange`` with the thread count
fixed and recorded. Both report the median and the 20th / 80th percentiles of the repetitions.

``naive_host_clock`` reproduces document 001's snippet (host clock around 100 calls, no warm-up,
no synchronization) so a report can show how far that method lands from the honest one.
"""

from __future__ import annotations

import time
import timeit as stdlib_timeit
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.utils.benchmark as torch_benchmark

from bench.provenance import resolve_device

QUANTILES = (0.2, 0.5, 0.8)
# p20 / p80 need a handful of blocks; blocked_autorange alone may stop after one slow block.
MIN_CPU_SAMPLES = 5
# Under a time budget a slow call stops at this many samples (p20 / p80 then interpolate between
# the fastest, the median and the slowest): the RBF loss at 1024x84x1000 takes 0.9-1.9 s a call
# on the 2-core CI machine, and 8 calls of each of its two eager rows took 70 s of a 180 s report.
MIN_BUDGET_SAMPLES = 3


@dataclass(frozen=True)
class Timing:
    """Latency of one call in milliseconds: p20 / median / p80 over ``repeats`` measurements."""

    p20_ms: float
    p50_ms: float
    p80_ms: float
    repeats: int
    method: str
    # The raw samples the percentiles came from (ms per call; a blocked_autorange sample is one
    # block's mean). Empty where the timer keeps none (GPU do_bench returns quantiles only).
    samples_ms: tuple[float, ...] = ()


# The compute roofs a row can be judged against: its precision names the arithmetic it ran on.
PRECISIONS = {
    "fp16": "float16 on tensor cores (fp32 accumulate)",
    "bf16": "bfloat16 on tensor cores (fp32 accumulate)",
    "tf32": "float32 inputs rounded to TF32 on tensor cores (cuDNN's and cuBLAS's allow_tf32)",
    "fp32": "float32 FMA (CUDA cores; every CPU row)",
}


@dataclass(frozen=True)
class Roof:
    """One compute roof: the rate of the plain library primitive in one precision."""

    precision: str  # a key of PRECISIONS
    dtype: str
    tflops: float  # 2 * M * N * K / s, / 1e12
    method: str = "torch_mm"  # which primitive set it: torch_mm, torch_mm_tf32 or conv3x3


@dataclass(frozen=True)
class Peaks:
    """What this machine reaches on plain copies and matmuls, measured in the same run."""

    copy_gbps: float  # bytes read + bytes written per second, / 1e9
    roofs: tuple[Roof, ...]


def method_family(method: str) -> str:
    """The clock behind a timing_method text: latencies of one family compare, of two do not
    (a warm-L2 CUDA-graph replay against a cold-L2 event timing is no speedup)."""
    text = str(method).lower()
    if "cuda-graph" in text:
        return "cuda-graph"
    if "cuda events" in text:
        return "cuda-events"
    if "naive" in text:
        return "naive"
    return "host-clock"  # blocked_autorange, timeit single calls, pytest-benchmark on CPU


def device_type(device: str | torch.device) -> str:
    """ "cpu" or "cuda" for a device name or torch.device; a ValueError otherwise."""
    return resolve_device(device)


def synchronize(device: str | torch.device) -> None:
    """Wait for queued work: a host clock read without this on CUDA times the launch only."""
    if device_type(device) == "cuda":
        torch.cuda.synchronize()


def percentiles(samples_ms: list[float]) -> tuple[float, float, float]:
    p20, p50, p80 = np.quantile(np.asarray(samples_ms, dtype=np.float64), QUANTILES)
    return float(p20), float(p50), float(p80)


def time_callable(
    fn: Callable[[], object],
    device: str | torch.device,
    *,
    min_run_time: float = 0.2,
    cuda_graph: bool = False,
    warmup_calls: int = 1,
    budget_s: float | None = None,
) -> Timing:
    """Time ``fn()`` (no arguments; inputs bound already) on ``device``.

    ``warmup_calls`` runs happen first and are discarded: they absorb torch.compile / autotune /
    cuDNN algorithm search. ``min_run_time`` (seconds) bounds the measuring time on CPU;
    on GPU do_bench's own budget (100 ms of repetitions) applies. ``budget_s`` (CPU) caps the
    seconds spent gathering samples once MIN_BUDGET_SAMPLES are in hand, so one slow call
    cannot hold a report for half a minute; ``repeats`` says how many samples were taken.
    """
    kind = device_type(device)
    if min_run_time <= 0:
        raise ValueError(f"min_run_time must be positive, got {min_run_time}")
    if budget_s is not None and budget_s <= 0:
        raise ValueError(f"budget_s must be positive, got {budget_s}")
    for _ in range(warmup_calls):
        fn()
    synchronize(kind)
    if kind == "cuda":
        import triton.testing

        if cuda_graph:
            p20, p50, p80 = triton.testing.do_bench_cudagraph(fn, rep=20, quantiles=QUANTILES)
            return Timing(p20, p50, p80, repeats=0, method="cuda-graph replay (do_bench_cudagraph)")
        p20, p50, p80 = triton.testing.do_bench(fn, warmup=25, rep=100, quantiles=QUANTILES)
        return Timing(p20, p50, p80, repeats=0, method="cuda events, L2 flushed (do_bench)")
    return _time_cpu(fn, min_run_time, budget_s)


def _time_cpu(fn: Callable[[], object], min_run_time: float, budget_s: float | None) -> Timing:
    """torch.utils.benchmark's blocked_autorange for fast calls; slow calls (one fifth of
    ``min_run_time`` or more) one at a time. A first single call, timed and kept, tells which.

    Single samples come from the stdlib timeit that torch.utils.benchmark wraps (GC off, the
    same clock), not from Timer.timeit, which runs 2 discarded warm-up calls per sample: 0.45 s
    to take one sample of a 0.15 s call, and 16 calls for a 5-sample row of a slow one.
    """
    clock = stdlib_timeit.Timer(fn)
    start = time.perf_counter()
    first_ms = clock.timeit(1) * 1e3
    if first_ms * 1e-3 >= min_run_time / MIN_CPU_SAMPLES:
        samples_ms, number, method = [first_ms], 1, "single calls (timeit)"
    else:
        timer = torch_benchmark.Timer(
            stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads()
        )
        measurement = timer.blocked_autorange(min_run_time=min_run_time)
        samples_ms = [t * 1e3 for t in measurement.times]
        number = measurement.number_per_run
        method = f"blocked_autorange ({number} calls per block)"

    def enough() -> bool:
        if len(samples_ms) >= MIN_CPU_SAMPLES:
            return True
        # The budget is for slow calls, taken one at a time. A fast call's block can hold
        # millions of calls (10,000,000 for a no-op here), and the budget would cut it to 3
        # samples because of that block size, not because the call is slow.
        if budget_s is None or number > 1:
            return False
        spent = time.perf_counter() - start
        return len(samples_ms) >= MIN_BUDGET_SAMPLES and spent >= budget_s

    while not enough():
        samples_ms.append(clock.timeit(number) / number * 1e3)
    p20, p50, p80 = percentiles(samples_ms)
    return Timing(p20, p50, p80, len(samples_ms), method, samples_ms=tuple(samples_ms))


def naive_host_clock(fn: Callable[[], object], calls: int = 100) -> Timing:
    """Document 001's method: ``time.time()`` around ``calls`` calls, no warm-up, no sync.

    On CUDA this measures how fast the host queues kernels, not how long they run; on CPU it
    includes the first (cold) call. Reported per call so it sits beside honest latencies.
    """
    if calls < 1:
        raise ValueError(f"calls must be >= 1, got {calls}")
    start = time.time()
    for _ in range(calls):
        fn()
    per_call_ms = (time.time() - start) * 1e3 / calls
    return Timing(
        per_call_ms, per_call_ms, per_call_ms, 1, "naive host clock", samples_ms=(per_call_ms,)
    )


def measure_copy_gbps(device: str | torch.device, megabytes: int = 256) -> float:
    """Bandwidth of a large tensor copy: (read + write) bytes over the median copy time."""
    kind = device_type(device)
    numel = megabytes * 2**20 // 4
    src = torch.empty(numel, dtype=torch.float32, device=kind).fill_(1.0)
    dst = torch.empty_like(src)
    timing = time_callable(lambda: dst.copy_(src), kind, min_run_time=0.3)
    return 2 * src.numel() * src.element_size() / (timing.p50_ms * 1e-3) / 1e9


def measure_matmul_tflops(
    device: str | torch.device, size: int | None = None, dtype: torch.dtype | None = None
) -> tuple[float, str]:
    """Rate of a square matmul (2 n^3 FLOPs): the compute roof. Returns (TFLOP/s, dtype name)."""
    kind = device_type(device)
    if dtype is None:
        dtype = torch.float16 if kind == "cuda" else torch.float32
    if size is None:
        size = 8192 if kind == "cuda" else 1024
    a = torch.randn(size, size, device=kind, dtype=dtype)
    b = torch.randn(size, size, device=kind, dtype=dtype)
    timing = time_callable(lambda: torch.mm(a, b), kind, min_run_time=0.3)
    return 2 * size**3 / (timing.p50_ms * 1e-3) / 1e12, str(dtype).removeprefix("torch.")


def measure_conv3x3_tflops(channels: int = 256, side: int = 32) -> float:
    """Rate of a dense 3x3 convolution (oneDNN's direct JIT kernel on CPU), counted as
    2 * C^2 * 9 * side^2 FLOPs."""
    x = torch.randn(1, channels, side, side)
    w = torch.randn(channels, channels, 3, 3)
    conv = torch.nn.functional.conv2d
    timing = time_callable(lambda: conv(x, w, padding=1), "cpu", min_run_time=0.3)
    return 2 * channels**2 * 9 * side**2 / (timing.p50_ms * 1e-3) / 1e12


def measure_peaks(device: str | torch.device) -> Peaks:
    """Copy bandwidth and the compute roof of each precision of this device, measured now
    (once per run).

    CUDA: torch.mm at 8192^3 in float16, bfloat16, float32 with TF32 allowed, and float32 FMA
    (TF32 off). CPU: float32 only, the faster of torch.mm and a dense 3x3 convolution: on the
    AMD EPYC CI machine this build's MKL sgemm ran 0.10 TFLOP/s on one thread (no AVX-512 path
    on AMD) while oneDNN's direct AVX-512 convolution ran 0.22, so torch.mm alone would put
    measured convolutions above the "peak".
    """
    copy = measure_copy_gbps(device)
    if device_type(device) == "cpu":
        tflops, dtype = measure_matmul_tflops(device, dtype=torch.float32)
        roof = Roof("fp32", dtype, tflops, "torch_mm")
        conv = measure_conv3x3_tflops()
        if conv > tflops:
            roof = Roof("fp32", dtype, conv, "conv3x3")
        return Peaks(copy_gbps=copy, roofs=(roof,))
    roofs = [
        Roof(precision, dtype.removeprefix("torch."), tflops, "torch_mm")
        for precision, torch_dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16))
        for tflops, dtype in [measure_matmul_tflops(device, dtype=torch_dtype)]
    ]
    previous = torch.backends.cuda.matmul.allow_tf32
    try:
        for precision, allow in (("tf32", True), ("fp32", False)):
            torch.backends.cuda.matmul.allow_tf32 = allow
            tflops, dtype = measure_matmul_tflops(device, dtype=torch.float32)
            method = "torch_mm_tf32" if allow else "torch_mm"
            roofs.append(Roof(precision, dtype, tflops, method))
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
    return Peaks(copy_gbps=copy, roofs=tuple(roofs))
