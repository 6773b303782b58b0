"""models.mobilenet.fuse: MobileNetV2 with its dw -> pw-linear chains fused equals the original.

Under the interpreter the full-width net at 32x32 takes ~60 s (measured on the 2-core CPU
machine), so the CPU tests fuse a width_mult=0.25 net (same structure: all 17 inverted
residuals, 4.6 s) and check two full-width blocks on their own: the first (32 -> 16, no
expansion) and the residual 160 -> 160 with 960 hidden channels. The full-width net at 224x224
runs in the GPU test.
"""

from __future__ import annotations

import copy

import pytest
import torch
from tolerances import tolerance
from torch import nn
from torchvision.models.mobilenetv2 import InvertedResidual

from kernels import _runtime
from models.mobilenet import FusedDepthwisePointwise, fuse, mobilenet_v2

DEVICE = "cpu" if _runtime.INTERPRET else "cuda"


def calibrated(model: nn.Module, input_shape: tuple[int, ...], seed: int = 0) -> nn.Module:
    """Real running statistics (cumulative BN averages over random batches) and random BN
    affines, so activations are of order 1 (fresh BNs would shrink the outputs to ~1e-7, below
    any atol) and folding is tested with non-trivial values. Returns the model in eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = None  # cumulative average
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.2)
        model.train()
        for _ in range(2):
            model(torch.randn(4, *input_shape[1:], generator=g))
    return model.eval()


def assert_fused_equal(
    model: nn.Module, x: torch.Tensor, expected_fused: int, *, one_block: bool = False
) -> None:
    """The fused copy is as close to the float64 model as the original is in x's dtype (within
    2x plus the table's atol) and, for ``one_block`` where the original itself meets the table
    against float64, meets it too. Not for a 50-layer net: its fp32 roundings compound to
    ~1.6e-5 either way, and whether the original passes allclose depends on oneDNN's thread
    count (width 0.25 at 32x32: passes with 2 threads, fails with 1, measured here), which made
    the strict check depend on test order."""
    fused = fuse(model)
    assert sum(isinstance(m, FusedDepthwisePointwise) for m in fused.modules()) == expected_fused
    with torch.no_grad():
        want, got = model(x), fused(x)
        exact = copy.deepcopy(model).double()(x.double())
    assert exact.abs().max() > 0.1, "outputs too small for the comparison to mean anything"
    err_fused = (got.double() - exact).abs().max().item()
    err_original = (want.double() - exact).abs().max().item()
    tol = tolerance(x.dtype)
    assert err_fused <= 2 * err_original + tol["atol"], (err_fused, err_original)
    if one_block and torch.allclose(want.double(), exact, **tol):
        torch.testing.assert_close(got.double(), exact, **tol)


def test_fused_mobilenet_v2_equals_original(poisoned_allocations) -> None:
    torch.manual_seed(0)
    model = calibrated(mobilenet_v2(width_mult=0.25), (1, 3, 32, 32)).to(DEVICE)
    x = torch.randn(1, 3, 32, 32, device=DEVICE)
    assert_fused_equal(model, x, expected_fused=17)
    assert model.features[1].conv[-1].__class__ is nn.BatchNorm2d, "fuse() changed the original"


@pytest.mark.parametrize(
    "index, in_shape",
    [(1, (2, 32, 9, 7)), (16, (2, 160, 3, 3))],
    ids=["first-32to16", "residual-160-hidden960"],
)
def test_full_width_blocks(index: int, in_shape: tuple[int, ...], poisoned_allocations) -> None:
    torch.manual_seed(0)
    block = mobilenet_v2().features[index]
    assert isinstance(block, InvertedResidual)
    block = calibrated(nn.Sequential(block), in_shape).to(DEVICE)
    x = torch.randn(in_shape, device=DEVICE)
    assert_fused_equal(block, x, expected_fused=1, one_block=True)


def test_fuse_rejects_training_mode_and_nothing_to_fuse() -> None:
    with pytest.raises(ValueError, match="eval"):
        fuse(mobilenet_v2(width_mult=0.25))
    with pytest.raises(ValueError, match="InvertedResidual"):
        fuse(nn.Sequential(nn.Conv2d(3, 3, 3)).eval())


def test_fused_block_refuses_training_and_autograd() -> None:
    fused = fuse(mobilenet_v2(width_mult=0.25).eval())
    x = torch.randn(1, 3, 32, 32, device=DEVICE)
    with pytest.raises(RuntimeError, match="inference-only"):
        fused.train()(x)
    with pytest.raises(RuntimeError, match="no backward"):
        fused.eval()(x.requires_grad_())


def test_registry_builds_mobilenet_v2() -> None:
    from models import registry

    model = registry.build("mobilenet_v2")
    assert sum(isinstance(m, InvertedResidual) for m in model.modules()) == 17


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_full_mobilenet_v2_on_gpu(dtype, channels_last) -> None:
    """Full width at 224x224, batch 8. Through 17 blocks rounding compounds past the
    single-block table, so the fused model must stay as close to the float64 model as the
    unfused model in the same dtype is (within 2x, plus the table's atol)."""
    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        torch.manual_seed(0)
        model = calibrated(mobilenet_v2(), (1, 3, 224, 224)).cuda()
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        fused = fuse(model).to(dtype).to(memory_format=fmt)
        eager = copy.deepcopy(model).to(dtype).to(memory_format=fmt)
        x = torch.randn(8, 3, 224, 224, device="cuda")
        xd = x.to(dtype).contiguous(memory_format=fmt)
        with torch.no_grad():
            want = model.double()(xd.double())
            err_fused = (fused(xd).double() - want).abs().max().item()
            err_eager = (eager(xd).double() - want).abs().max().item()
        assert err_fused <= 2 * err_eager + tolerance(dtype)["atol"], (err_fused, err_eager)
    finally:
        torch.backends.cudnn.allow_tf32 = saved
