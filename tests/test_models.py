"""The documents' models: shapes, the 1998 paper's table, the C3 wiring, the twins."""

from __future__ import annotations

import pytest
import torch

from models import registry
from models.lenet5 import C3_TABLE, LeNet5Paper, SparseConv2d, rbf_loss

DOCUMENT_MODELS = [n for n in registry.names() if n != "mobilenet_v2"]


@pytest.mark.parametrize("name", DOCUMENT_MODELS)
def test_forward_shape_and_finite(name):
    spec = registry.get(name)
    model = spec.build().eval()
    y = model(torch.randn(3, *spec.input_shape))
    assert y.shape == (3, 10)
    assert torch.isfinite(y).all()


def test_mobilenet_v2_builds_without_weights():
    model = registry.build("mobilenet_v2").eval()
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_unknown_model_is_a_clear_error():
    with pytest.raises(KeyError, match=r"unknown model 'lenet6'.*lenet5"):
        registry.get("lenet6")


def test_c3_table_is_the_papers():
    sizes = sorted(len(ins) for ins in C3_TABLE)
    assert sizes == [3] * 6 + [4] * 9 + [6]
    # each S2 map feeds 10 of the 16 C3 maps in Table I
    assert all(sum(i in ins for ins in C3_TABLE) == 10 for i in range(6))


def test_sparse_conv_only_sees_its_table_inputs():
    torch.manual_seed(0)
    conv = SparseConv2d(C3_TABLE, 6, 5)
    x = torch.randn(1, 6, 14, 14, requires_grad=True)
    for o, ins in enumerate(C3_TABLE):
        (g,) = torch.autograd.grad(conv(x)[0, o].sum(), x)
        touched = {c for c in range(6) if g[0, c].abs().sum() > 0}
        assert touched == set(ins)


def test_paper_model_prototypes_fixed_by_default_and_trainable_as_option():
    fixed = LeNet5Paper()
    assert not any(p is fixed.output.centers for p in fixed.parameters())
    assert set(fixed.output.centers.unique().tolist()) == {-1.0, 1.0}
    trainable = LeNet5Paper(trainable_prototypes=True)
    assert any(p is trainable.output.centers for p in trainable.parameters())


def test_paper_loss_matches_its_definition():
    torch.manual_seed(1)
    d = torch.rand(5, 10, dtype=torch.float64) * 20
    t = torch.randint(0, 10, (5,))
    j = 0.3
    naive = d[torch.arange(5), t] + torch.log(torch.exp(torch.tensor(-j)) + torch.exp(-d).sum(1))
    torch.testing.assert_close(rbf_loss(d, t, j=j, reduction="none"), naive.double())
    torch.testing.assert_close(rbf_loss(d, t, j=j), naive.double().mean())


def test_paper_model_trains_a_step_on_its_loss():
    torch.manual_seed(0)
    model = LeNet5Paper()
    x, t = torch.randn(8, 1, 32, 32), torch.randint(0, 10, (8,))
    before = model.loss(model.features(x), t)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(5):
        opt.zero_grad()
        model.loss(model.features(x), t).backward()
        opt.step()
    assert model.loss(model.features(x), t) < before


@pytest.mark.parametrize("name", ["lenet5_dw", "cifar_cnn_dw"])
def test_depthwise_models_accept_a_backend(name):
    model = registry.build(name, backend="compile")
    blocks = [m for m in model.modules() if type(m).__name__ == "DepthwiseSeparable"]
    assert blocks and all(b.backend == "compile" for b in blocks)
