"""RBF kernels' numerics far from the origin and the refinement path's traffic (issue 17)."""

from __future__ import annotations

import pytest
import torch
from tolerances import tolerance

import kernels
from kernels import _runtime
from kernels.reference import rbf_loss_reference

DEVICE = "cpu" if _runtime.INTERPRET else "cuda"


def _randn(*shape: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=torch.float64) * scale


def _far_cluster(dtype, offset, B=29, D=24, K=7, seed=0):
    """Centers clustered around one point ``offset`` from the origin (so the softmax spreads
    over several of them: distances of order 1), features next to their class's center; rounded
    to ``dtype`` (ulp 0.06 to 0.5 at the offsets tested: the softmax still spreads)."""
    base = offset + _randn(D, seed=seed)
    centers = (base + _randn(K, D, seed=seed + 1, scale=0.25)).to(dtype)
    target = torch.arange(B) % K
    x = (centers.double()[target] + _randn(B, D, seed=seed + 2, scale=0.2)).to(dtype)
    g = _randn(B, seed=seed + 3)
    return x.to(DEVICE), centers.to(DEVICE), target.to(DEVICE), g.to(DEVICE)


def _weights(x, centers, target, g, j):
    """float64 w[b, k] = g_b ([k == t_b] - softmax_k(-d[b, k]) with the e^-j term)."""
    d = torch.cdist(x.double(), centers.double()) ** 2
    logits = torch.cat([torch.full_like(d[:, :1], -j), -d], dim=1)
    p = torch.softmax(logits, dim=1)[:, 1:]
    onehot = torch.nn.functional.one_hot(target, centers.shape[0]).double()
    return g.double()[:, None] * (onehot - p)


def gradient_errors(dtype, offset, j=0.3, **shape):
    """max |grad - float64 grad| over each gradient's natural scale: row b of grad_x is
    2 sum_k w[b, k] (x_b - c_k), so its rounding error scales with
    s_b = 2 sum_k |w[b, k]| max_i |x_bi - c_ki| (not with ||x_b||: the point of the shift);
    likewise for each center's grad_c over the batch."""
    x, centers, target, g = _far_cluster(dtype, offset, **shape)
    xs = x.detach().requires_grad_()
    cs = centers.detach().requires_grad_()
    gx, gc = torch.autograd.grad(
        kernels.rbf_loss(xs, cs, target, j=j, reduction="none"), (xs, cs), g.to(dtype)
    )
    xd = x.double().requires_grad_()
    cd = centers.double().requires_grad_()
    rx, rc = torch.autograd.grad(
        rbf_loss_reference(xd, cd, target, j=j, reduction="none"), (xd, cd), g
    )
    w = _weights(x, centers, target, g, j).abs()
    spread = (x.double()[:, None, :] - centers.double()[None, :, :]).abs().amax(-1)  # (B, K)
    scale_x = 2 * (w * spread).sum(1, keepdim=True)
    scale_c = 2 * (w * spread).sum(0)[:, None]
    err_x = ((gx.double() - rx).abs() / scale_x).max().item()
    err_c = ((gc.double() - rc).abs() / scale_c).max().item()
    return err_x, err_c


# bfloat16's ulp at 1e3 is 4: every feature would round onto its center.
@pytest.mark.parametrize(
    "dtype,offset", [(torch.float16, 1e2), (torch.float16, 1e3), (torch.bfloat16, 1e2)]
)
def test_16bit_gradients_far_from_origin_scale_with_x_minus_c(dtype, offset):
    err_x, err_c = gradient_errors(dtype, offset)
    rtol = tolerance(dtype)["rtol"]
    assert err_x <= rtol and err_c <= rtol, (err_x, err_c)


# ------------------------------------------------------------------ refinement traffic


class LoadCounter:
    """Bytes a kernel asks of global memory under the Triton interpreter, per tensor: the
    interpreter builder's masked load and store (plain ones route through them) are wrapped,
    and every lane the mask keeps is charged its element size to the tensor its address falls
    in. ``sectors`` also charges 32 B per distinct sector each load instruction touches (what a
    GPU fetches from L2 when L1 keeps nothing), so scalar strided loads show their real cost."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, **tensors: torch.Tensor) -> None:
        from triton.runtime.interpreter import InterpreterBuilder

        self.ranges = {
            name: (t.data_ptr(), t.data_ptr() + t.numel() * t.element_size())
            for name, t in tensors.items()
        }
        self.loaded = dict.fromkeys(tensors, 0)
        self.sectors = dict.fromkeys(tensors, 0)
        self.stored = dict.fromkeys(tensors, 0)
        self.loads = 0
        load, store = InterpreterBuilder.create_masked_load, InterpreterBuilder.create_masked_store

        def counted_load(builder, ptrs, mask, *args):
            self._charge(ptrs, mask, self.loaded, sectors=True)
            self.loads += 1
            return load(builder, ptrs, mask, *args)

        def counted_store(builder, ptrs, value, mask, *args):
            self._charge(ptrs, mask, self.stored)
            return store(builder, ptrs, value, mask, *args)

        monkeypatch.setattr(InterpreterBuilder, "create_masked_load", counted_load)
        monkeypatch.setattr(InterpreterBuilder, "create_masked_store", counted_store)

    def _charge(self, ptrs, mask, into: dict, sectors: bool = False) -> None:
        import numpy as np

        addr = np.broadcast_to(ptrs.data, mask.data.shape)[mask.data.astype(bool)]
        size = ptrs.get_element_ty().primitive_bitwidth // 8
        for name, (lo, hi) in self.ranges.items():
            mine = addr[(addr >= lo) & (addr < hi)]
            into[name] += mine.size * size
            if sectors:
                self.sectors[name] += np.unique(mine // 32).size * 32


def _distance_bytes(monkeypatch, x, centers, ratio) -> tuple[int, int]:
    import kernels.rbf as rbf

    with monkeypatch.context() as patch:
        patch.setattr(rbf, "REFINE_RATIO", ratio)
        counter = LoadCounter(patch, x=x, c=centers)
        kernels.rbf_distance(x, centers)
    return sum(counter.loaded.values()), sum(counter.sectors.values())


@pytest.mark.skipif(not _runtime.INTERPRET, reason="counts the interpreter's loads")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_refinement_loads_only_the_flagged_rows(dtype, monkeypatch):
    """One duplicate flags one entry of one tile: the refinement then loads that row of x and
    that center (D elements each), not the tile's BLOCK_B + BLOCK_K rows (v2: 16x more)."""
    B, K, D = 40, 24, 52
    centers = _randn(K, D, seed=5).to(dtype)
    x = (_randn(B, D, seed=6) + 0.5).to(dtype)  # no entry near the refinement ratio
    _, plain = _distance_bytes(monkeypatch, x, centers, 0.0)
    assert _distance_bytes(monkeypatch, x, centers, kernels.rbf.REFINE_RATIO)[1] == plain
    x[5] = centers[7]
    loaded, sectors = _distance_bytes(monkeypatch, x, centers, kernels.rbf.REFINE_RATIO)
    base, _ = _distance_bytes(monkeypatch, x, centers, 0.0)
    assert loaded - base == 2 * D * x.element_size()
    assert sectors - plain == 2 * D * 32  # scalar loads: one sector per element
    assert kernels.rbf_distance(x, centers)[5, 7].item() == 0.0
