"""`sepbench compare`: noise-aware verdicts (on real reruns of identical code under load, and on a
real rerun with one provider made 1.3x slower), regressions named on stderr (exit 1),
pytest-benchmark JSON against a results.csv, a readable plot, and every bad input refused with
exit 2 and its reason."""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main
from bench.measuring.pytest_benchmark import EXTRA_FIELDS

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "reports" / "cpu"
LAT = ["latency_ms_p20", "latency_ms_p50", "latency_ms_p80"]
SAMPLES = "samples_ms"  # a row's raw samples in ms, space-separated (bench.measuring.samples)


@pytest.fixture(scope="module")
def results() -> pd.DataFrame:
    if not (REPORT / "results.csv").exists():
        pytest.skip("reports/cpu/results.csv is not in this checkout")
    return pd.read_csv(REPORT / "results.csv")


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def _scaled(df: pd.DataFrame, factor: float, rows: pd.Series | None = None) -> pd.DataFrame:
    """A copy of ``df`` with ``rows`` (a boolean mask; all rows by default) ``factor`` times as
    slow: the latency percentiles and, where the file keeps them, the raw samples alike, so the
    Mann-Whitney U test over the samples sees the same change as the percentiles."""
    rows = pd.Series(True, index=df.index) if rows is None else rows
    out = df.copy()
    out.loc[rows, LAT] *= factor
    if SAMPLES in out.columns:
        out[SAMPLES] = [
            " ".join(f"{float(v) * factor:.6g}" for v in str(cell).split()) if r else cell
            for cell, r in zip(out[SAMPLES].fillna(""), rows, strict=True)
        ]
    return out


def test_identical_runs_are_within_noise(results, tmp_path, capsys):
    code, _out, _ = _run(
        ["compare", str(REPORT), str(REPORT / "results.csv"), "--out", str(tmp_path)], capsys
    )
    assert code == 0
    table = pd.read_csv(tmp_path / "compare.csv")
    timed = results[(results["status"] == "ok") & (results["suite"] != "peaks")]
    assert len(table) == len(timed.dropna(subset=LAT))
    # every row a test can judge is within noise; only rows with too few raw samples for any
    # U test (a 1-sample host clock, a 3-sample slow row) are not judged
    few = table["test"].str.startswith("too few samples")
    assert (table.loc[~few, "verdict"] == "within noise").all() and (~few).any()
    assert (table.loc[few, "verdict"] == "not judged").all()
    assert (table.loc[table["test"] == "Mann-Whitney U", "p_value"] > 0.99).all()  # same samples
    assert (table["ratio"] == 1.0).all()
    md = (tmp_path / "compare.md").read_text()
    assert "AMD EPYC" in md and "Providers over their rows" in md and "Device comparison" not in md
    assert "latency: NEW p50 / BASE p50; chosen because a quiet host" in md  # same peaks
    assert (tmp_path / "compare.png").stat().st_size > 10_000


@pytest.mark.parametrize("factor", [1.5, 3.0])
def test_one_provider_slower_exits_1_naming_it(results, tmp_path, capsys, factor):
    provider = "eager_nchw"
    rows = results["provider"] == provider
    assert rows.any()
    slow = _scaled(results, factor, rows)
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
    new = _scaled(results, 0.5, results["provider"] == "standard_conv")
    new = new[new["provider"] != "depthwise_only"]
    extra = new.iloc[[5]].copy()
    extra["workload"] = "brand_new_workload"
    pd.concat([new, extra]).to_csv(tmp_path / "new.csv", index=False)
    code, _, _ = _run(
        ["compare", str(REPORT), str(tmp_path / "new.csv"), "--out", str(tmp_path / "o")], capsys
    )
    assert code == 0
    table = pd.read_csv(tmp_path / "o" / "compare.csv")
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
    # a BASE without raw samples (a results.csv written before the column existed), whatever
    # the reference run keeps: its rows are judged by the p20-p80 overlap
    base = tmp_path / "base.csv"
    results.drop(columns=[SAMPLES], errors="ignore").to_csv(base, index=False)
    ok = results[(results["status"] == "ok") & (results["suite"] == "documents")]
    ok = ok.dropna(subset=LAT).head(12)
    path = _benchmark_json(ok, tmp_path / "bench.json", scale=2.0)
    # the JSON has no peaks rows: the host's state is unknown, and every row 2x slower reads as
    # the host's drift (the relative metric) unless plain latency is asked for
    out = tmp_path / "out"
    code, _out, err = _run(["compare", str(base), str(path), "--out", str(out)], capsys)
    table = pd.read_csv(out / "compare.csv")
    assert code == 0 and set(table["metric"].dropna()) == {"relative"}
    code, _out, err = _run(
        ["compare", str(base), str(path), "--latency", "--out", str(out)], capsys
    )
    table = pd.read_csv(out / "compare.csv")
    matched = table.dropna(subset=["ratio"])
    assert len(matched) == len(ok)
    assert matched["ratio"].between(1.5, 2.5).all()  # 2x the p20-p80 range's midpoint-ish
    assert (matched["verdict"] == "slower").all() and set(matched["metric"]) == {"latency"}
    assert (matched["test"] == "p20-p80 overlap (no raw samples)").all()  # none in BASE
    assert code == 1 and "slower by" in err


def test_device_comparison_fails_only_when_asked(results, tmp_path, capsys):
    gpu = _scaled(results, 2.0)
    gpu["device"] = "NVIDIA H200"
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


# ------------------------------------------------ real reruns on the shared 2-core host

FIXTURES = ROOT / "tests" / "fixtures" / "compare"  # how they were made: its README.md


SETS = [FIXTURES, FIXTURES / "heldout"]  # heldout/: made after the thresholds were set


@pytest.mark.parametrize("runs", SETS, ids=["fixtures", "heldout"])
def test_identical_code_under_load_exits_0(runs, tmp_path, capsys):
    code, out, err = _run(
        ["compare", str(runs / "base"), str(runs / "busy"), "--out", str(tmp_path)], capsys
    )
    assert code == 0, err
    table = pd.read_csv(tmp_path / "compare.csv")
    assert len(table) == 62 and table["ratio"].max() / table["ratio"].min() > 2.5  # the host moved
    assert (table["verdict"] == "slower").mean() <= 0.02
    assert set(table["metric"]) == {"relative"} and "relative metric" in out
    assert (table["test"] == "Mann-Whitney U").sum() == 57  # all but the 1-sample host clocks
    providers = pd.read_csv(tmp_path / "compare_providers.csv")
    assert not (providers["verdict"] == "slower").any()
    # the interval overlap this replaces called half or more of these rows slower or faster
    base = pd.read_csv(runs / "base" / "results.csv")
    busy = pd.read_csv(runs / "busy" / "results.csv")
    both = base.merge(busy, on=["suite", "workload", "provider", "dtype", "batch"])
    both = both[(both["status_x"] == "ok") & (both["suite"] != "peaks")]
    apart = (both["latency_ms_p20_y"] > both["latency_ms_p80_x"]) | (
        both["latency_ms_p80_y"] < both["latency_ms_p20_x"]
    )
    assert apart.mean() > 0.5


@pytest.mark.parametrize("runs", SETS, ids=["fixtures", "heldout"])
def test_provider_made_slower_in_a_real_rerun_exits_1_naming_it(runs, tmp_path, capsys):
    code, _out, err = _run(
        ["compare", str(runs / "base"), str(runs / "slow"), "--out", str(tmp_path)], capsys
    )
    assert code == 1
    named = [line for line in err.splitlines() if line.startswith("slower by")]
    assert named and all("eager_nchw" in line for line in named), err
    providers = pd.read_csv(tmp_path / "compare_providers.csv")
    slower = providers[providers["verdict"] == "slower"]
    assert list(slower["provider"]) == ["eager_nchw"] and slower["rows"].iloc[0] == 8
    assert 25 < slower["change_pct"].iloc[0] < 70  # 1.3x injected, as measured on a busy host
    notes = pd.read_csv(runs / "slow" / "results.csv")
    eager = notes[notes["provider"] == "eager_nchw"]
    assert eager["note"].str.contains("test slowdown x1.3").all()  # the fixture says what it is


def test_uniform_drift_is_absorbed_unless_latency_is_asked(tmp_path, capsys):
    """Every row 1.8x slower and the peaks down: the host, not the code; --latency judges
    latency as measured and fails."""
    busy = pd.read_csv(FIXTURES / "busy" / "results.csv")
    work = busy["suite"] != "peaks"
    slow = _scaled(busy, 1.8, work)
    slow.loc[~work, ["gbps", "tflops"]] /= 1.8
    slow.to_csv(tmp_path / "loaded.csv", index=False)
    argv = ["compare", str(FIXTURES / "busy"), str(tmp_path / "loaded.csv")]
    code, _, _ = _run([*argv, "--out", str(tmp_path / "a")], capsys)
    assert code == 0
    code, _, err = _run([*argv, "--latency", "--out", str(tmp_path / "b")], capsys)
    assert code == 1 and "[latency, Mann-Whitney U]" in err


def test_compare_png_ticks_never_crowd():
    from bench.reporting.compare_plot import MIN_TICK_GAP, ratio_ticks

    for lo, hi in [(0.9, 1.1), (0.47, 2.2), (0.05, 30.0), (0.99, 1.01), (0.3, 1.05)]:
        ticks = ratio_ticks(lo, hi)
        assert 1.0 in ticks and all(lo <= t <= hi for t in ticks)
        span = math.log(hi / lo)
        gaps = [math.log(b / a) for a, b in itertools.pairwise(ticks)]
        assert all(g >= MIN_TICK_GAP * span for g in gaps), (lo, hi, ticks)
    assert len(ratio_ticks(0.47, 2.2)) >= 5


def test_compare_png_labels_do_not_overlap(results, tmp_path):
    """The comparison of the reference run against itself (every timed row): no two x tick
    labels and no two row labels of the saved figure overlap."""
    import matplotlib.pyplot as plt

    from bench.reporting import compare, compare_plot

    done = compare.compare_runs([str(REPORT), str(REPORT / "results.csv")])
    seen = {}

    def keep(fig, *args, **kwargs):
        seen["fig"] = fig

    real_close = plt.close
    try:
        plt.close = keep
        compare_plot.plot(done.table, done.pairs, 10.0, tmp_path / "c.png", done.providers)
    finally:
        plt.close = real_close
    fig = seen["fig"]
    fig.canvas.draw()
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    shown = [  # every visible x label, minor ones too (labelled minor ticks crowded before)
        t
        for t in ax.get_xticklabels(minor=True) + ax.get_xticklabels()
        if t.get_text() and lo <= t.get_position()[0] <= hi
    ]
    xs = sorted((t.get_window_extent() for t in shown), key=lambda b: b.x0)
    assert len(xs) >= 3
    assert all(b.x0 - a.x1 >= 10 for a, b in itertools.pairwise(xs))  # pixels apart
    ys = [t.get_window_extent() for t in ax.get_yticklabels() if t.get_text()]
    assert len(ys) == len(done.table) and not any(a.overlaps(b) for a, b in itertools.pairwise(ys))
    real_close(fig)


@pytest.mark.parametrize("value", ["-5", "nan", "inf"])
def test_fail_above_must_be_a_percent(results, tmp_path, capsys, value):
    code, _, err = _run(
        ["compare", str(REPORT), str(REPORT), f"--fail-above={value}", "--out", str(tmp_path)],
        capsys,
    )
    assert code == 2 and "--fail-above" in err and "0 or more" in err


@pytest.mark.parametrize("where", ["proc", "file", "foreign"])
def test_bad_out_folder_exits_2(results, tmp_path, capsys, where):
    out = {
        "proc": Path("/proc/x"),
        "file": tmp_path / "a-file",
        "foreign": tmp_path / "photos",
    }[where]
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"\xff")
    code, _, err = _run(["compare", str(REPORT), str(REPORT), "--out", str(out)], capsys)
    assert code == 2 and str(out) in err and "Traceback" not in err
    assert err.startswith("sepbench compare: error: --out ")


def test_two_new_runs_each_judged_against_base(tmp_path, capsys):
    runs = [str(FIXTURES / r) for r in ("base", "busy", "slow")]
    code, _, err = _run(["compare", *runs, "--out", str(tmp_path)], capsys)
    assert code == 1
    named = [line for line in err.splitlines() if line.startswith("slower by")]
    assert named and all("in slow:" in line and "eager_nchw" in line for line in named)


def test_rows_keep_base_measurement_order():
    """The drift reference is the rows measured next to each row: BASE's file order, NEW-only
    rows after it (an outer merge sorts the keys)."""
    from bench.reporting import compare

    done = compare.compare_runs([str(FIXTURES / "base"), str(FIXTURES / "busy")])
    base = pd.read_csv(FIXTURES / "base" / "results.csv")
    timed = base[(base["status"] == "ok") & (base["suite"] != "peaks")]
    assert list(done.table["provider"]) == list(timed["provider"])
    assert list(done.table["workload"]) == list(timed["workload"])
