"""Every required claim is present and its verdict is computed from the evidence given."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.checking.claims import COLUMNS, EXAMPLE_WORKLOAD, evaluate_claims

REQUIRED = [
    "dw-cost-formulas", "dw-ratio-exact", "dw-ratio-large-r", "cifar-conv-3-32-params",
    "cifar-reduction-7-9x", "cifar-example-8.7x", "cifar-model-params", "cifar-model-8-9x",
    "cifar-accuracy", "cifar-train-speed", "cifar-latency-8.7x", "lenet-c1-params",
    "lenet-c3-formula", "lenet-c3-params", "lenet-c5-params", "lenet-f6-params",
    "lenet-f7-params", "lenet-total-params", "lenet-accuracy",
]  # fmt: skip


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
        ("dw-cost-formulas", "holds"), ("dw-ratio-exact", "holds"),
        ("dw-ratio-large-r", "refuted"), ("cifar-conv-3-32-params", "refuted"),
        ("cifar-reduction-7-9x", "holds"), ("cifar-example-8.7x", "holds"),
        ("cifar-model-params", "refuted"), ("cifar-model-8-9x", "refuted"),
        ("lenet-c3-formula", "refuted"), ("lenet-c3-params", "holds"),
        ("lenet-total-params", "holds"), ("lenet-paper-table", "holds"),
    ],
)  # fmt: skip
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
        {"suite": "documents", "workload": EXAMPLE_WORKLOAD, "provider": p, "dtype": "float32",
         "batch": 8, "latency_ms_p50": ms, "status": "ok", "device": "test"}
        for p, ms in (("standard_conv", std_ms), ("eager_nchw", sep_ms))
    ]  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("std_ms", "sep_ms", "verdict"), [(9.0, 1.0, "holds"), (2.0, 1.0, "refuted")]
)
def test_latency_claim_follows_measured_rows(std_ms, sep_ms, verdict):
    df = evaluate_claims(results=_results(std_ms, sep_ms)).set_index("claim_id")
    assert df.loc["cifar-latency-8.7x", "verdict"] == verdict
    assert df.loc["cifar-latency-8.7x", "measured"] == f"{std_ms / sep_ms:.2f}x"


def _training(acc_std: float, acc_dw: float, t_std: float, t_dw: float) -> pd.DataFrame:
    base = {"dataset": "cifar10", "epochs": 10, "params": 1, "macs": 1, "images_per_s": 1.0,
            "inference_latency_ms": 1.0, "device": "test"}  # fmt: skip
    return pd.DataFrame([
        {**base, "model": "cifar_cnn", "test_accuracy": acc_std, "time_per_epoch_s": t_std},
        {**base, "model": "cifar_cnn_dw", "test_accuracy": acc_dw, "time_per_epoch_s": t_dw},
    ])  # fmt: skip


def test_training_claims_follow_comparison():
    good = evaluate_claims(training=_training(0.72, 0.70, 10.0, 6.0)).set_index("claim_id")
    assert good.loc["cifar-accuracy", "verdict"] == "holds"
    assert good.loc["cifar-train-speed", "verdict"] == "holds"
    bad = evaluate_claims(training=_training(0.80, 0.60, 10.0, 9.5)).set_index("claim_id")
    assert bad.loc["cifar-accuracy", "verdict"] == "refuted"
    assert bad.loc["cifar-train-speed", "verdict"] == "refuted"
    assert bad.loc["lenet-accuracy", "verdict"] == "untested"  # no MNIST rows given
