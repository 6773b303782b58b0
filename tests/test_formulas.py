"""bench.formulas against fvcore's counts and PyTorch's parameter counts on generated layers."""

from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from bench import formulas
from bench.formulas import Cost

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    from fvcore.nn import FlopCountAnalysis


def fvcore_macs(module: nn.Module, x: torch.Tensor) -> int:
    analysis = FlopCountAnalysis(module, x)
    analysis.unsupported_ops_warnings(False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return int(analysis.total())


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@st.composite
def conv_configs(draw):
    groups = draw(st.sampled_from(["one", "depthwise", "grouped"]))
    g = draw(st.integers(1, 4))
    in_ch = draw(st.integers(1, 6)) * (g if groups == "grouped" else 1)
    if groups == "one":
        g = 1
    elif groups == "depthwise":
        g = in_ch
    out_ch = g * draw(st.integers(1, 5))
    kh, kw = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    stride = draw(st.integers(1, 3))
    padding = draw(st.integers(0, 3))
    h = draw(st.integers(kh, 17))
    w = draw(st.integers(kw, 17))
    bias = draw(st.booleans())
    return in_ch, out_ch, (kh, kw), stride, padding, g, (h, w), bias


@settings(max_examples=40, deadline=None)
@given(conv_configs())
def test_conv2d_matches_fvcore(cfg):
    in_ch, out_ch, kernel, stride, padding, groups, (h, w), bias = cfg
    conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding, groups=groups, bias=bias)
    x = torch.randn(1, in_ch, h, w)
    out_hw = tuple(conv(x).shape[-2:])
    cost = formulas.conv2d(in_ch, out_ch, kernel, out_hw, groups=groups, bias=bias)
    assert cost.macs == fvcore_macs(conv, x)
    assert cost.params == n_params(conv)


@settings(max_examples=20, deadline=None)
@given(
    st.integers(1, 12),
    st.integers(1, 12),
    st.sampled_from([1, 3, 5, 7]),
    st.integers(1, 2),
    st.integers(5, 16),
    st.booleans(),
)
def test_depthwise_separable_matches_fvcore(in_ch, out_ch, k, stride, size, bias):
    block = nn.Sequential(
        nn.Conv2d(in_ch, in_ch, k, stride, k // 2, groups=in_ch, bias=bias),
        nn.Conv2d(in_ch, out_ch, 1, bias=bias),
    )
    x = torch.randn(1, in_ch, size, size)
    out_hw = tuple(block(x).shape[-2:])
    cost = formulas.depthwise_separable(in_ch, out_ch, k, out_hw, bias=bias)
    assert cost.macs == fvcore_macs(block, x)
    assert cost.params == n_params(block)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(("fin", "fout"), [(1, 1), (120, 84), (84, 10), (17, 3)])
def test_linear_matches_fvcore(fin, fout, bias):
    layer = nn.Linear(fin, fout, bias=bias)
    cost = formulas.linear(fin, fout, bias=bias)
    assert cost.macs == fvcore_macs(layer, torch.randn(1, fin))
    assert cost.params == n_params(layer)


def test_cost_addition_and_sum():
    a, b = Cost(3, 4), Cost(10, 20)
    assert a + b == Cost(13, 24)
    assert sum([a, b, a]) == Cost(16, 28)


def test_document_example_counts():
    # Document 001's 128->256 at 32x32 example.
    assert formulas.conv2d(128, 256, 3, 32).macs == 301_989_888
    sep = formulas.depthwise_separable(128, 256, 3, 32)
    assert sep.macs == 1_179_648 + 33_554_432
    assert formulas.reduction_factor(3, 128, 256) == pytest.approx(301_989_888 / 34_734_080)


@pytest.mark.parametrize(("f", "d", "r"), [(3, 1, 1), (3, 128, 256), (5, 6, 16), (7, 3, 1000)])
def test_ratio_is_exactly_one_over_r_plus_one_over_f2(f, d, r):
    exact = formulas.separable_ratio(f, d, r)
    assert exact == pytest.approx(1 / r + 1 / f**2, rel=1e-14)
    assert formulas.separable_ratio_limit(f) == pytest.approx(1 / f**2)
    assert formulas.separable_ratio(f, d, 10**9) == pytest.approx(1 / f**2, rel=1e-6)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: formulas.conv2d(0, 4, 3, 8), "in_ch"),
        (lambda: formulas.conv2d(4, -1, 3, 8), "out_ch"),
        (lambda: formulas.conv2d(4, 4, 0, 8), "kernel"),
        (lambda: formulas.conv2d(4, 4, 3, (8, 0)), "out_hw"),
        (lambda: formulas.conv2d(4, 4, (3, 3, 3), 8), "kernel"),
        (lambda: formulas.conv2d(6, 4, 3, 8, groups=4), "groups"),
        (lambda: formulas.conv2d(4, 4, 3, 8, groups=0), "groups"),
        (lambda: formulas.depthwise_separable(4, 0, 3, 8), "out_ch"),
        (lambda: formulas.linear(0, 3), "in_features"),
        (lambda: formulas.linear(3, 2.5), "out_features"),
        (lambda: formulas.separable_ratio(3, 0, 4), "in_ch"),
    ],
)
def test_invalid_sizes_name_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
