"""`count` rows for every registered model; formulas vs fvcore vs torch's counter per layer."""

from __future__ import annotations

import pytest
from note_rules import assert_notes_hold

from bench.counting import COLUMNS, count_registered

CONV_LIKE = {"Conv2d", "Linear"}


@pytest.fixture(
    scope="module",
    params=[
        "lenet5_paper",
        "lenet5_paper_dw",
        "lenet5",
        "lenet5_dw",
        "cifar_cnn",
        "cifar_cnn_dw",
        "mobilenet_v2",
    ],
)
def counted(request):
    return request.param, count_registered(request.param)


def test_rows_and_total(counted):
    name, df = counted
    assert list(df.columns) == COLUMNS
    layers, total = df.iloc[:-1], df.iloc[-1]
    assert total["layer"] == "total" and len(layers) > 3
    for col in ("params", "macs_formula", "connections"):
        assert total[col] == layers[col].sum()
    # the total trainable parameters equal the model's own count
    from models import registry

    model = registry.build(name)
    assert total["params"] == sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_formula_equals_fvcore_and_torch_on_conv_and_linear(counted):
    _, df = counted
    rows = df[df["type"].isin(CONV_LIKE)]
    assert len(rows) > 0
    assert (rows["macs_formula"] == rows["macs_fvcore"]).all()
    assert (rows["flops_torch"] == 2 * rows["macs_fvcore"]).all()


def test_disagreements_are_explained(counted):
    _, df = counted
    differ = df[(df["layer"] != "total") & (df["macs_formula"] != df["macs_fvcore"])]
    assert differ["note"].str.len().gt(0).all(), differ[["layer", "type"]]
    assert_notes_hold(df)


def test_paper_table_per_layer():
    df = count_registered("lenet5_paper").set_index("layer")
    paper = {
        "c1": (156, 122_304),
        "s2": (12, 5_880),
        "c3": (1_516, 151_600),
        "s4": (32, 2_000),
        "c5": (48_120, 48_120),
        "f6": (10_164, 10_164),
        "output": (0, 840),
    }
    for layer, (params, connections) in paper.items():
        assert (df.loc[layer, "params"], df.loc[layer, "connections"]) == (params, connections)
    assert df.loc["total", "params"] == 60_000
    # the sparse C3 runs as a dense conv: the counters see 6x16 kernels, the formula 60
    assert df.loc["c3", "macs_formula"] == 60 * 25 * 100
    assert df.loc["c3", "macs_fvcore"] == 96 * 25 * 100


def test_batch_scales_counts():
    one = count_registered("lenet5").iloc[-1]
    four = count_registered("lenet5", batch=4).iloc[-1]
    assert four["macs_fvcore"] == 4 * one["macs_fvcore"]
    assert four["macs_formula"] == 4 * one["macs_formula"]
    assert four["params"] == one["params"]
