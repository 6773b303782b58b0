"""Timer sanity: known sleeps and known-size copies land where they must; bad input is refused."""

from __future__ import annotations

import statistics
import time

import pytest
import torch

from bench import provenance
from bench.measuring import roofline, timing

SLEEP_MS = 10.0


def test_sleep_of_known_length_is_timed_in_range() -> None:
    measured = timing.time_callable(lambda: time.sleep(SLEEP_MS / 1e3), "cpu", min_run_time=0.2)
    # time.sleep never returns early; a loaded machine may oversleep, but not by 3x the request
    assert SLEEP_MS * 0.98 <= measured.p50_ms <= SLEEP_MS * 3
    assert measured.p20_ms <= measured.p50_ms <= measured.p80_ms
    assert measured.repeats >= 2


def test_copy_of_known_size_agrees_with_an_independent_clock() -> None:
    src = torch.ones(8 * 2**20 // 4)  # 8 MiB
    dst = torch.empty_like(src)
    measured = timing.time_callable(lambda: dst.copy_(src), "cpu", min_run_time=0.2)
    manual = []
    for _ in range(15):
        start = time.perf_counter()
        dst.copy_(src)
        manual.append((time.perf_counter() - start) * 1e3)
    reference = statistics.median(manual)
    assert reference / 4 <= measured.p50_ms <= reference * 4
    _, gbps = roofline.achieved(measured.p50_ms, 0, 2 * src.numel() * 4)
    assert 0.05 < gbps < 2000  # a CPU memcpy, neither stalled nor faster than any DRAM


def test_naive_host_clock_reports_per_call_time() -> None:
    measured = timing.naive_host_clock(lambda: time.sleep(0.002), calls=10)
    assert 2.0 <= measured.p50_ms <= 8.0
    assert measured.p20_ms == measured.p50_ms == measured.p80_ms
    assert measured.method == "naive host clock"


def test_peaks_are_positive_and_plausible() -> None:
    gbps = timing.measure_copy_gbps("cpu", megabytes=32)
    tflops, dtype = timing.measure_matmul_tflops("cpu", size=256)
    assert 0.05 < gbps < 2000
    assert 1e-4 < tflops < 100  # a CPU matmul: between a slow core and far beyond any CPU
    assert dtype == "float32"
    conv = timing.measure_conv3x3_tflops(channels=64, side=16)
    assert 1e-4 < conv < 100


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"device": "tpu"}, "device must be"),
        ({"device": "cpu", "min_run_time": 0}, "min_run_time"),
        ({"device": "cpu", "budget_s": 0}, "budget_s"),
    ],
)
def test_time_callable_refuses_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        timing.time_callable(lambda: None, **kwargs)


def test_other_bad_arguments() -> None:
    with pytest.raises(ValueError, match="calls must be"):
        timing.naive_host_clock(lambda: None, calls=0)
    with pytest.raises(ValueError, match="threads must be"):
        provenance.set_threads(0)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            timing.synchronize("cuda")


def test_set_threads_fixes_and_reports_the_count() -> None:
    before = torch.get_num_threads()
    try:
        assert provenance.set_threads(1) == 1 == torch.get_num_threads()
        assert provenance.set_threads(None) == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_timer_waits_for_the_device() -> None:
    n = 4096
    a = torch.randn(n, n, device="cuda", dtype=torch.float16)
    measured = timing.time_callable(lambda: a @ a, "cuda")
    tflops = 2 * n**3 / (measured.p50_ms * 1e-3) / 1e12
    # an unsynchronized timer would report the launch only: thousands of "TFLOP/s"
    assert 1 < tflops < 2500
    graph = timing.time_callable(lambda: a @ a, "cuda", cuda_graph=True)
    assert graph.p50_ms > 0.5 * measured.p50_ms


@pytest.mark.parametrize(("budget_s", "repeats"), [(None, timing.MIN_CPU_SAMPLES), (0.1, 3)])
def test_a_row_budget_caps_the_samples_of_a_slow_call(budget_s, repeats: int) -> None:
    """A 150 ms call: 5 samples without a budget; with one, it stops at 3 (MIN_BUDGET_SAMPLES)
    once the budget is spent, and the samples are single calls, none discarded."""
    start = time.perf_counter()
    measured = timing.time_callable(
        lambda: time.sleep(0.15), "cpu", min_run_time=0.1, warmup_calls=0, budget_s=budget_s
    )
    spent = time.perf_counter() - start
    assert measured.repeats == repeats == max(timing.MIN_BUDGET_SAMPLES, repeats)
    assert 150 * 0.98 <= measured.p20_ms <= measured.p50_ms <= measured.p80_ms
    assert spent < 0.15 * (repeats + 1.5)  # no hidden calls beyond the samples
    assert "single calls" in measured.method


def test_a_budget_leaves_fast_calls_alone() -> None:
    measured = timing.time_callable(lambda: None, "cpu", min_run_time=0.05, budget_s=1.0)
    assert measured.repeats >= timing.MIN_CPU_SAMPLES and "blocked_autorange" in measured.method
