"""Plots and summary.md are drawn from a results.csv alone (a hand-made fixture here)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import pytest

from bench import commands, formulas
from bench.errors import UserError
from bench.files import write_csv_atomic
from bench.measuring.operators import OPERATORS, baseline_of, provider_table
from bench.measuring.results import COLUMNS, PEAKS_SUITE, add_derived
from bench.measuring.suites import HEADLINE_ID, kind_of_workload_id
from bench.reporting import plots, summary

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STD_MACS = formulas.conv2d(128, 256, 3, 32).macs  # 301,989,888 (document 001)
SEP_MACS = formulas.depthwise_separable(128, 256, 3, 32).macs  # 34,734,080


def _row(suite, workload, provider, latency, *, macs=1e6, status="ok", **kw):
    kind = None if suite == PEAKS_SUITE else kind_of_workload_id(workload)
    return {
        "suite": suite,
        "workload": workload,
        "provider": provider,
        "dtype": "float32",
        "batch": 1,
        "latency_ms_p50": latency,
        "latency_ms_p20": latency * 0.9 if latency else None,
        "latency_ms_p80": latency * 1.1 if latency else None,
        "macs": macs,
        "bytes": 4e6,
        "status": status,
        "device": "Fixture CPU",
        "threads": 1,
        "torch_version": "2.x",
        "triton_version": "3.x",
        "git_sha": "abc",
        "size": "quick",
        "timestamp": "2026-01-01T00:00:00+00:00",
        "max_rel_err": 1e-7,
        "kind": kind,
        "baseline": baseline_of(kind) if kind else None,
        **kw,
    }


def fixture_frame(fused_latency: float | None = None) -> pd.DataFrame:
    """A report with the headline workload, a second separable shape, RBF, models, peaks."""
    fused_status = "interpreter" if fused_latency is None else "ok"
    rows = [
        _row("peaks", "copy_bandwidth", "tensor_copy", None, gbps=20.0, macs=None),
        _row("peaks", "matmul_rate", "torch_mm", None, tflops=0.2, macs=None),
        _row("documents", HEADLINE_ID, "standard_conv", 3.0, macs=STD_MACS),
        _row("documents", HEADLINE_ID, "eager_nchw", 2.0, macs=SEP_MACS),
        _row("documents", HEADLINE_ID, "eager_channels_last", 1.5, macs=SEP_MACS),
        _row("documents", HEADLINE_ID, "naive_host_clock", 2.6, macs=SEP_MACS),
        _row(
            "documents",
            HEADLINE_ID,
            "triton_fused",
            fused_latency,
            macs=SEP_MACS,
            status=fused_status,
        ),
        _row("documents", "dwsep_3_32_k3_s1_32x32", "standard_conv", 0.2, macs=884736),
        _row("documents", "dwsep_3_32_k3_s1_32x32", "eager_nchw", 0.3, macs=125952),
        _row(
            "documents",
            "dwsep_3_32_k3_s1_32x32",
            "triton_fused",
            None,
            status="error",
            message="RuntimeError: boom",
        ),
        _row("documents", HEADLINE_ID, "onnxruntime_standard", 11.2, macs=STD_MACS),
        _row("documents", HEADLINE_ID, "onnxruntime", 1.6, macs=SEP_MACS),
        _row("rbf", "rbf_b256_d84_k10", "broadcast", 0.05, macs=215040),
        *(
            _row("rbf", f"rbf_b256_d84_k10{far}", p, 0.05, macs=215040, max_rel_err=err)
            for far, errs in (("", (1e-7, 1e-7, 2e-7)), ("_off10000", (3e-2, 2e-7, 4e-2)))
            for p, err in zip(("cdist_mm", "keops", "faiss"), errs, strict=True)
        ),
        _row(
            "rbf",
            "rbf_b256_d84_k10_off10000",
            "triton_fused",
            None,
            macs=215040,
            status="interpreter",
            max_rel_err=3e-7,
        ),
        _row("rbf", "rbf_b256_d84_k10", "mm_same_size", 0.01, macs=215040),
        _row("rbf", "rbf_b1024_d84_k1000", "broadcast", 9.0, macs=86016000),
        _row("rbf", "rbf_b1024_d84_k1000", "mm_same_size", 0.9, macs=86016000),
        _row("rbf", "rbfloss_b256_d84_k10", "doc002_eager", 0.2, macs=645120),
        _row("models", "lenet5", "torch", 0.4),
        _row("models", "lenet5_dw", "torch", 0.5),
        _row("models", "lenet5_dw", "triton", None, status="interpreter"),
    ]
    return add_derived(pd.DataFrame(rows, columns=COLUMNS))


def _write(tmp_path: Path, df: pd.DataFrame) -> Path:
    write_csv_atomic(df, tmp_path / "results.csv")
    return tmp_path


def test_plot_command_draws_every_plot_and_the_summary_from_the_csv(tmp_path: Path) -> None:
    folder = _write(tmp_path, fixture_frame())
    assert commands.plot(argparse.Namespace(dir=str(folder))) == 0
    for name in plots.PLOTS:
        data = (folder / name).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 5000, name
    text = (folder / "summary.md").read_text()
    for name in plots.PLOTS:
        assert f"]({name})" in text
    assert "Fixture CPU" in text
    assert "## Claims of the documents, checked" in text


def test_headline_table_uses_formulas_and_measured_ratios() -> None:
    table = summary.headline_table(fixture_frame()).iloc[0]
    assert table["operation ratio (formulas)"] == f"{STD_MACS / SEP_MACS:.3g}x" == "8.69x"
    assert table["eager latency ratio"] == "1.5x"  # 3.0 ms / 2.0 ms
    assert table["fused latency ratio"] == "not measured on CPU (interpreter)"
    assert table["compile latency ratio"] == "not measured"
    timed = summary.headline_table(fixture_frame(fused_latency=0.5)).iloc[0]
    assert timed["fused latency ratio"] == "6x"


def test_separable_ratios_pair_each_provider_with_its_standard_conv() -> None:
    ratios = plots.separable_ratios(fixture_frame()).set_index(["workload", "provider"])
    head = ratios.loc[(HEADLINE_ID, "eager_channels_last")]
    assert head["op_ratio"] == pytest.approx(STD_MACS / SEP_MACS)
    assert head["latency_ratio"] == pytest.approx(2.0)
    small = ratios.loc[("dwsep_3_32_k3_s1_32x32", "eager_nchw")]
    assert small["latency_ratio"] == pytest.approx(0.2 / 0.3)  # separable slower: ratio < 1
    assert (HEADLINE_ID, "triton_fused") not in ratios.index  # not timed: not plotted
    # a peer runtime's block over its own standard conv, not PyTorch's
    ort = ratios.loc[(HEADLINE_ID, "onnxruntime")]
    assert ort["runtime"] == "onnxruntime" and ort["latency_ratio"] == pytest.approx(7.0)
    assert set(ratios["runtime"]) == {"pytorch", "onnxruntime"}


def test_rbf_accuracy_sets_the_peers_beside_cdist_and_the_fused_kernel() -> None:
    acc = plots.rbf_accuracy(fixture_frame()).set_index(["offset", "provider"])["max_rel_err"]
    assert set(acc.index.get_level_values("provider")) == {
        "broadcast",
        "cdist_mm",
        "keops",
        "faiss",
        "triton_fused",
    }
    assert acc[(1e4, "faiss")] == 4e-2 and acc[(0.0, "faiss")] == 2e-7
    assert acc[(1e4, "triton_fused")] == 3e-7  # checked under the interpreter: still plotted
    assert "rbf_b1024_d84_k1000" not in set(plots.rbf_accuracy(fixture_frame())["base"])


def test_methodology_table_sets_naive_beside_honest() -> None:
    table = summary.methodology_table(fixture_frame())
    assert table["naive / honest"].item() == pytest.approx(2.6 / 2.0)


def test_fused_losses_only_from_data() -> None:
    assert summary.fused_losses(fixture_frame()).empty  # nothing timed: nothing claimed
    summary_frame = fixture_frame(fused_latency=1.8)  # slower than channels_last's 1.5 ms
    losses = summary.fused_losses(summary_frame)
    assert losses["fastest other"].item() == "eager_channels_last"
    assert losses["fused / fastest"].item() == pytest.approx(1.8 / 1.5)
    assert summary.fused_losses(fixture_frame(fused_latency=1.0)).empty


def test_summary_lists_rows_that_did_not_run_and_says_when_nothing_fused_was_timed(
    tmp_path: Path,
) -> None:
    df = fixture_frame()
    text = summary.write_summary(df, tmp_path).read_text()
    assert "RuntimeError: boom" in text
    assert "No fused-kernel latency was measured on this device" in text
    text = summary.write_summary(fixture_frame(fused_latency=1.8), tmp_path).read_text()
    assert "eager_channels_last" in text.split("## Where the fused kernels lose")[1]


def test_plots_survive_a_csv_with_no_measurements(tmp_path: Path) -> None:
    df = fixture_frame()
    folder = _write(tmp_path, df[df["suite"] == PEAKS_SUITE])
    paths = summary.write_report(folder)
    assert all(p.exists() for p in paths)


def test_plot_refuses_a_folder_without_results(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a directory"):
        commands.plot(argparse.Namespace(dir=str(tmp_path / "missing")))
    with pytest.raises(UserError, match="no results file"):
        commands.plot(argparse.Namespace(dir=str(tmp_path)))


def _lenet_and_models_frame() -> pd.DataFrame:
    """A lenet suite with three baselines, and a models suite with a pair, a single model and
    document 001's host clock."""
    rows = [
        _row("peaks", "copy_bandwidth", "tensor_copy", None, gbps=20.0, macs=None),
        _row("peaks", "matmul_rate", "torch_mm", None, tflops=0.2, macs=None),
        _row("lenet", "dwsep_1_6_k5_s1_32x32_p0", "standard_conv", 0.04),
        _row("lenet", "dwsep_1_6_k5_s1_32x32_p0", "eager_nchw", 0.08),
        _row("lenet", "dwsep_averylongworkloadname_x_y_z_32x32_p0", "standard_conv", 0.04),
        _row("lenet", "dwsep_averylongworkloadname_x_y_z_32x32_p0", "eager_nchw", 0.01),
        _row("lenet", "rbf_b1_d84_k10", "broadcast", 0.02),
        _row("lenet", "rbf_b1_d84_k10", "cdist_mm", 0.03),
        _row("lenet", "rbfloss_b1_d84_k10", "doc002_eager", 0.2),
        _row("lenet", "rbfloss_b1_d84_k10", "eager_stable", 0.1),
        _row("models", "cifar_cnn", "torch", 9.5),
        _row("models", "cifar_cnn", "naive_host_clock", 12.0),
        _row("models", "cifar_cnn_dw", "torch", 8.8),
        _row("models", "cifar_cnn_dw", "compile", 7.0),
        _row("models", "mobilenet_v2", "torch", 20.0),
    ]
    return add_derived(pd.DataFrame(rows, columns=COLUMNS))


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> dict:
    """The figures the plot functions draw, kept open and rendered (plots._save is bypassed)."""
    figures: dict = {}

    def keep(fig, path):
        fig.canvas.draw()
        figures[Path(path).name] = fig
        return path

    monkeypatch.setattr(plots, "_save", keep)
    return figures


def test_speedup_panels_hold_one_baseline_each_and_bars_grow_from_1x(tmp_path, drawn) -> None:
    df = _lenet_and_models_frame()
    panels = plots.speedup_panels(df)
    assert [(suite, OPERATORS[kind].baseline.name) for suite, kind, _ in panels] == [
        ("lenet", "standard_conv"),
        ("lenet", "broadcast"),
        ("lenet", "doc002_eager"),
        ("models", "torch"),
    ]
    plots.plot_speedup(df, tmp_path / "speedup.png")
    fig = drawn["speedup.png"]
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        bars = [p for p in ax.patches if p.get_width() != 0]
        assert bars and all(1.0 in (p.get_x(), p.get_x() + p.get_width()) for p in bars)
        box = ax.get_window_extent(renderer)
        legend = ax.get_legend().get_window_extent(renderer)
        assert legend.x0 >= box.x1  # beside the bars, never over them
        labels = [t.get_window_extent(renderer) for t in ax.get_yticklabels()]
        assert min(b.x0 for b in labels) >= 0  # the long workload names are not cut
        ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
        assert ticks and all(t.endswith("x") for t in ticks)  # 0.5x, 1x, 2x
    slower = [p for p in fig.axes[0].patches if p.get_width() < 0]
    assert slower  # eager_nchw at 0.5x draws leftwards from 1x


def test_models_plot_pairs_standard_with_twin_and_marks_the_host_clock(tmp_path, drawn) -> None:
    df = _lenet_and_models_frame()
    assert plots.model_groups(df) == [["cifar_cnn", "cifar_cnn_dw"], ["mobilenet_v2"]]
    plots.plot_models(df, tmp_path / "models.png")
    pair, single = drawn["models.png"].axes
    assert [t.get_text() for t in pair.get_xticklabels()] == ["torch", "compile"]
    assert "naive_host_clock" not in [t.get_text() for t in pair.get_xticklabels()]
    heights = sorted(round(p.get_height(), 6) for p in pair.patches if p.get_height() > 0)
    assert heights == [7.0, 8.8, 9.5]  # the three timed backends; the host clock is no bar
    marks = [line for line in pair.lines if line.get_marker() == "x"]
    assert len(marks) == 1 and marks[0].get_ydata()[0] == 12.0
    assert [t.get_text() for t in single.get_xticklabels()] == ["torch"]


def test_readme_provider_table_is_the_generated_one() -> None:
    """README.md's table of provider names is provider_table()'s output, so it cannot drift
    from the operators' tables (regenerate it with the command the README gives)."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = text.split("<!-- providers:start -->\n")[1].split("\n<!-- providers:end -->")[0]
    assert block == provider_table()
    for op in OPERATORS.values():
        assert all(f"`{p.name}`" in block for p in op.providers)
