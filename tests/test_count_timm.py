"""`sepbench count timm:NAME`: timm models nobody here wrote, without weights, at their pretrained
config's input size, against FlopCounterMode's conv/linear/matmul multiply-adds and
sum(p.numel()) of a real build; the note rules hold on every row. timm's tiny test_* models
(0.3-1 M parameters at 160x160) keep this fast."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from note_rules import assert_notes_hold
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from bench.cli import main
from bench.counting import count_model
from bench.counting.sources import resolve

timm = pytest.importorskip("timm")

# BatchNormAct2d, squeeze-excite with x.mean; attention through F.scaled_dot_product_attention;
# ScaledStdConv2d (weight standardisation in an overridden forward), GELU and Sigmoid classes.
MODELS = ["test_efficientnet", "test_vit", "test_nfnet"]


@pytest.fixture(scope="module", params=MODELS)
def counted(request):
    source = resolve(f"timm:{request.param}")
    return request.param, source, count_model(source.model, source.input_shape, source.batch)


def test_timm_source_uses_the_pretrained_input_size(counted):
    name, source, _ = counted
    assert (source.batch, *source.input_shape) == (1, *timm.get_pretrained_cfg(name).input_size)


def test_timm_products_and_params_match_a_real_build(counted):
    name, source, df = counted
    model = timm.create_model(name, pretrained=False).eval()
    x = torch.randn(1, *source.input_shape)
    # the math kernel decomposes attention into the bmm FlopCounterMode counts (CPU's flash
    # kernel has no rule there): every conv, linear and matmul product
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as fc:
        model(x)
    total = df.iloc[-1]
    assert total["macs_formula"] - df.attrs["formula_reads"] == fc.get_total_flops() // 2
    assert total["params"] == sum(p.numel() for p in model.parameters())
    assert total["trainable"] == total["params"]
    assert "partial" not in total["note"]


def test_timm_notes_hold(counted):
    _, _, df = counted
    assert_notes_hold(df)


def test_timm_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "vit.csv"
    assert main(["count", "timm:test_vit", "--input", "2x3x96x96", "--csv", str(out)]) == 0
    assert "timm:test_vit: per-layer counts for an input of 2x3x96x96" in capsys.readouterr().out
    df = pd.read_csv(out, keep_default_na=False)
    assert df.iloc[0]["out_shape"] == "2x64x6x6"  # img_size follows --input: 96 / 16 patches


def test_unknown_timm_model_exits_2(capsys):
    assert main(["count", "timm:no_such_net"]) == 2
    assert "timm has no model 'no_such_net'" in capsys.readouterr().err
