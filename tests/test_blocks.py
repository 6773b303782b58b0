"""DepthwiseSeparable: the "triton" and "compile" backends equal the torch path."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from tolerances import tolerance

from kernels import _runtime
from models.blocks import DepthwiseSeparable

DEVICE = "cpu" if _runtime.INTERPRET else "cuda"


def randomize_batch_norms(block: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial running statistics and affine parameters, so folding is really tested."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in block.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.5)
            if isinstance(m, torch.nn.Conv2d) and m.bias is not None:
                m.bias.copy_(torch.randn(m.out_channels, generator=g))
    return block


def pair(backend: str = "triton", **kwargs) -> tuple[DepthwiseSeparable, DepthwiseSeparable]:
    ctor = {"in_ch": 7, "out_ch": 13, "kernel": 3, "stride": 1, "activation": "relu"}
    ctor.update(kwargs)
    torch.manual_seed(0)
    reference = randomize_batch_norms(DepthwiseSeparable(**ctor, backend="torch")).to(DEVICE)
    other = copy.deepcopy(reference)
    other.backend = backend
    return reference, other


@pytest.mark.parametrize(
    "kwargs, dtype, channels_last",
    [
        ({}, torch.float32, False),  # document 001's block
        (
            {"kernel": 5, "stride": 2, "activation": "relu6", "in_ch": 9, "out_ch": 5},
            torch.bfloat16,
            True,
        ),
        (
            {
                "kernel": 5,
                "padding": 0,
                "batch_norm": False,
                "dw_activation": None,
                "activation": None,
            },
            torch.float16,
            False,
        ),  # the LeNet variants' plain replacement
        ({"kernel": 7, "stride": 2, "padding": 1, "batch_norm": False}, torch.float32, True),
    ],
    ids=["doc001-fp32", "k5s2-relu6-bf16-nhwc", "lenet-fp16", "k7-nobn-nhwc"],
)
def test_triton_equals_torch_in_eval(kwargs, dtype, channels_last, poisoned_allocations) -> None:
    reference, fused = pair(**kwargs)
    reference.eval().to(dtype)
    fused.eval().to(dtype)
    x = torch.randn(2, reference.dw.in_channels, 9, 8, device=DEVICE).to(dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    with torch.no_grad(), warnings.catch_warnings():
        # eval + no_grad must take the kernel, not fall back (the fallback says so in a warning;
        # other libraries' deprecation warnings, triton 3.6's interpreter's among them, are not
        # this test's business)
        warnings.filterwarnings("error", message="DepthwiseSeparable.*runs the torch path")
        got = fused(x)
        expected = reference.double()(x.double())
    torch.testing.assert_close(got.double(), expected, **tolerance(dtype))


def test_cached_kernel_operands_follow_parameter_changes() -> None:
    reference, fused = pair()
    reference.eval()
    fused.eval()
    x = torch.randn(1, 7, 6, 6, device=DEVICE)
    with torch.no_grad():
        fused(x)
        for block in (reference, fused):
            block.bn_pw.running_mean.add_(1.0)  # in place: only the version counter changes
            block.bn_dw.weight.mul_(2.0)
            block.dw.weight.mul_(1.5)  # the packed copy of the depthwise weight too
        torch.testing.assert_close(fused(x), reference(x), **tolerance(torch.float32))


def test_triton_in_training_warns_once_and_equals_torch() -> None:
    reference, fused = pair()
    x = torch.randn(2, 7, 6, 5, device=DEVICE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outs = [fused(x) for _ in range(3)]
    messages = [str(w.message) for w in caught if "backend='triton'" in str(w.message)]
    assert len(messages) == 1 and "training" in messages[0]
    expected = [reference(x) for _ in range(3)]
    for got, want in zip(outs, expected, strict=True):
        torch.testing.assert_close(got, want)
    # The fallback is the real torch path: running statistics were updated the same way.
    torch.testing.assert_close(fused.bn_dw.running_mean, reference.bn_dw.running_mean)


def test_triton_in_eval_with_autograd_falls_back_with_gradients() -> None:
    reference, fused = pair()
    reference.eval()
    fused.eval()
    x = torch.randn(1, 7, 5, 5, device=DEVICE, requires_grad=True)
    with pytest.warns(UserWarning, match="no backward"):
        fused(x).sum().backward()
    grad = x.grad.clone()
    x.grad = None
    reference(x).sum().backward()
    torch.testing.assert_close(grad, x.grad)


def test_unknown_backend_is_rejected() -> None:
    with pytest.raises(ValueError, match="triton"):
        DepthwiseSeparable(3, 4, backend="cudnn")


def test_compile_equals_torch() -> None:
    # Inductor's first call: 7.5 s measured on the 2-core CPU machine; the only compile test.
    reference, compiled = pair("compile", kernel=5, stride=2)
    reference.eval()
    compiled.eval()
    x = torch.randn(2, 7, 9, 9, device=DEVICE)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), reference(x), **tolerance(torch.float32))
        # A deepcopy with changed weights must not run the original's compiled graph.
        clone = copy.deepcopy(compiled)
        clone.pw.weight.mul_(-1.0)
        reference.pw.weight.mul_(-1.0)
        torch.testing.assert_close(clone(x), reference(x), **tolerance(torch.float32))
