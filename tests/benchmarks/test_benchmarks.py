"""The report's workloads as a pytest-benchmark suite, parametrized from bench.suites.

`make bench` (or `pytest tests/benchmarks --benchmark-enable --benchmark-only`) times the quick
suite on this machine's device; `--benchmark-json FILE` output converts with
`sepbench report --from-pytest-benchmark FILE`. Under `make test` (--benchmark-disable) only the
tiny "smoke" cases run, each body once; the quick cases skip.
"""

from __future__ import annotations

import pytest
import torch
from tolerances import TOLERANCES

from bench import runner, timing
from bench.providers import Unavailable, baseline_of, cases_for, max_rel_err
from bench.suites import build_suites

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _cases(size: str) -> list:
    return [
        pytest.param(
            case,
            size,
            id=f"{size}-{case.workload.suite}-{case.workload.id}-{case.provider}-"
            f"{str(case.dtype).removeprefix('torch.')}-N{case.workload.batch}",
        )
        for workload in build_suites(None, size, DEVICE)
        for dtype in runner.default_dtypes(DEVICE)
        for case in cases_for(workload, DEVICE, dtype)
    ]


@pytest.mark.parametrize(("case", "size"), _cases("smoke") + _cases("quick"))
def test_workload(benchmark, case, size) -> None:
    if size != "smoke" and benchmark.disabled:
        pytest.skip("quick-suite benchmark: run with --benchmark-enable (make bench)")
    if case.provider == "naive_host_clock":
        pytest.skip("document 001's host-clock method is a report-only methodology row")
    try:
        prepared = case.prepare()
    except Unavailable as err:
        pytest.skip(f"unavailable: {err}")
    env = runner.environment(DEVICE)
    # the first call absorbs compilation / autotuning and is the correctness check
    result = prepared.fn()
    timing.synchronize(DEVICE)
    err = max_rel_err(result, prepared.oracle()) if prepared.oracle else float("nan")
    rtol, atol = TOLERANCES[case.dtype]
    # whole models compound one rounding per layer (MobileNetV2: ~50): 10x the per-op budget
    bound = (rtol + atol) * (10 if case.workload.kind == "model" else 1)
    assert err <= bound, f"{case.provider}: max_rel_err {err:.3g} > {bound:.3g}"
    workload = case.workload
    benchmark.group = f"{workload.suite}/{workload.id}/N{workload.batch}"
    benchmark.extra_info.update(
        suite=workload.suite,
        workload=workload.id,
        provider=case.provider,
        dtype=str(case.dtype).removeprefix("torch."),
        batch=workload.batch,
        shape=runner.describe_shape(workload),
        macs=prepared.macs,
        macs_fvcore=prepared.macs_fvcore,
        bytes=prepared.nbytes,
        max_rel_err=err,
        backend=prepared.backend,
        layout=prepared.layout,
        baseline=baseline_of(workload.kind),
        note=prepared.note,
        **env,
    )
    if prepared.mode == "interpreter":
        benchmark.extra_info["status"] = "interpreter"
        if benchmark.disabled:
            return  # the smoke run's point: the correctness check above passed
        pytest.skip("Triton interpreter: correctness checked above, no latency to measure")

    def timed() -> object:
        out = prepared.fn()
        timing.synchronize(DEVICE)  # the clock stops after the device finishes
        return out

    benchmark(timed)
    benchmark.extra_info["status"] = "ok"
    stats = getattr(benchmark, "stats", None)
    if stats is not None and stats.stats.median > 0:
        benchmark.extra_info["gbps"] = prepared.nbytes / stats.stats.median / 1e9
        benchmark.extra_info["tflops"] = 2 * prepared.macs / stats.stats.median / 1e12
