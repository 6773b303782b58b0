"""bench.formulas against fvcore's counts and PyTorch's parameter counts on generated layers."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

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


def flop_counter_macs(module: nn.Module, x: torch.Tensor) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops() // 2


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from([1, 3]),
    st.integers(1, 3),
    st.integers(1, 2),
    st.integers(0, 2),
    st.integers(1, 2),
    st.booleans(),
)
def test_conv_nd_matches_flop_counter(rank, groups, stride, padding, dilation, bias):
    """Conv1d and Conv3d (conv2d has its fvcore test above): the products FlopCounterMode
    counts, and the parameters, from the output size alone."""
    conv_type = {1: nn.Conv1d, 3: nn.Conv3d}[rank]
    in_ch, out_ch, kernel = 2 * groups, 3 * groups, (3, 2, 2)[:rank]
    conv = conv_type(in_ch, out_ch, kernel, stride, padding, dilation, groups, bias)
    x = torch.randn(2, in_ch, *(7, 6, 5)[:rank])
    out = tuple(conv(x).shape[2:])
    cost = formulas.conv_nd(in_ch, out_ch, kernel, out, groups=groups, bias=bias)
    assert 2 * cost.macs == flop_counter_macs(conv, x)
    assert cost.params == n_params(conv)


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from([1, 2, 3]),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(0, 2),
    st.integers(1, 2),
    st.integers(0, 2),
    st.booleans(),
)
def test_conv_transpose_matches_flop_counter_and_its_definition(
    rank, groups, stride, padding, dilation, extra, bias
):
    """ConvTranspose1d/2d/3d: products from the input size (FlopCounterMode's count), the
    output size from the definition, and the products that land inside the output counted by
    hand: with ones for input and weight each output sums the products that reach it."""
    output_padding = min(extra, max(stride, dilation) - 1)
    in_ch, out_ch, kernel = 2 * groups, groups, (3, 2, 4)[:rank]
    conv = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[rank](
        in_ch, out_ch, kernel, stride, padding, output_padding, groups, bias, dilation
    )
    size = (5, 4, 3)[:rank]
    x = torch.randn(2, in_ch, *size)
    out = tuple(conv(x).shape[2:])
    assert out == tuple(
        formulas.conv_transpose_out_size(n, k, stride, padding, output_padding, dilation)
        for n, k in zip(size, kernel, strict=True)
    )
    cost = formulas.conv_transpose(in_ch, out_ch, kernel, size, groups=groups, bias=bias)
    assert 2 * cost.macs == flop_counter_macs(conv, x)
    assert cost.params == n_params(conv)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        if bias:
            conv.bias.zero_()
        landed = conv(torch.ones(1, in_ch, *size)).sum().item()
    taps = [
        formulas.transposed_taps(n, k, stride, padding, dilation, o)
        for n, k, o in zip(size, kernel, out, strict=True)
    ]
    assert landed == out_ch * (in_ch // groups) * math.prod(taps)
    assert landed <= cost.macs  # padding crops some: never more than the products computed


@pytest.mark.parametrize(
    ("module", "cost"),
    [
        (nn.GroupNorm(3, 6), formulas.group_norm(0, 6)),
        (nn.GroupNorm(3, 6, affine=False), formulas.group_norm(0, 6, affine=False)),
        (nn.InstanceNorm2d(5, affine=True), formulas.instance_norm(0, 5, affine=True)),
        (nn.InstanceNorm3d(5), formulas.instance_norm(0, 5)),
        (nn.RMSNorm(7), formulas.rms_norm(0, 7)),
        (nn.BatchNorm1d(4), formulas.batch_norm(0, 4, batch_stats=True)),
    ],
)
def test_norm_parameters_match_the_modules(module, cost):
    assert cost.params == n_params(module)


def test_norm_and_reduction_counts_by_hand():
    assert formulas.group_norm(200, 8).macs == 3 * 200  # mean and variance reads, normalise
    assert formulas.instance_norm(200, 8).macs == 600
    assert formulas.instance_norm(200, 8, input_stats=False).macs == 200  # running statistics
    assert formulas.batch_norm(200, 8, batch_stats=True).macs == 600
    assert formulas.rms_norm(200, 8).macs == 2 * 200  # mean square read, scale
    # x.mean((2, 3)) reads what AdaptiveAvgPool2d(1) reads; var reads twice
    assert formulas.reduction(8 * 16).macs == formulas.adaptive_pool2d(8, 4, 1).macs == 128
    assert formulas.reduction(128, passes=2).macs == 256


@pytest.mark.parametrize(
    ("mode", "axes", "per_output"),
    [
        ("nearest", 2, 0),
        ("linear", 1, 2),
        ("bilinear", 2, 4),
        ("trilinear", 3, 8),
        ("bicubic", 2, 16),
    ],
)
def test_interpolation_taps(mode, axes, per_output):
    assert formulas.interpolate(100, mode, axes).macs == 100 * per_output


def test_pooling_over_any_rank():
    assert formulas.pool(10, (3,)).macs == 30
    assert formulas.pool(10, (2, 2, 2)).macs == 80 == formulas.pool(10, (2, 4)).macs
    assert formulas.adaptive_pool(2, (7,), (3,)).macs == 2 * sum(formulas.adaptive_bins(7, 3))
