"""What makes GPU numbers right before any GPU runs them, checked on CPU with fakes: one clock
per workload, static torch.compile graphs recorded per row, each row's roof of its own precision,
a memory refusal before allocation, and the provider filters."""

from __future__ import annotations

import math
import re
import types

import pandas as pd
import pytest
import torch

from bench.errors import UserError
from bench.measuring import plans, runner, timing
from bench.measuring.operators import MODEL, RBF, RBF_LOSS, Case, Prepared, Provider, compiling
from bench.measuring.results import COLUMNS, PEAKS_SUITE, add_derived
from bench.measuring.suites import ModelShape, RbfShape, Workload

ENV = {"device": "Fake GPU", "threads": 1, "torch_version": "t", "triton_version": "tr"}
COPY_GBPS, ROOFS = 4000.0, {"fp16": 900.0, "bf16": 900.0, "tf32": 400.0, "fp32": 60.0}


class _Setting:
    """The cost model a plan reads: bytes and MACs of the workload."""

    def __init__(self, nbytes: float, macs: float) -> None:
        self.nbytes, self.macs = nbytes, macs

    def working_bytes(self) -> float:
        return 3 * self.nbytes


def _case(name: str, workload: Workload, setting: _Setting, family: str = "eager") -> Case:
    x = torch.ones(4)

    def prepare() -> Prepared:
        return Prepared(lambda: x * 2, "aten", lambda: x.double() * 2, 4, 4, 16)

    return Case(workload, Provider(name, family, prepare, "test"), torch.float32, prepare, setting)


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """A 'cuda' device whose timer records (provider, cuda_graph) and answers with a latency
    that, like a real GPU, depends on the clock: graph replay has no launch overhead."""
    calls: list[tuple[str, bool]] = []
    current: dict[str, str] = {}

    def time_callable(fn, device, *, cuda_graph=False, **kwargs):
        calls.append((current["provider"], cuda_graph))
        method = "cuda-graph replay (do_bench_cudagraph)" if cuda_graph else "cuda events, L2"
        ms = 0.004 if cuda_graph else 0.012
        return timing.Timing(ms, ms, ms, repeats=0, method=method)

    real_measure = runner._measure

    def measure(case, *args, **kwargs):
        current["provider"] = case.provider
        return real_measure(case, *args, **kwargs)

    monkeypatch.setattr(timing, "time_callable", time_callable)
    monkeypatch.setattr(timing, "synchronize", lambda device: None)
    monkeypatch.setattr(runner, "_measure", measure)
    monkeypatch.setattr(plans, "free_bytes", lambda device: 80e9)
    return calls


def _measure(cases: list[Case]) -> pd.DataFrame:
    rows: list[dict] = []
    plan = lambda c: plans.use_cuda_graph(c, "cuda", COPY_GBPS, ROOFS)  # noqa: E731
    runner._measure_all(list(cases), rows, "cuda", ENV, 0.01, None, lambda: None, False, plan)
    return add_derived(pd.DataFrame(rows, columns=COLUMNS))


def test_every_provider_of_a_workload_is_timed_by_one_clock(fake_gpu) -> None:
    tiny = Workload("lenet", RbfShape(4, 84, 10), 4)  # 1.5 KB: launch-bound
    large = Workload("rbf", RbfShape(65536, 256, 1000), 65536)  # 330 MB: do_bench
    cases = [
        _case("broadcast", tiny, _Setting(1.5e3, 3e3)),
        _case("triton_fused", tiny, _Setting(1.5e3, 3e3), "fused"),
        _case("broadcast", large, _Setting(3.3e8, 1.7e10)),
        _case("triton_fused", large, _Setting(3.3e8, 1.7e10), "fused"),
    ]
    df = _measure(cases)
    assert fake_gpu == [
        ("broadcast", True),
        ("triton_fused", True),
        ("broadcast", False),
        ("triton_fused", False),
    ]
    for _, part in df.groupby("workload"):
        assert part["timing_method"].nunique() == 1
    # the same clock on both sides: a ratio of equals, not of a warm graph to a cold launch
    assert (df["speedup_vs_baseline"] == 1.0).all()


def test_a_speedup_across_two_clocks_is_not_computed() -> None:
    base = {"suite": "s", "workload": "w", "kind": "rbf", "dtype": "float32", "batch": 1}
    rows = [
        {
            **base,
            "provider": "broadcast",
            "baseline": "broadcast",
            "status": "ok",
            "latency_ms_p50": 0.012,
            "timing_method": "cuda events, L2 flushed (do_bench)",
        },
        {
            **base,
            "provider": "triton_fused",
            "baseline": "broadcast",
            "status": "ok",
            "latency_ms_p50": 0.004,
            "timing_method": "cuda-graph replay (do_bench_cudagraph)",
        },
    ]
    df = add_derived(pd.DataFrame(rows, columns=COLUMNS))
    assert df["speedup_vs_baseline"].iloc[0] == 1.0 and math.isnan(df["speedup_vs_baseline"][1])


def test_floor_decides_the_clock() -> None:
    shape = RbfShape(4096, 84, 10)
    case = RBF.cases(Workload("lenet", shape, 4096), "cpu", torch.float16)[0]
    floor = plans.floor_us(case, COPY_GBPS, ROOFS)
    expected = case.setting.nbytes / (COPY_GBPS * 1e9) * 1e6  # memory-bound: bytes / bandwidth
    assert floor == pytest.approx(expected) and floor < plans.LAUNCH_BOUND_US
    assert plans.use_cuda_graph(case, "cuda", COPY_GBPS, ROOFS)
    assert not plans.use_cuda_graph(case, "cpu", COPY_GBPS, ROOFS)


# ---- torch.compile: one static graph per case ----------------------------------------------------


@pytest.fixture
def eager_dynamo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dynamo's frames and caches as in the report, without Inductor's C++ build (seconds)."""
    monkeypatch.setattr(compiling, "BACKEND", "eager")
    torch._dynamo.reset()


def _compile_rows(op, workloads: list[Workload], dtypes=(torch.float32, torch.float64)) -> list:
    rows = []
    for w in workloads:
        for dtype in dtypes:
            (case,) = [c for c in op.cases(w, "cpu", dtype) if c.spec.family == "compile"]
            rows.append(runner.measure_case(case, "cpu", {}, min_run_time=0.01))
    return rows


def test_compile_providers_get_one_static_graph_per_case(eager_dynamo) -> None:
    """Nine RBF shapes x two dtypes through one reference function, and a model at two batches:
    each row is one fresh graph (past Dynamo's recompile limit of 8 a shared code object would
    have run eagerly), with no recompiles."""
    rbf = [Workload("rbf", RbfShape(b, 5, 3), b, compile_on_cpu=True) for b in range(2, 11)]
    loss = [Workload("rbf", RbfShape(b, 5, 3, loss=True), b, compile_on_cpu=True) for b in (2, 3)]
    models = [Workload("models", ModelShape("lenet5"), b, compile_on_cpu=True) for b in (1, 2)]
    rows = _compile_rows(RBF, rbf) + _compile_rows(RBF_LOSS, loss, (torch.float32,))
    rows += _compile_rows(MODEL, models, (torch.float32,))
    assert {r["status"] for r in rows} == {"ok"}, [r.get("message") for r in rows]
    assert [r["compile_graphs"] for r in rows] == [1] * len(rows)
    assert [r["compile_recompiles"] for r in rows] == [0] * len(rows)


def test_a_compiled_frame_that_ran_eagerly_is_an_error_row(eager_dynamo, monkeypatch) -> None:
    monkeypatch.setattr(compiling.StaticCompile, "entries", lambda self: 0)
    (row,) = _compile_rows(
        RBF, [Workload("rbf", RbfShape(3, 5, 3), 3, compile_on_cpu=True)], (torch.float32,)
    )
    assert row["status"] == "error" and "ran eagerly" in row["message"]


# ---- the roof of each row's own precision --------------------------------------------------------


def test_pct_of_peak_uses_the_roof_of_the_rows_precision() -> None:
    peaks = {"suite": PEAKS_SUITE, "batch": 1, "status": "ok", "workload": "matmul_rate"}
    rows = [
        {**peaks, "workload": "copy_bandwidth", "provider": "tensor_copy", "gbps": 4000.0},
        {**peaks, "provider": "torch_mm", "dtype": "float16", "precision": "fp16", "tflops": 800.0},
        {
            **peaks,
            "provider": "torch_mm_tf32",
            "dtype": "float32",
            "precision": "tf32",
            "tflops": 400.0,
        },
        {**peaks, "provider": "torch_mm", "dtype": "float32", "precision": "fp32", "tflops": 50.0},
    ]
    work = {
        "suite": "s",
        "workload": "w",
        "kind": "dwsep",
        "batch": 1,
        "status": "ok",
        "baseline": "standard_conv",
        "macs": 1e12,
        "bytes": 1e6,
        "latency_ms_p50": 1000.0,
    }
    rows += [
        {**work, "provider": "standard_conv", "dtype": "float32", "precision": "tf32"},
        {**work, "provider": "triton_fused", "dtype": "float32", "precision": "fp32"},
        {**work, "provider": "eager_nchw", "dtype": "float16", "precision": "fp16"},
        {**work, "provider": "eager_folded", "dtype": "float16"},  # none named: its dtype's
    ]
    df = add_derived(pd.DataFrame(rows, columns=COLUMNS)).set_index("provider")
    # 2 TFLOP/s achieved; the roof at 2e6 FLOP/B is the compute roof of each precision
    assert df.loc["standard_conv", "pct_of_peak"] == pytest.approx(100 * 2 / 400)
    assert df.loc["triton_fused", "pct_of_peak"] == pytest.approx(100 * 2 / 50)
    assert df.loc["eager_nchw", "pct_of_peak"] == pytest.approx(100 * 2 / 800)
    assert df.loc["eager_folded", "pct_of_peak"] == pytest.approx(100 * 2 / 800)


# ---- memory: refused before anything is allocated ------------------------------------------------


def test_a_provider_that_cannot_fit_is_skipped_before_allocating(monkeypatch) -> None:
    monkeypatch.setattr(plans, "free_bytes", lambda device: 80e9)  # an H100's 80 GB
    shape = RbfShape(65536, 256, 1000)  # the broadcast baseline's (B, K, D): 67 GB per copy
    cases = {c.provider: c for c in RBF.cases(Workload("rbf", shape, 65536), "cpu", torch.float32)}
    row = runner.measure_case(cases["broadcast"], "cpu", {}, min_run_time=0.01)
    assert row["status"] == "skipped"
    need = 2 * 65536 * 1000 * 256 * 4 / 1e9  # two (B, K, D) float32 copies: 134 GB, and more
    assert re.match(r"needs (\d+\.\d) GB of cpu memory", row["message"])
    assert float(row["message"].split()[1]) >= need
    assert "inputs" not in vars(cases["broadcast"].setting)  # nothing was built
    assert plans.memory_refusal(cases["expansion_mm"], "cpu") is None  # (B, K) fits


# ---- which providers run -------------------------------------------------------------------------


def test_provider_filters_take_names_and_families() -> None:
    cases = RBF.cases(
        Workload("rbf", RbfShape(8, 4, 3), 8, compile_on_cpu=True), "cpu", torch.float32
    )
    names = lambda cs: [c.provider for c in cs]  # noqa: E731
    assert names(runner.select(cases, ["fused", "broadcast"])) == ["broadcast", "triton_fused"]
    assert "compile_broadcast" not in names(runner.select(cases, skip=["compile"]))
    assert names(runner.select(cases, ["eager"], ["cdist_exact"])) == [
        "broadcast",
        "cdist_mm",
        "expansion_mm",
    ]
    with pytest.raises(UserError, match=r"unknown provider or family name.*nope.*families:"):
        runner.select(cases, ["nope"])


def test_report_refuses_an_unknown_provider_with_exit_2(tmp_path, capsys) -> None:
    from bench.cli import main

    code = main(["report", "--smoke", "--providers", "nope", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "nope" in err and "families:" in err and "Traceback" not in err


# ---- make gpu-check, as far as a CPU can check it ------------------------------------------------


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA"
)
def test_gpu_check_without_a_gpu_exits_2_before_writing(tmp_path, capsys) -> None:
    from bench.cli import main

    assert main(["gpu-check", "--out", str(tmp_path / "g")]) == 2
    assert "no CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()


def test_gpu_check_reads_the_autotuners_choices(monkeypatch) -> None:
    from bench.reporting import gpu_check
    from kernels import _autotune

    tuner = types.SimpleNamespace(
        cache={
            (4096, 64, "torch.float16", "torch.float16"): triton_config(64, 4),
            (4096, 64, "torch.float32", "torch.float32"): triton_config(32, 8),
        },
        configs_timings={},
    )
    monkeypatch.setattr(_autotune, "BUILT", [("_dwsep_kernel", tuner)])
    df = gpu_check.autotune_choices()
    assert list(df["dtype"]) == ["float16", "float32"]
    assert list(df["config"]) == ["64/32 w4 s1", "32/32 w8 s1"]


def triton_config(block: int, warps: int):
    import triton

    return triton.Config({"BLOCK_P": block, "BLOCK_C": 32}, num_warps=warps, num_stages=1)
