"""The runner: resumable after a kill, failures become rows, the CSV schema, pytest-benchmark
JSON conversion, and a real (smoke-size) CPU report end to end."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from bench import commands, provenance
from bench.cli import build_parser
from bench.errors import Interrupted, UserError
from bench.measuring import runner, timing
from bench.measuring.operators import Case, Prepared, Provider, Unavailable
from bench.measuring.pytest_benchmark import rows_from_pytest_benchmark
from bench.measuring.results import COLUMNS, KEY, PEAKS_SUITE
from bench.measuring.suites import RbfShape, Workload

# the DESIGN.md results.csv contract
DESIGN_COLUMNS = [
    "suite",
    "workload",
    "provider",
    "dtype",
    "batch",
    "shape",
    "latency_ms_p50",
    "latency_ms_p20",
    "latency_ms_p80",
    "macs",
    "bytes",
    "tflops",
    "gbps",
    "speedup_vs_baseline",
    "max_rel_err",
    "device",
    "torch_version",
    "triton_version",
    "git_sha",
    "timestamp",
    "status",
]
WORKLOAD = Workload("rbf", RbfShape(8, 4, 3), 8)


@pytest.fixture(autouse=True)
def fixed_peaks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Peaks measurement (a 256 MiB copy) is tested in test_timing; here it is a constant."""
    peaks = timing.Peaks(10.0, (timing.Roof("fp32", "float32", 0.1),))
    monkeypatch.setattr(timing, "measure_peaks", lambda device: peaks)


def _prepared(value: float = 1.0) -> Prepared:
    x = torch.full((64,), value)
    return Prepared(
        fn=lambda: x * 2,
        backend="aten",
        oracle=lambda: torch.full((64,), 2 * value, dtype=torch.float64),
        macs=64,
        macs_fvcore=64,
        nbytes=512,
    )


def _fake_cases(providers: dict) -> callable:
    """cases_for replacement: provider name -> prepare callable, all on WORKLOAD."""

    def cases_for(workload: Workload, device: str, dtype: torch.dtype) -> list[Case]:
        return [
            Case(workload, Provider(name, "eager", prep, "test"), dtype, prep)
            for name, prep in providers.items()
        ]

    return cases_for


def _run(tmp_path: Path, **kwargs) -> pd.DataFrame:
    return runner.run([WORKLOAD], tmp_path, "cpu", min_run_time=0.01, progress=False, **kwargs)


def test_kill_mid_run_then_rerun_loses_and_duplicates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    interrupt = {"armed": True}

    def make(name: str):
        def prepare() -> Prepared:
            calls.append(name)
            if name == "p3" and interrupt["armed"]:
                raise KeyboardInterrupt  # what Ctrl-C (or a kill turned into SIGINT) raises
            return _prepared()

        return prepare

    names = [f"p{i}" for i in range(6)]
    monkeypatch.setattr(runner, "cases_for", _fake_cases({n: make(n) for n in names}))
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path)
    saved = pd.read_csv(tmp_path / "results.csv")
    work = saved[saved["suite"] != PEAKS_SUITE]
    assert list(work["provider"]) == ["p0", "p1", "p2"]  # everything finished was kept
    assert not list(tmp_path.glob(".*.tmp"))  # no temp file left behind
    first_timestamps = dict(zip(work["provider"], work["timestamp"], strict=True))

    interrupt["armed"] = False
    calls.clear()
    df = _run(tmp_path)
    assert calls == ["p3", "p4", "p5"]  # finished rows were not measured again
    work = df[df["suite"] != PEAKS_SUITE]
    assert sorted(work["provider"]) == names
    assert not df.duplicated(subset=list(KEY)).any()
    assert (df["suite"] == PEAKS_SUITE).sum() == 2  # peaks measured once, kept
    for name, stamp in first_timestamps.items():
        assert work.loc[work["provider"] == name, "timestamp"].item() == stamp

    calls.clear()
    _run(tmp_path, fresh=True)
    assert calls == names  # --fresh redoes everything


def test_failures_become_rows_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable() -> Prepared:
        raise Unavailable("kernel not built here")

    def broken_setup() -> Prepared:
        raise RuntimeError("unsupported shape")

    def broken_call() -> Prepared:
        p = _prepared()
        p.fn = lambda: (_ for _ in ()).throw(torch.cuda.OutOfMemoryError("CUDA out of memory"))
        return p

    def wrong() -> Prepared:
        p = _prepared()
        p.fn = lambda: torch.full((64,), 3.0)  # the oracle says 2.0: off by half
        return p

    providers = {
        "broadcast": _prepared,
        "missing": unavailable,
        "setup": broken_setup,
        "oom": broken_call,
        "wrong": wrong,
        "after": _prepared,
    }
    monkeypatch.setattr(runner, "cases_for", _fake_cases(providers))
    df = _run(tmp_path).set_index("provider")
    assert df.loc["missing", "status"] == "unavailable"
    assert "kernel not built here" in df.loc["missing", "message"]
    assert df.loc["setup", "status"] == "error"
    assert "RuntimeError: unsupported shape" in df.loc["setup", "message"]
    assert df.loc["oom", "status"] == "error"
    assert df.loc["oom", "message"].startswith("out of memory")
    assert df.loc["after", "status"] == "ok"
    assert math.isnan(df.loc["missing", "latency_ms_p50"])
    assert df.loc["after", "latency_ms_p50"] > 0
    assert df.loc["after", "max_rel_err"] == 0.0
    assert df.loc["wrong", "max_rel_err"] == pytest.approx(0.5)  # recorded, run not stopped

    # failed rows are retried on a rerun (a kernel may have arrived) and replace the old ones
    providers["missing"] = _prepared
    df = _run(tmp_path)
    assert not df.duplicated(subset=list(KEY)).any()
    assert df.set_index("provider").loc["missing", "status"] == "ok"


def test_csv_schema_full_precision_and_derived_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "cases_for", _fake_cases({"broadcast": _prepared, "b": _prepared}))
    df = _run(tmp_path, size="smoke")
    loaded = pd.read_csv(tmp_path / "results.csv")
    assert list(loaded.columns) == COLUMNS
    assert set(DESIGN_COLUMNS) <= set(loaded.columns)
    ok = loaded[loaded["status"] == "ok"].set_index("provider")
    # floats round-trip exactly: nothing was rounded on the way to disk
    assert ok.loc["b", "latency_ms_p50"] == df.set_index("provider").loc["b", "latency_ms_p50"]
    b = ok.loc["b"]
    assert b["gbps"] == pytest.approx(512 / (b["latency_ms_p50"] * 1e-3) / 1e9, rel=1e-12)
    assert b["tflops"] == pytest.approx(2 * 64 / (b["latency_ms_p50"] * 1e-3) / 1e12, rel=1e-12)
    expected = ok.loc["broadcast", "latency_ms_p50"] / b["latency_ms_p50"]
    assert b["speedup_vs_baseline"] == pytest.approx(expected, rel=1e-12)
    assert ok.loc["broadcast", "speedup_vs_baseline"] == 1.0
    assert b["baseline"] == "broadcast"
    assert b["pct_of_peak"] > 0 and b["threads"] >= 1 and b["size"] == "smoke"
    assert ok.loc["b", "torch_version"] == torch.__version__


def _benchmark_json(tmp_path: Path, samples: bool) -> Path:
    def bench(provider: str, median: float) -> dict:
        stats = {"median": median, "q1": median * 0.9, "q3": median * 1.2, "rounds": 7}
        if samples:
            stats["data"] = [median * f for f in (0.8, 0.9, 1.0, 1.1, 1.3)]
        return {
            "name": f"test_workload[{provider}]",
            "group": "rbf/rbf_b8_d4_k3/N8",
            "stats": stats,
            "extra_info": {
                "suite": "rbf",
                "workload": "rbf_b8_d4_k3",
                "provider": provider,
                "dtype": "float32",
                "batch": 8,
                "macs": 96,
                "bytes": 300,
                "baseline": "broadcast",
                "device": "Test CPU",
                "status": "ok",
                "max_rel_err": 1e-7,
            },
        }

    doc = {
        "benchmarks": [bench("broadcast", 2e-3), bench("triton_fused", 1e-3)],
        "commit_info": {"id": "abc123", "dirty": True},
        "datetime": "2026-01-01T00:00:00",
    }
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("samples", [True, False])
def test_pytest_benchmark_json_converts_to_rows(tmp_path: Path, samples: bool) -> None:
    df = rows_from_pytest_benchmark(_benchmark_json(tmp_path, samples)).set_index("provider")
    fused = df.loc["triton_fused"]
    assert fused["latency_ms_p50"] == pytest.approx(1.0)
    if samples:
        assert fused["latency_ms_p20"] == pytest.approx(0.88)  # numpy's linear p20 of the data
    else:
        assert fused["latency_ms_p20"] == pytest.approx(0.9)
        assert "q1/q3" in fused["timing_method"]
    assert fused["speedup_vs_baseline"] == pytest.approx(2.0)
    assert fused["gbps"] == pytest.approx(300 / 1e-3 / 1e9)
    assert fused["git_sha"] == "abc123-dirty"


def test_report_from_pytest_benchmark_writes_csv_plots_summary(tmp_path: Path) -> None:
    from bench.cli import main

    out = tmp_path / "out"
    assert (
        main(
            [
                "report",
                "--from-pytest-benchmark",
                str(_benchmark_json(tmp_path, True)),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert len(pd.read_csv(out / "results.csv")) == 2
    assert (out / "summary.md").exists() and (out / "roofline.png").exists()


def test_bad_json_and_bad_cli_input_are_user_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"benchmarks": [{"name": "x", "extra_info": {}}]}))
    with pytest.raises(UserError, match="lacks extra_info"):
        rows_from_pytest_benchmark(bad)
    bad.write_text("not json")
    with pytest.raises(UserError, match="cannot read"):
        rows_from_pytest_benchmark(bad)
    args = build_parser().parse_args(["report", "--suite", "nope", "--out", str(tmp_path)])
    with pytest.raises(UserError, match="unknown suite"):
        commands.report(args)
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA device"):
            provenance.resolve_device("cuda")


def test_device_slug_and_default_out() -> None:
    assert provenance.device_slug("cpu") == "cpu"
    assert provenance.device_slug("cuda", "NVIDIA H200") == "h200"
    assert provenance.device_slug("cuda", "NVIDIA H100 80GB HBM3") == "h100-80gb-hbm3"
    # a run's own folder, which git ignores: never the committed reference reports/cpu
    assert provenance.default_out("cpu").parts == ("runs", "report-cpu")


def test_smoke_report_end_to_end_on_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """The real providers, kernels (interpreter), plots and summary on the tiny smoke suite."""
    args = build_parser().parse_args(
        # the peers have tests of their own (tests/test_peers.py): their exports and KeOps'
        # compiles would triple this test's time
        [
            *("report", "--smoke", "--device", "cpu", "--out", str(tmp_path), "--fresh"),
            *("--skip-providers", "peer"),
        ]
    )
    assert commands.report(args) == 0
    df = pd.read_csv(tmp_path / "results.csv")
    work = df[df["suite"] != PEAKS_SUITE]
    said = capsys.readouterr()
    counts = ", ".join(f"{k} {v}" for k, v in work["status"].value_counts().items())
    # the console and the summary count the same rows, peaks apart
    assert f"{len(work)} rows ({counts}) and 2 peak rows in" in said.out
    summary_md = (tmp_path / "summary.md").read_text()
    assert f"| rows | {len(work)} ({counts}) and 2 peak rows |" in summary_md
    assert "| run time | this command " in summary_md and "measuring the rows " in summary_md
    assert "\r" not in said.err  # progress off a terminal: whole lines
    assert set(work["suite"]) == {"documents", "mobilenet", "lenet", "rbf", "models"}
    assert not work.duplicated(subset=list(KEY)).any()
    ok = work[work["status"] == "ok"]
    assert {"standard_conv", "eager_nchw", "broadcast", "mm_same_size", "torch"} <= set(
        ok["provider"]
    )
    assert (ok["latency_ms_p20"] <= ok["latency_ms_p50"]).all()
    assert (ok["latency_ms_p50"] <= ok["latency_ms_p80"]).all()
    assert (ok["max_rel_err"] < 1e-4).all()  # float32 against float64 references
    fused = work[work["provider"] == "triton_fused"]
    # on CPU the fused kernels are checked, never timed
    assert set(fused["status"]) <= {"interpreter", "unavailable"}
    assert fused["latency_ms_p50"].isna().all()
    checked = fused[fused["status"] == "interpreter"]
    assert (checked["max_rel_err"] < 1e-4).all()
    assert checked["note"].str.contains("interpreter: correctness only").all()
    naive = work[work["provider"] == "naive_host_clock"]
    assert len(naive) == 1 and naive["latency_ms_p50"].item() > 0
    summary = (tmp_path / "summary.md").read_text()
    assert "## Claims of the documents, checked" in summary
    for png in ("ratio_gap.png", "speedup.png", "roofline.png", "rbf_throughput.png", "models.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _rows_of_another_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **changes) -> Path:
    """A results.csv measured by this code, then edited to look like another run's."""
    monkeypatch.setattr(runner, "cases_for", _fake_cases({"p0": _prepared, "p1": _prepared}))
    _run(tmp_path, size="quick")
    csv = tmp_path / "results.csv"
    df = pd.read_csv(csv)
    for column, value in changes.items():
        df[column] = value
    df.to_csv(csv, index=False)
    return csv


@pytest.mark.parametrize(
    "changes",
    [
        {"git_sha": "99e8c29a6b17b5ebf0e8b11104b3210eaa8a6066"},  # another commit (a fresh clone
        {"device": "AMD EPYC 7R13"},  # finding the committed reference), another machine,
        {"torch_version": "2.0.0"},  # other versions, another thread count, another size
        {"threads": 7},
        {"size": "full"},
    ],
)
def test_another_runs_results_are_moved_aside_and_measured_anew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, changes: dict
) -> None:
    csv = _rows_of_another_run(tmp_path, monkeypatch, **changes)
    old = csv.read_bytes()
    calls: list[str] = []

    def counted(name: str):
        def prepare() -> Prepared:
            calls.append(name)
            return _prepared()

        return prepare

    monkeypatch.setattr(runner, "cases_for", _fake_cases({n: counted(n) for n in ("p0", "p1")}))
    df = runner.run([WORKLOAD], tmp_path, "cpu", min_run_time=0.01, size="quick")
    assert calls == ["p0", "p1"]  # every row measured here, none taken from the other run
    env = provenance.environment("cpu")
    assert set(df["git_sha"]) == {env["git_sha"]} and set(df["device"]) == {env["device"]}
    aside = [p for p in tmp_path.glob("results-*.csv")]
    assert len(aside) == 1 and aside[0].read_bytes() == old  # kept, not mixed in
    said = capsys.readouterr().out
    assert "holds another run" in said and f"moved to {aside[0].name}" in said
    assert next(iter(changes)) in said  # names what differs


def test_a_run_of_the_same_code_resumes_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setattr(runner, "cases_for", _fake_cases({"p0": _prepared, "p1": _prepared}))
    _run(tmp_path, size="quick")
    calls: list[str] = []
    cases = {n: (lambda n=n: calls.append(n) or _prepared()) for n in ("p0", "p1", "p2")}
    monkeypatch.setattr(runner, "cases_for", _fake_cases(cases))
    runner.run([WORKLOAD], tmp_path, "cpu", min_run_time=0.01, size="quick")
    assert calls == ["p2"]
    sha = provenance.short_sha(provenance.git_sha())
    assert f"resuming: 2 of 3 rows already measured in this run at {sha}" in capsys.readouterr().out
    assert not list(tmp_path.glob("results-*.csv"))


def test_lasting_unavailable_rows_are_not_retried_others_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def refuse(name: str, lasting: bool):
        def prepare() -> Prepared:
            calls.append(name)
            raise Unavailable(f"{name} cannot run here", lasting=lasting)

        return prepare

    cases = {"size_limit": refuse("size_limit", True), "no_module": refuse("no_module", False)}
    monkeypatch.setattr(runner, "cases_for", _fake_cases(cases))
    df = _run(tmp_path).set_index("provider")
    assert calls == ["size_limit", "no_module"]
    assert (df.loc[["size_limit", "no_module"], "status"] == "unavailable").all()
    calls.clear()
    _run(tmp_path)
    assert calls == ["no_module"]  # a module may arrive; the size limit of this code cannot move


def test_a_partial_last_line_is_dropped_and_measured_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setattr(runner, "cases_for", _fake_cases({"p0": _prepared, "p1": _prepared}))
    _run(tmp_path)
    csv = tmp_path / "results.csv"
    text = csv.read_text()
    csv.write_text(text[: len(text) - 40])  # a writer killed mid-line
    calls: list[str] = []
    cases = {n: (lambda n=n: calls.append(n) or _prepared()) for n in ("p0", "p1")}
    monkeypatch.setattr(runner, "cases_for", _fake_cases(cases))
    df = runner.run([WORKLOAD], tmp_path, "cpu", min_run_time=0.01)
    assert calls == ["p1"]
    assert "dropped 1 incomplete row(s)" in capsys.readouterr().out
    assert (df["provider"] == "p1").sum() == 1 and df.set_index("provider").loc[
        "p1", "status"
    ] == "ok"


def test_unreadable_results_are_refused_unless_fresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "cases_for", _fake_cases({"p0": _prepared}))
    csv = tmp_path / "results.csv"
    csv.write_bytes(b"\x00\xff\xfe binary")
    with pytest.raises(UserError, match="pass --fresh to move it aside"):
        _run(tmp_path)
    assert csv.read_bytes() == b"\x00\xff\xfe binary"
    _run(tmp_path, fresh=True)
    assert [p.read_bytes() for p in tmp_path.glob("results-*.csv")] == [b"\x00\xff\xfe binary"]
    assert pd.read_csv(csv)["provider"].tolist()[-1] == "p0"


def test_interrupt_says_how_many_rows_are_saved_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def stop() -> Prepared:
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "cases_for", _fake_cases({"a": _prepared, "b": stop}))
    with pytest.raises(Interrupted) as caught:
        _run(tmp_path)
    assert str(caught.value) == (
        f"interrupted; 1 rows saved in {tmp_path / 'results.csv'}; rerun to resume"
    )


def test_each_row_records_its_elapsed_seconds(tmp_path: Path, monkeypatch) -> None:
    def slow() -> Prepared:
        time.sleep(1.0)  # setup time counts: elapsed_s is the whole case
        return _prepared()

    monkeypatch.setattr(runner, "cases_for", _fake_cases({"fast": _prepared, "slow": slow}))
    df = _run(tmp_path).set_index("provider")
    assert df.loc["fast", "elapsed_s"] > 0
    assert (
        df.loc["slow", "elapsed_s"] >= 1.0
        and df.loc["slow", "elapsed_s"] > df.loc["fast", "elapsed_s"] + 0.5
    )
