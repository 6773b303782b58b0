"""The cases of issue 19 as small models (tests/count_cases.py), each against its count worked by
hand or by FlopCounterMode, and the rules every note must keep, asserted on the numbers: the
causes a note gives add up to each counter's difference, and a note says a counter counts
something only where that counter's count is not 0. Each case failed on the counter before
(commit 991cbd7): tied weights counted twice, frozen ones as 0, functional ops outside the table
as a silent 0, leaves without a rule marked partial, notes that named the wrong cause."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from count_cases import (
    Attention,
    FunctionalConvNd,
    FunctionalConvTranspose,
    LayerZoo,
    OwnSort,
    SqueezeExcite,
    Tied,
    frozen_conv,
)
from note_rules import assert_notes_hold
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from bench import formulas
from bench.counting import count_model


def _rows(df: pd.DataFrame) -> pd.DataFrame:
    return df.set_index("layer")


def test_a_tied_weight_counts_once():
    df = count_model(Tied(), (8,))
    rows = _rows(df)
    assert rows.loc["total", "params"] == 64 + 8 + 8  # was 144: the shared 8x8 weight twice
    assert rows.loc["total", "params"] == sum(p.numel() for p in Tied().parameters())
    assert rows.loc["b", "params"] == 8 and "weight tied to a.weight" in rows.loc["b", "note"]
    assert_notes_hold(df)


def test_frozen_parameters_count_and_are_not_trainable():
    df = count_model(frozen_conv(), (8, 5, 5))
    rows = _rows(df)
    assert rows.loc["total", "params"] == 8 * 8 * 3 * 3  # was 0
    assert rows.loc["total", "trainable"] == 0
    assert "frozen (requires_grad=False): weight" in rows.loc["0", "note"]


def test_functional_conv_transpose_in_a_parents_forward():
    df = count_model(FunctionalConvTranspose(), (5, 8, 8))
    own = _rows(df).loc["FunctionalConvTranspose (own ops)"]
    assert own["macs_formula"] == 5 * 8 * 8 * 12 * 3 * 3 == 34_560  # was 0, op list "none"
    assert own["macs_formula"] == own["flops_torch"] // 2 == own["macs_fvcore"]
    assert "F.conv_transpose2d x1" in own["note"]
    assert "partial" not in df.iloc[-1]["note"]
    assert_notes_hold(df)


def test_functional_conv1d_and_conv3d():
    df = count_model(FunctionalConvNd(), (4, 10))
    own = _rows(df).loc["FunctionalConvNd (own ops)"]
    conv1d = 6 * 3 * 2 * 3  # out channels x length (10 - 2*2 - 1) // 2 + 1 x in/groups x taps
    conv3d = 4 * (3 * 5 * 5) * 6 * 27  # padding 1 keeps 3x5x5; 6 channels x 3x3x3 taps each
    assert own["macs_formula"] == conv1d + conv3d == own["flops_torch"] // 2  # was 0
    assert "F.conv1d x1" in own["note"] and "F.conv3d x1" in own["note"]
    assert_notes_hold(df)


def test_mean_over_space_counts_the_read_adaptive_pooling_counts():
    x = (8, 4, 4)
    df = count_model(SqueezeExcite(), x)
    own = _rows(df).loc["SqueezeExcite (own ops)"]
    pooled = count_model(nn.AdaptiveAvgPool2d(1), x).iloc[-1]["macs_formula"]
    assert own["macs_formula"] == pooled == formulas.adaptive_pool2d(8, 4, 1).macs  # was 0
    assert "Tensor.mean x1" in own["note"]
    assert_notes_hold(df)


def test_an_op_without_a_formula_is_listed_never_a_silent_zero():
    df = count_model(OwnSort(), (6, 6))
    total = df.iloc[-1]
    assert "partial" in total["note"] and "torch.sort" in total["note"]  # was dropped unnamed
    own = _rows(df).loc["OwnSort (own ops)"]
    assert "torch.sort x1 (aten.sort)" in own["uncounted"]
    assert own["macs_formula"] == 6 * 6 * 6  # the matmul beside it still counts
    assert_notes_hold(df)


def test_the_layers_without_rules_before():
    """ConvTranspose1d/2d/3d, Conv1d/3d, GroupNorm and InstanceNorm*: convolutions equal
    FlopCounterMode's count, norms the hand count (they were 'no formula', the total partial)."""
    df = count_model(LayerZoo(), (4, 6, 6))
    rows = _rows(df)
    for conv in ("ct1", "ct2", "ct3", "c1", "c3"):
        assert rows.loc[conv, "macs_formula"] == rows.loc[conv, "flops_torch"] // 2 > 0
    assert rows.loc["ct2", "macs_formula"] == 4 * 36 * (6 // 2) * 3 * 2  # each input x its taps
    plane, cube = 4 * 36, 4 * 3 * 36
    for norm in ("gn", "gn_plain", "in1", "in2"):  # mean + variance reads, normalise-and-affine
        assert rows.loc[norm, "macs_formula"] == 3 * plane
    assert rows.loc["in3", "macs_formula"] == cube  # running statistics in eval: 1 per element
    assert "partial" not in rows.loc["total", "note"]
    assert_notes_hold(df)


def test_a_custom_leaf_running_scaled_dot_product_attention():
    df = count_model(Attention(), (5, 8))
    row = df[df["type"] == "Attention"].iloc[0]
    projection = 5 * 8 * 24
    scores_and_values = 2 * 5 * 5 * (4 + 4)  # 2 heads: Q K^T and weights x V, head dim 4
    softmax = 2 * 5 * 5
    assert row["macs_formula"] == projection + scores_and_values + softmax  # was no formula
    model = Attention()
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as fc:
        model(torch.randn(1, 5, 8))  # the math kernel: FlopCounterMode sees its bmm
    assert fc.get_total_flops() // 2 == projection + scores_and_values
    assert_notes_hold(df)


def test_cpu_attention_note_says_flop_counter_counts_zero_there():
    df = count_model(Attention(), (5, 8))
    row = df[df["type"] == "Attention"].iloc[0]
    assert row["flops_torch"] // 2 == 5 * 8 * 24  # the projection only: CPU SDPA shows 0
    assert "FlopCounterMode 0 for F.scaled_dot_product_attention's 400 products" in row["note"]
    assert "aten._scaled_dot_product_flash_attention_for_cpu" in row["note"]
    assert "FlopCounterMode counts" not in row["note"]


def test_same_padding_conv_note_names_the_op_fvcore_lacks():
    df = count_model(nn.Sequential(nn.Conv2d(4, 4, 3, padding="same")), (4, 6, 6))
    row = _rows(df).loc["0"]
    assert row["macs_fvcore"] == 0 and row["macs_formula"] == row["flops_torch"] // 2 > 0
    assert "no handle for aten::_convolution_mode" in row["note"]
    assert_notes_hold(df)


def test_timm_layers_without_rules_count_from_their_ops():
    """timm's GELU and Sigmoid classes, LayerScale, LayerScale2d, Flat and levit's Downsample:
    elementwise maps and data movement, 0 by rule d, not a partial total (6 of 14 timm totals
    were marked partial for them)."""
    layers = pytest.importorskip("timm.layers")
    from timm.models.efficientformer import Flat
    from timm.models.levit import Downsample

    model = nn.Sequential(
        layers.LayerScale2d(8),
        layers.activations.GELU(),
        layers.activations.Sigmoid(),
        Flat(),  # (1, 8, 4, 4) -> (1, 16, 8)
        layers.LayerScale(8),
        Downsample(2, 4),  # (1, 16, 8) -> (1, 4, 8)
    )
    df = count_model(model, (8, 4, 4))
    rows = df.iloc[:-1]
    assert len(rows) == 6 and (rows["macs_formula"] == 0).all()
    assert rows["note"].str.contains("counted from the ops it ran").all()
    assert "partial" not in df.iloc[-1]["note"]
    assert_notes_hold(df)


def test_timm_group_norm_act_and_group_norm_one_answer():
    layers = pytest.importorskip("timm.layers")
    model = nn.Sequential(nn.GroupNorm(2, 8), layers.GroupNormAct(8, num_groups=2))
    df = count_model(model, (8, 5, 5))
    rows = _rows(df)
    assert rows.loc["0", "macs_formula"] == 3 * 200  # was no formula
    assert rows.loc["1 (own ops)", "macs_formula"] == 3 * 200  # F.group_norm: was 0
    assert "partial" not in rows.loc["total", "note"]
    assert_notes_hold(df)


def test_batch_norm_act_note_gives_fvcores_rule():
    """timm's BatchNormAct2d runs F.batch_norm in its own forward: fvcore is exactly 2x the
    formula there, by its batch-norm handle (input numel x 2 with an affine in eval); the note
    said 'batch norm (1/elem)' or blamed the SiLU fvcore skips in the child."""
    layers = pytest.importorskip("timm.layers")
    model = nn.Sequential(layers.BatchNormAct2d(8, act_layer=nn.SiLU))
    df = count_model(model, (8, 4, 4))
    own = _rows(df).loc["0 (own ops)"]
    assert own["macs_fvcore"] == 2 * own["macs_formula"] == 2 * 128
    assert "batch_norm handle counts 2/elem in eval" in own["note"]
    assert "silu" not in own["note"].lower()
    assert_notes_hold(df)


def test_conv2d_same_note_says_ptflops_matches_exact_types():
    layers = pytest.importorskip("timm.layers")
    pytest.importorskip("ptflops")
    df = count_model(nn.Sequential(layers.Conv2dSame(4, 4, 3, stride=2)), (4, 7, 7))
    row = _rows(df).loc["0"]
    assert row["macs_ptflops"] == 0 and row["macs_formula"] == row["flops_torch"] // 2 > 0
    assert "ptflops matches exact module types: Conv2dSame (a Conv2d subclass)" in row["note"]
    assert "overrides Conv2d.forward: counted from the ops it ran: F.conv2d x1" in row["note"]
    assert_notes_hold(df)
