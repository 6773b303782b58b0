"""The report's workloads as a pytest-benchmark suite, parametrized from bench.measuring.suites.

`make bench` (or `pytest tests/benchmarks --benchmark-enable --benchmark-only`) times the quick
suite on this machine's device; `--benchmark-json FILE` output converts with
`sepbench report --from-pytest-benchmark FILE`. Each case goes through the runner's own
measure_case (prepare, check against float64, time), with the pytest-benchmark fixture as its
timer, so a benchmark row and a report row are built by one function. Under `make test`
(--benchmark-disable) only the tiny "smoke" cases run, each body once; the quick cases skip.
"""

from __future__ import annotations

import math

import pytest
import torch
from tolerances import TOLERANCES

from bench.measuring import runner
from bench.measuring.operators import cases_for, family_of
from bench.measuring.pytest_benchmark import EXTRA_FIELDS, benchmark_timer
from bench.measuring.suites import build_suites
from bench.provenance import environment

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
    if family_of(case.provider) == "methodology":
        pytest.skip("document 001's host-clock method is a report-only methodology row")
    workload = case.workload
    benchmark.group = f"{workload.suite}/{workload.id}/N{workload.batch}"
    row = runner.measure_case(
        case, DEVICE, environment(DEVICE), timer=benchmark_timer(benchmark, DEVICE)
    )
    benchmark.extra_info.update({k: row.get(k) for k in EXTRA_FIELDS})
    if row["status"] == "unavailable":
        pytest.skip(f"unavailable: {row['message']}")
    assert row["status"] in ("ok", "interpreter"), row.get("message")
    rtol, atol = TOLERANCES[case.dtype]
    # whole models compound one rounding per layer (MobileNetV2: ~50): 10x the per-op budget
    bound = (rtol + atol) * (10 if workload.kind == "model" else 1)
    assert row["max_rel_err"] <= bound, f"{case.provider}: max_rel_err {row['max_rel_err']:.3g}"
    if row["status"] == "interpreter" and not benchmark.disabled:
        pytest.skip("Triton interpreter: correctness checked, no latency to measure")
    if row["status"] == "ok" and not benchmark.disabled:
        assert row["latency_ms_p20"] <= row["latency_ms_p50"] <= row["latency_ms_p80"]
        seconds = row["latency_ms_p50"] * 1e-3
        benchmark.extra_info["gbps"] = row["bytes"] / seconds / 1e9
        benchmark.extra_info["tflops"] = 2 * row["macs"] / seconds / 1e12
    elif row["status"] == "ok":
        assert math.isnan(row["latency_ms_p50"])  # --benchmark-disable: ran once, untimed
