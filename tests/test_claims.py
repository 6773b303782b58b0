"""Every required claim is present and its verdict is computed from the evidence given."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.checking.claims import COLUMNS, EXAMPLE_WORKLOAD, TRAINING_CLAIMS, evaluate_claims

REQUIRED = [
    "dw-cost-formulas",
    "dw-ratio-exact",
    "dw-ratio-large-r",
    "cifar-conv-3-32-params",
    "cifar-reduction-7-9x",
    "cifar-example-8.7x",
    "cifar-model-params",
    "cifar-model-8-9x",
    "cifar-accuracy",
    "cifar-train-speed",
    "cifar-latency-8.7x",
    "lenet-c1-params",
    "lenet-c3-formula",
    "lenet-c3-params",
    "lenet-c5-params",
    "lenet-f6-params",
    "lenet-f7-params",
    "lenet-total-params",
    "lenet-accuracy",
]


@pytest.fixture(scope="module")
def offline() -> pd.DataFrame:
    return evaluate_claims().set_index("claim_id")


def test_columns_and_required_ids(offline):
    assert list(offline.reset_index().columns) == COLUMNS
    assert set(REQUIRED) <= set(offline.index)
    assert offline.index.is_unique
    assert set(offline["verdict"]) <= {"holds", "refuted", "untested"}


def test_no_check_errors(offline):
    assert (offline["measured"] != "error").all(), offline[offline["measured"] == "error"]["note"]


@pytest.mark.parametrize(
    ("claim", "verdict"),
    [
        ("dw-cost-formulas", "holds"),
        ("dw-ratio-exact", "holds"),
        ("dw-ratio-large-r", "refuted"),
        ("cifar-conv-3-32-params", "refuted"),
        ("cifar-reduction-7-9x", "holds"),
        ("cifar-example-8.7x", "holds"),
        ("cifar-model-params", "refuted"),
        ("cifar-model-8-9x", "refuted"),
        ("lenet-c3-formula", "refuted"),
        ("lenet-c3-params", "holds"),
        ("lenet-total-params", "holds"),
        ("lenet-paper-table", "holds"),
    ],
)
def test_offline_verdicts(offline, claim, verdict):
    assert offline.loc[claim, "verdict"] == verdict, offline.loc[claim, "note"]


def test_wrong_arithmetic_is_shown_corrected(offline):
    assert "1,441" in offline.loc["lenet-c3-formula", "measured"]
    assert "1,516" in offline.loc["lenet-c3-formula", "note"]
    assert "1/9" in offline.loc["dw-ratio-large-r", "note"]


def test_untested_without_evidence_names_what_it_needs(offline):
    for claim in ("cifar-accuracy", "cifar-train-speed", "cifar-latency-8.7x", "lenet-accuracy"):
        assert offline.loc[claim, "verdict"] == "untested"
        assert offline.loc[claim, "note"].startswith("needs ")


def _results(std_ms: float, sep_ms: float) -> pd.DataFrame:
    rows = [
        {
            "suite": "documents",
            "workload": EXAMPLE_WORKLOAD,
            "provider": p,
            "dtype": "float32",
            "batch": 8,
            "latency_ms_p50": ms,
            "status": "ok",
            "device": "test",
        }
        for p, ms in (("standard_conv", std_ms), ("eager_nchw", sep_ms))
    ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("std_ms", "sep_ms", "verdict"), [(9.0, 1.0, "holds"), (2.0, 1.0, "refuted")]
)
def test_latency_claim_follows_measured_rows(std_ms, sep_ms, verdict):
    df = evaluate_claims(results=_results(std_ms, sep_ms)).set_index("claim_id")
    assert df.loc["cifar-latency-8.7x", "verdict"] == verdict
    assert df.loc["cifar-latency-8.7x", "measured"] == f"{std_ms / sep_ms:.2f}x"
    # no onnxruntime rows in this table: that runtime's verdict is untested, saying what it needs
    assert df.loc["cifar-latency-8.7x@onnxruntime", "verdict"] == "untested"


STD_MACS, SEP_MACS = 301_989_888, 34_734_080  # document 001's example (8.69x)


def _runtime_rows() -> pd.DataFrame:
    """A hand-made results table: the 8.7x example and a second dw-sep shape on each runtime,
    and the CIFAR and LeNet model pairs; openvino's rows are unavailable (no package)."""
    small = "dwsep_32_64_k3_s1_32x32"
    latency = {  # (workload, provider): ms
        (EXAMPLE_WORKLOAD, "standard_conv"): 6.0,
        (EXAMPLE_WORKLOAD, "eager_nchw"): 1.2,  # 5.00x
        (EXAMPLE_WORKLOAD, "onnxruntime_standard"): 3.5,
        (EXAMPLE_WORKLOAD, "onnxruntime"): 0.5,  # 7.00x: within 20% of 8.7x
        (small, "standard_conv"): 0.5,
        (small, "eager_nchw"): 0.25,
        (small, "onnxruntime_standard"): 0.1,
        (small, "onnxruntime"): 0.2,  # slower than ONNX Runtime's standard conv
        ("cifar_cnn", "torch"): 4.0,
        ("cifar_cnn_dw", "torch"): 5.0,  # slower on PyTorch
        ("cifar_cnn", "onnxruntime"): 3.0,
        ("cifar_cnn_dw", "onnxruntime"): 2.0,  # faster on ONNX Runtime
        ("lenet5", "onnxruntime"): 0.2,
        ("lenet5_dw", "onnxruntime"): 0.1,
        ("lenet5_paper", "onnxruntime"): 0.3,
        ("lenet5_paper_dw", "onnxruntime"): 0.2,
    }
    macs = {EXAMPLE_WORKLOAD: (STD_MACS, SEP_MACS), small: (9e6, 2e6)}
    rows = []
    for (workload, provider), ms in latency.items():
        std_macs, sep_macs = macs.get(workload, (4e6, 1e6))
        standard = provider.endswith("standard") or provider == "standard_conv"
        standard = standard or workload in ("cifar_cnn", "lenet5", "lenet5_paper")
        rows.append(
            {
                "workload": workload,
                "provider": provider,
                "dtype": "float32",
                "batch": 1,
                "latency_ms_p50": ms,
                "macs": std_macs if standard else sep_macs,
                "status": "ok",
                "device": "test cpu",
                "backend": provider,
            }
        )
    for workload in (EXAMPLE_WORKLOAD, small, "cifar_cnn", "cifar_cnn_dw"):
        for provider in ("openvino", "openvino_standard"):
            if provider == "openvino_standard" and not workload.startswith("dwsep"):
                continue
            rows.append(
                {
                    "workload": workload,
                    "provider": provider,
                    "dtype": "float32",
                    "batch": 1,
                    "status": "unavailable",
                    "message": "Unavailable: openvino not installed (pip install sepbench[peers])",
                }
            )
    return pd.DataFrame(rows)


def test_speed_claims_are_judged_per_runtime_from_a_hand_made_table():
    df = evaluate_claims(results=_runtime_rows()).set_index("claim_id")
    v, m = df["verdict"], df["measured"]
    assert v["cifar-latency-8.7x"] == "refuted" and m["cifar-latency-8.7x"] == (
        "5.00x (formula 8.69x)"
    )
    assert v["cifar-latency-8.7x@onnxruntime"] == "holds"
    assert m["cifar-latency-8.7x@onnxruntime"] == "7.00x (formula 8.69x)"
    assert "ONNX Runtime" in df.loc["cifar-latency-8.7x@onnxruntime", "method"]
    assert v["dw-separable-faster"] == "holds"
    assert m["dw-separable-faster"].startswith("faster on 2 of 2 shapes; 2.00x-5.00x (formula")
    assert v["dw-separable-faster@onnxruntime"] == "refuted"
    assert "dwsep_32_64_k3_s1_32x32 (0.50x)" in df.loc["dw-separable-faster@onnxruntime", "note"]
    assert v["cifar-model-latency"] == "refuted" and v["cifar-model-latency@onnxruntime"] == "holds"
    assert m["cifar-model-latency@onnxruntime"] == "cifar_cnn_dw 1.50x (formula 4.00x)"
    assert v["lenet-dw-infers-faster@onnxruntime"] == "holds"
    assert v["lenet-dw-infers-faster"] == "untested"  # no PyTorch rows of the LeNets here
    for cid in ("cifar-latency-8.7x", "dw-separable-faster", "cifar-model-latency"):
        row = df.loc[f"{cid}@openvino"]
        assert row["verdict"] == "untested"
        assert "openvino not installed" in row["note"], row["note"]


def _comparison(**models: dict) -> pd.DataFrame:
    """A hand-made comparison.csv: one row per model and seed; each keyword is a model whose
    dict maps columns to one value per seed (scalars repeat)."""
    rows = []
    for model, columns in models.items():
        seeds = max(len(v) for v in columns.values() if isinstance(v, list))
        for seed in range(seeds):
            row = {
                "model": model,
                "seed": seed,
                "status": "ok",
                "epochs": 10,
                "device": "test CPU",
                "threads": 1,
                "concurrent_runs": 2,
                "memory_measure": "peak RSS",
            }
            row.update({k: v[seed] if isinstance(v, list) else v for k, v in columns.items()})
            rows.append(row)
    return pd.DataFrame(rows)


def _verdicts(table: pd.DataFrame, epochs: pd.DataFrame | None = None) -> pd.DataFrame:
    only = TRAINING_CLAIMS  # the others do not read training results (and cost fvcore counts)
    return evaluate_claims(training=table, training_epochs=epochs, claim_ids=only).set_index(
        "claim_id"
    )


@pytest.mark.parametrize(
    ("accuracies", "about_98_99", "about_99"),
    [
        ([0.988, 0.989, 0.990], "holds", "holds"),
        ([0.976, 0.978, 0.977], "holds", "refuted"),  # 97.7% rounds to 98
        ([0.970, 0.972, 0.969], "refuted", "refuted"),
        ([0.996, 0.997, 0.995], "refuted", "refuted"),  # too good to be "about 99%"
    ],
)
def test_accuracy_claims_judge_the_mean_over_seeds(accuracies, about_98_99, about_99):
    df = _verdicts(_comparison(lenet5={"dataset": "mnist", "test_accuracy": accuracies}))
    assert df.loc["lenet-accuracy", "verdict"] == about_98_99, df.loc["lenet-accuracy", "note"]
    assert df.loc["lenet-accuracy-99", "verdict"] == about_99
    assert "3 seeds" in df.loc["lenet-accuracy", "measured"]
    assert "rule: mean over seeds in [97.5%, 99.5%)" in df.loc["lenet-accuracy", "note"]


def _cifar(std_acc: list, dw_acc: list, **extra) -> pd.DataFrame:
    std = {"dataset": "cifar10", "test_accuracy": std_acc, **extra.get("std", {})}
    dw = {"dataset": "cifar10", "test_accuracy": dw_acc, **extra.get("dw", {})}
    return _comparison(cifar_cnn=std, cifar_cnn_dw=dw)


@pytest.mark.parametrize(
    ("std_acc", "dw_acc", "gap", "comparable", "words"),
    [
        ([0.720, 0.721, 0.719], [0.700, 0.701, 0.699], "holds", "holds", "beyond the noise"),
        ([0.72, 0.74, 0.70], [0.71, 0.73, 0.69], "refuted", "holds", "inside the noise"),
        ([0.750, 0.751, 0.749], [0.700, 0.701, 0.699], "refuted", "refuted", "beyond the noise"),
        ([0.700, 0.701, 0.699], [0.730, 0.731, 0.729], "refuted", "refuted", "beyond the noise"),
    ],
    ids=["2-points", "inside-noise", "5-points", "depthwise-better"],
)
def test_accuracy_gap_is_judged_against_seed_noise(std_acc, dw_acc, gap, comparable, words):
    df = _verdicts(_cifar(std_acc, dw_acc))
    assert df.loc["cifar-accuracy-gap", "verdict"] == gap, df.loc["cifar-accuracy-gap", "note"]
    assert df.loc["cifar-accuracy-comparable", "verdict"] == comparable
    assert words in df.loc["cifar-accuracy-gap", "measured"]
    if words == "inside the noise":
        assert "no measurable cost" in df.loc["cifar-accuracy-gap", "note"]


def test_one_seed_cannot_tell_a_gap_from_noise():
    df = _verdicts(
        _cifar([0.72], [0.70], std={"time_per_step_s": [10.0]}, dw={"time_per_step_s": [6.0]})
    )
    for claim in ("cifar-accuracy-gap", "cifar-accuracy-comparable", "cifar-train-speed"):
        assert df.loc[claim, "verdict"] == "untested", claim
        assert "at least two seeds" in df.loc[claim, "note"]
    assert df.loc["cifar-accuracy", "verdict"] == "holds"  # a level needs no second seed


@pytest.mark.parametrize(
    ("std_t", "dw_t", "verdict", "words"),
    [
        ([10.0, 10.1, 9.9], [6.0, 6.1, 5.9], "holds", "40% less"),
        ([10.0, 10.1, 9.9], [9.0, 9.1, 8.9], "refuted", "10% less"),  # real, but 10% only
        ([10.0, 10.1, 9.9], [9.5, 10.6, 9.4], "refuted", "inside the noise"),
        ([10.0, 10.1, 9.9], [12.0, 12.1, 11.9], "refuted", "more time"),
    ],
)
def test_training_speed_from_synthetic_steps(std_t, dw_t, verdict, words):
    table = _comparison(
        cifar_cnn={"dataset": "synthetic", "test_accuracy": 0.1, "time_per_step_s": std_t},
        cifar_cnn_dw={"dataset": "synthetic", "test_accuracy": 0.1, "time_per_step_s": dw_t},
    )
    df = _verdicts(table)
    row = df.loc["cifar-train-speed"]
    assert row["verdict"] == verdict, row["note"]
    assert words in row["measured"] + row["note"]
    assert df.loc["cifar-accuracy", "verdict"] == "untested"  # synthetic labels say nothing


@pytest.mark.parametrize(
    ("std_mb", "dw_mb", "verdict"),
    [
        ([1600, 1610, 1605], [1750, 1760, 1755], "refuted"),
        ([1750, 1760, 1755], [1600, 1610, 1605], "holds"),
        ([1600, 1700, 1650], [1640, 1660, 1600], "refuted"),
    ],  # inside the noise
)
def test_memory_claim(std_mb, dw_mb, verdict):
    table = _comparison(
        cifar_cnn={"dataset": "synthetic", "time_per_step_s": 1.0, "peak_memory_mb": std_mb},
        cifar_cnn_dw={"dataset": "synthetic", "time_per_step_s": 1.0, "peak_memory_mb": dw_mb},
    )
    assert _verdicts(table).loc["cifar-train-memory", "verdict"] == verdict


@pytest.mark.parametrize(
    ("errors", "verdict"),
    [
        ([0.0110, 0.0112, 0.0108], "refuted"),
        ([0.0090, 0.0100, 0.0095], "holds"),
        ([0.0080, 0.0081, 0.0079], "holds"),
    ],  # better than the paper: 0.95% is reached
)
def test_paper_reference_row(errors, verdict):
    table = _comparison(
        lenet5_paper={
            "dataset": "mnist",
            "test_error": errors,
            "test_accuracy": [1 - e for e in errors],
        }
    )
    row = _verdicts(table).loc["lenet-paper-0.95"]
    assert row["verdict"] == verdict, row["note"]
    assert row["document"].startswith("1998 LeCun") and "Levenberg-Marquardt" in row["note"]


def test_lenet_speed_loss_and_cpu_minutes():
    lenet = {"dataset": "mnist", "test_accuracy": [0.99, 0.99, 0.99]}
    table = _comparison(
        lenet5={**lenet, "time_per_step_s": [0.020, 0.021, 0.019], "train_time_s": [150, 160, 140]},
        lenet5_dw={**lenet, "time_per_step_s": [0.040, 0.041, 0.039], "train_time_s": 300},
    )
    falling = pd.DataFrame(
        {
            "model": "lenet5",
            "dataset": "mnist",
            "seed": [0, 0, 0, 1, 1, 1],
            "epoch": [1, 2, 3] * 2,
            "train_loss": [0.3, 0.1, 0.05, 0.3, 0.12, 0.13],
        }
    )
    df = _verdicts(table, falling)
    assert df.loc["lenet-dw-faster", "verdict"] == "refuted"
    assert df.loc["lenet-dw-faster", "measured"].startswith("2.00x")
    assert df.loc["lenet-loss-decreases", "verdict"] == "holds"  # the mean falls; seed 1 rose once
    assert "rose at 1 of 4 epoch steps" in df.loc["lenet-loss-decreases", "note"]
    rising = falling.assign(train_loss=[0.3, 0.1, 0.2, 0.3, 0.12, 0.13])
    assert _verdicts(table, rising).loc["lenet-loss-decreases", "verdict"] == "refuted"
    assert df.loc["lenet-cpu-minutes", "verdict"] == "holds"
    assert df.loc["lenet-cpu-minutes", "measured"].startswith("2.5 min")
    slow = table.assign(train_time_s=900.0)
    assert _verdicts(slow).loc["lenet-cpu-minutes", "verdict"] == "refuted"
    gpu = table.assign(device="NVIDIA H200")
    assert _verdicts(gpu).loc["lenet-cpu-minutes", "verdict"] == "untested"


def test_claims_reads_the_experiments_folder_by_default(tmp_path, monkeypatch, capsys):
    from bench.checking import sources
    from bench.cli import main

    folder = tmp_path / "reports" / "experiments"
    folder.mkdir(parents=True)
    _comparison(lenet5={"dataset": "mnist", "test_accuracy": [0.988, 0.99]}).to_csv(
        folder / "comparison.csv", index=False
    )
    monkeypatch.setattr(sources, "REPO_ROOT", tmp_path)
    assert main(["claims", "--csv", str(tmp_path / "c.csv")]) == 0
    assert f"training results from {folder}" in capsys.readouterr().out
    table = pd.read_csv(tmp_path / "c.csv").set_index("claim_id")
    assert table.loc["lenet-accuracy", "verdict"] == "holds"
    other = tmp_path / "other"  # --training still overrides the default
    other.mkdir()
    _comparison(lenet5={"dataset": "mnist", "test_accuracy": [0.95, 0.951]}).to_csv(
        other / "comparison.csv", index=False
    )
    assert main(["claims", "--training", str(other), "--csv", str(tmp_path / "d.csv")]) == 0
    assert (
        pd.read_csv(tmp_path / "d.csv").set_index("claim_id").loc["lenet-accuracy", "verdict"]
        == "refuted"
    )


def test_runtime_verdicts_table_has_one_column_per_runtime():
    from bench.checking.claims import RUNTIME_CLAIMS, runtime_verdicts

    table = runtime_verdicts(evaluate_claims(results=_runtime_rows())).set_index("claim")
    assert list(table.index) == list(RUNTIME_CLAIMS)
    assert {"cifar-latency-8.7x", "dw-separable-faster", "cifar-model-latency"} <= set(table.index)
    assert list(table.columns) == ["claimed", "pytorch", "onnxruntime", "openvino"]
    assert table.loc["cifar-latency-8.7x", "onnxruntime"] == "holds: 7.00x (formula 8.69x)"
    assert table.loc["cifar-latency-8.7x", "pytorch"] == "refuted: 5.00x (formula 8.69x)"
    assert table.loc["cifar-latency-8.7x", "openvino"] == "untested"
