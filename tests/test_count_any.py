"""`sepbench count` beyond the registry: torchvision models against their documented
num_params and _ops, a package.module:callable model, a layer without a formula, the zoo."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from note_rules import assert_notes_hold
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from bench import formulas
from bench.cli import main
from bench.counting import count_model
from bench.counting.sources import resolve
from bench.counting.zoo import run_zoo

# torchvision rounds _ops (GFLOPS) to 3 decimals
HALF_ULP_G = 0.0005


def _weights(name: str):
    from torchvision import models

    return models.get_model_weights(name).DEFAULT


@pytest.fixture(scope="module", params=["resnet18", "mobilenet_v3_small", "swin_t"])
def torchvision_count(request):
    source = resolve(f"torchvision:{request.param}")
    return request.param, count_model(source.model, source.input_shape, source.batch)


def test_torchvision_against_documented_meta(torchvision_count):
    name, df = torchvision_count
    meta = _weights(name).meta
    total = df.iloc[-1]
    assert total["params"] == meta["num_params"]
    # torchvision's _ops are FlopCounterMode's multiply-adds: equal to its rounding
    assert abs(total["flops_torch"] / 2e9 - meta["_ops"]) <= HALF_ULP_G
    # the formulas count the same products plus reads (BN, pooling, softmax)
    products = (total["macs_formula"] - df.attrs["formula_reads"]) / 1e9
    assert abs(products - meta["_ops"]) <= HALF_ULP_G
    assert df.attrs["formula_reads"] > 0


def test_torchvision_rows_explained_and_complete(torchvision_count):
    _, df = torchvision_count
    layers = df.iloc[:-1]
    assert not layers["note"].str.contains("no formula").any()
    halved = layers["flops_torch"] / 2
    differ = layers[
        (layers["macs_formula"] != layers["macs_fvcore"]) | (layers["macs_formula"] != halved)
    ]
    assert differ["note"].str.len().gt(0).all(), differ[["layer", "type"]]
    assert_notes_hold(df)
    for col in ("params", "macs_formula", "connections"):
        assert df.iloc[-1][col] == layers[col].sum()
    assert df.iloc[-1]["macs_fvcore"] == layers["macs_fvcore"].sum()
    assert df.iloc[-1]["flops_torch"] == layers["flops_torch"].sum()


def test_swin_functional_rows_hold_the_attention(torchvision_count):
    name, df = torchvision_count
    if name != "swin_t":
        pytest.skip("Swin's attention runs as functional ops")
    own = df[df["type"] == "ShiftedWindowAttention (own ops)"]
    assert len(own) == 12 and own["macs_formula"].gt(0).all()
    assert own["note"].str.contains("Tensor.matmul x2").all()
    unrun = df[df["layer"].str.endswith("attn.qkv")]
    assert unrun["note"].str.contains("own ops use its weights").all()


def test_callable_model_counts_functional_ops(tmp_path, capsys):
    out = tmp_path / "tiny.csv"
    assert (
        main(["count", "custom_models:tiny_residual", "--input", "2x3x8x8", "--csv", str(out)]) == 0
    )
    df = pd.read_csv(out).set_index("layer")
    assert df.loc["conv", "macs_formula"] == 2 * formulas.conv2d(3, 3, 3, 8).macs
    own = df.loc["TinyResidual (own ops)"]
    # two matmuls: (3x64)@(64x3) and (3x3)@(3x64) per sample, plus softmax over 3x3 scores
    assert own["macs_formula"] == 2 * (3 * 64 * 3 + 3 * 3 * 64 + 9)
    assert own["flops_torch"] == 2 * 2 * (3 * 64 * 3 + 3 * 3 * 64)
    assert "Tensor.add x1" in own["note"]  # the residual add, named (0 MACs by rule d)
    assert df.loc["total", "params"] == sum(
        p.numel() for p in __import__("custom_models").tiny_residual().parameters()
    )


def test_leaf_without_rule_is_counted_from_its_ops(tmp_path, capsys):
    out = tmp_path / "gram.csv"
    assert (
        main(["count", "custom_models:with_unknown_layer", "--input", "1x3x2x2", "--csv", str(out)])
        == 0
    )
    df = pd.read_csv(out, keep_default_na=False).set_index("layer")
    assert df.loc["2", "macs_formula"] == 4 * 4  # x (1x4) @ W (4x4)
    assert df.loc["2", "flops_torch"] == 2 * 4 * 4
    assert "counted from the ops it ran: Tensor.matmul x1" in df.loc["2", "note"]
    assert "partial" not in df.loc["total", "note"]
    assert df.loc["total", "macs_formula"] == 12 * 4 + 16


def test_op_without_formula_is_listed_and_the_total_partial(tmp_path, capsys):
    out = tmp_path / "sorted.csv"
    argv = ["count", "custom_models:with_uncounted_layer", "--input", "1x3x2x2", "--csv", str(out)]
    assert main(argv) == 0
    df = pd.read_csv(out, keep_default_na=False).set_index("layer")
    assert "torch.sort x1 (aten.sort)" in df.loc["2", "uncounted"]
    assert "partial" in df.loc["total", "note"] and "torch.sort" in df.loc["total", "note"]
    assert df.loc["total", "macs_formula"] == 12 * 4


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["count", "custom_models:tiny_residual"], "needs --input"),
        (["count", "custom_models:tiny_residual", "--input", "3x-1"], "--input must be"),
        (["count", "custom_models:not_a_model", "--input", "1x3"], "not a torch.nn.Module"),
        (["count", "no_such_pkg.mod:f", "--input", "1x3"], "cannot import 'no_such_pkg.mod'"),
        (["count", "custom_models:nothing", "--input", "1x3"], "has no attribute 'nothing'"),
        (["count", "custom_models:tiny_residual", "--input", "1x3x7"], "failed on an input"),
        (["count", "torchvision:resnet19"], "no classification model 'resnet19'"),
        (["count", "lenet5", "--input", "2x1x32x32", "--batch", "3"], "disagrees with --input"),
        (["count"], "give a MODEL"),
    ],
)
def test_bad_count_input_exits_2(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_layer_formulas_match_torch_modules():
    """Parameters from the formulas equal the modules'; MHA's products equal FlopCounterMode."""
    bn, ln = nn.BatchNorm2d(7), nn.LayerNorm(13)
    assert formulas.batch_norm(70, 7).params == sum(p.numel() for p in bn.parameters())
    assert formulas.layer_norm(26, 13).params == sum(p.numel() for p in ln.parameters())
    mha = nn.MultiheadAttention(24, 4, kdim=10, vdim=6).eval()
    q, k, v = torch.randn(5, 2, 24), torch.randn(7, 2, 10), torch.randn(7, 2, 6)
    cost = formulas.multi_head_attention(2, 5, 7, 24, 4, kdim=10, vdim=6)
    assert cost.params == sum(p.numel() for p in mha.parameters())
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        mha(q, k, v, need_weights=True)  # the bmm path: FlopCounterMode sees every product
    softmax = formulas.softmax(2 * 4 * 5 * 7).macs
    assert cost.macs - softmax == counter.get_total_flops() // 2


@pytest.mark.parametrize(("size", "out"), [(7, 1), (7, 3), (5, 7), (13, 4), (224, 7)])
def test_adaptive_bins_match_torch(size, out):
    """Each bin's length from the formula equals the window torch averages over: pooling a
    ramp of ones gives the window sizes back via the sum of ones / mean."""
    ones = torch.ones(1, 1, 1, size, dtype=torch.float64)
    means = nn.AdaptiveAvgPool2d((1, out))(ones * torch.arange(size, dtype=torch.float64))
    bins = formulas.adaptive_bins(size, out)
    starts = [i * size // out for i in range(out)]
    expected = [sum(range(s, s + n)) / n for s, n in zip(starts, bins, strict=True)]
    assert torch.allclose(means.flatten(), torch.tensor(expected, dtype=torch.float64))


def test_zoo_rows_resume_and_explain(tmp_path):
    csv = tmp_path / "zoo.csv"
    written = []

    def write(df, path):
        written.append(len(df))
        df.to_csv(path, index=False)

    df = run_zoo(csv, write, ["squeezenet1_1", "googlenet"])
    assert written == [1, 2]
    assert list(df["verdict"]) == ["match", "match"]
    google = df.set_index("model").loc["googlenet"]
    assert google["params"] != google["doc_params"]  # aux heads in the weights=None build
    assert "not run in eval" in google["explanation"]
    assert abs(google["gmacs_torch"] - google["doc_gflops"]) <= HALF_ULP_G
    again = run_zoo(csv, write, ["squeezenet1_1", "googlenet"])
    assert again["seconds"].tolist() == df["seconds"].tolist()  # resumed, not recounted
