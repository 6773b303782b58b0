"""`sepbench compare`: noise-aware verdicts, regressions named on stderr (exit 1), pytest-benchmark
JSON against a results.csv, and every bad input refused with exit 2 and its reason."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main
from bench.measuring.pytest_benchmark import EXTRA_FIELDS

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "reports" / "cpu"
LAT = ["latency_ms_p20", "latency_ms_p50", "latency_ms_p80"]


@pytest.fixture(scope="module")
def results() -> pd.DataFrame:
    if not (REPORT / "results.csv").exists():
        pytest.skip("reports/cpu/results.csv is not in this checkout")
    return pd.read_csv(REPORT / "results.csv")


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_identical_runs_are_within_noise(results, tmp_path, capsys):
    code, _out, _ = _run(
        ["compare", str(REPORT), str(REPORT / "results.csv"), "--out", str(tmp_path)], capsys
    )
    assert code == 0
    table = pd.read_csv(tmp_path / "compare.csv")
    timed = results[(results["status"] == "ok") & (results["suite"] != "peaks")]
    assert len(table) == len(timed.dropna(subset=LAT))
    assert (table["verdict"] == "within noise").all()
    assert (table["ratio"] == 1.0).all()
    md = (tmp_path / "compare.md").read_text()
    assert "AMD EPYC" in md and "Geometric-mean ratio" in md and "Device comparison" not in md
    assert (tmp_path / "compare.png").stat().st_size > 10_000


@pytest.mark.parametrize("factor", [1.5, 3.0])
def test_one_provider_slower_exits_1_naming_it(results, tmp_path, capsys, factor):
    slow = results.copy()
    provider = "eager_nchw"
    rows = slow["provider"] == provider
    assert rows.any()
    slow.loc[rows, LAT] *= factor
    slow.to_csv(tmp_path / "slow.csv", index=False)
    code, _, err = _run(
        ["compare", str(REPORT), str(tmp_path / "slow.csv"), "--out", str(tmp_path / "out")], capsys
    )
    assert code == 1
    named = [line for line in err.splitlines() if line.startswith("slower by")]
    assert named and all(provider in line for line in named)
    table = pd.read_csv(tmp_path / "out" / "compare.csv")
    assert set(table.loc[table["verdict"] == "slower", "provider"]) == {provider}
    changed = table[table["provider"] == provider]["change_pct"]
    assert changed.round(6).eq(round((factor - 1) * 100, 6)).all()
    # a threshold above the slowdown lets it pass
    code, _, _ = _run(
        [
            "compare",
            str(REPORT),
            str(tmp_path / "slow.csv"),
            "--fail-above",
            str((factor - 1) * 100 + 1),
            "--out",
            str(tmp_path / "o2"),
        ],
        capsys,
    )
    assert code == 0


def test_faster_and_only_in_rows(results, tmp_path, capsys):
    new = results.copy()
    new.loc[new["provider"] == "standard_conv", LAT] /= 2
    new = new[new["provider"] != "depthwise_only"]
    extra = new.iloc[[5]].copy()
    extra["workload"] = "brand_new_workload"
    pd.concat([new, extra]).to_csv(tmp_path / "new.csv", index=False)
    code, _, _ = _run(
        ["compare", str(REPORT), str(tmp_path / "new.csv"), "--out", str(tmp_path)], capsys
    )
    assert code == 0
    table = pd.read_csv(tmp_path / "compare.csv")
    assert set(table.loc[table["verdict"] == "faster", "provider"]) == {"standard_conv"}
    assert set(table.loc[table["verdict"] == "only in BASE", "provider"]) == {"depthwise_only"}
    assert list(table.loc[table["verdict"] == "only in NEW", "workload"]) == ["brand_new_workload"]


def _benchmark_json(rows: pd.DataFrame, path: Path, scale: float = 1.0) -> Path:
    """A --benchmark-json file as tests/benchmarks writes it: our row fields in extra_info and
    the raw samples (seconds) in stats.data."""
    benchmarks = []
    for _, row in rows.iterrows():
        extra = {k: (None if pd.isna(row.get(k)) else row.get(k)) for k in EXTRA_FIELDS}
        extra["batch"] = int(row["batch"])
        p20, p80 = row["latency_ms_p20"] * scale, row["latency_ms_p80"] * scale
        samples = [(p20 + (p80 - p20) * i / 10) / 1e3 for i in range(11)]
        benchmarks.append(
            {
                "name": row["workload"],
                "extra_info": extra,
                "stats": {"median": samples[5], "data": samples, "rounds": 11},
            }
        )
    path.write_text(
        json.dumps(
            {
                "benchmarks": benchmarks,
                "commit_info": {"id": "abc"},
                "datetime": "2026-01-01T00:00:00",
            }
        )
    )
    return path


def test_pytest_benchmark_json_against_results_csv(results, tmp_path, capsys):
    ok = results[(results["status"] == "ok") & (results["suite"] == "documents")]
    ok = ok.dropna(subset=LAT).head(12)
    path = _benchmark_json(ok, tmp_path / "bench.json", scale=2.0)
    code, _out, err = _run(["compare", str(REPORT), str(path), "--out", str(tmp_path)], capsys)
    table = pd.read_csv(tmp_path / "compare.csv")
    matched = table.dropna(subset=["ratio"])
    assert len(matched) == len(ok)
    assert matched["ratio"].between(1.5, 2.5).all()  # 2x the p20-p80 range's midpoint-ish
    assert (matched["verdict"] == "slower").all()
    assert code == 1 and "slower by" in err


def test_device_comparison_fails_only_when_asked(results, tmp_path, capsys):
    gpu = results.copy()
    gpu["device"] = "NVIDIA H200"
    gpu[LAT] = gpu[LAT] * 2
    gpu.to_csv(tmp_path / "gpu.csv", index=False)
    code, out, _ = _run(
        ["compare", str(REPORT), str(tmp_path / "gpu.csv"), "--out", str(tmp_path / "a")], capsys
    )
    assert code == 0 and "device comparison" in out
    assert "Device comparison" in (tmp_path / "a" / "compare.md").read_text()
    code, _, _ = _run(
        [
            "compare",
            str(REPORT),
            str(tmp_path / "gpu.csv"),
            "--fail-above",
            "10",
            "--out",
            str(tmp_path / "b"),
        ],
        capsys,
    )
    assert code == 1


def _bad_inputs(tmp: Path, results: pd.DataFrame) -> dict[str, tuple[Path, str]]:
    (tmp / "binary.csv").write_bytes(bytes(range(256)) * 4)
    (tmp / "empty.csv").write_text("")
    (tmp / "folder").mkdir()
    results.drop(columns=["latency_ms_p50"]).to_csv(tmp / "nop50.csv", index=False)
    other = results.copy()
    other["suite"] = "elsewhere"
    other.to_csv(tmp / "suite.csv", index=False)
    moved = results.copy()
    moved["workload"] = moved["workload"] + "_renamed"
    moved.to_csv(tmp / "nokey.csv", index=False)
    (tmp / "bad.json").write_text("{not json")
    return {
        "missing": (tmp / "nope.csv", "no such file or folder"),
        "binary": (tmp / "binary.csv", "is not a CSV: binary data"),
        "empty": (tmp / "empty.csv", "is empty"),
        "folder": (tmp / "folder", "without results.csv"),
        "columns": (tmp / "nop50.csv", "missing columns latency_ms_p50"),
        "suites": (tmp / "suite.csv", "runs of different suites"),
        "no key": (tmp / "nokey.csv", "no (suite, workload, provider, dtype, batch) in common"),
        "json": (tmp / "bad.json", "cannot read pytest-benchmark JSON"),
    }


@pytest.mark.parametrize(
    "case", ["missing", "binary", "empty", "folder", "columns", "suites", "no key", "json"]
)
def test_bad_input_exits_2_with_message(results, tmp_path, capsys, case):
    path, message = _bad_inputs(tmp_path, results)[case]
    code, _, err = _run(["compare", str(REPORT), str(path), "--out", str(tmp_path / "o")], capsys)
    assert code == 2
    assert message in err and str(path) in err
    assert "Traceback" not in err


def test_machine_info_hook_records_versions():
    spec = importlib.util.spec_from_file_location(
        "bench_conftest", ROOT / "tests" / "benchmarks" / "conftest.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    info: dict = {}
    module.pytest_benchmark_update_machine_info(None, info)
    recorded = info["sepbench"]
    for key in ("gpu", "driver", "cuda", "cudnn", "torch", "triton", "cpu_threads"):
        assert key in recorded
    import torch

    assert recorded["torch"] == torch.__version__
    assert recorded["cpu_threads"] == torch.get_num_threads() >= 1
