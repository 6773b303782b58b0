"""The peer runtimes (ONNX Runtime, OpenVINO, KeOps, faiss) on small odd shapes against the
float64 oracles, and their rows where a package is missing.

Each test skips, saying which package, where its runtime is not installed (`pip install
'sepbench[peers]'`; `make test` installs it). KeOps compiles each formula once per session into
conftest's session build folder.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest
import torch
from tolerances import tolerance

from bench.measuring import runner
from bench.measuring.operators import (
    DWSEP,
    MODEL,
    OPERATORS,
    RBF,
    RBF_LOSS,
    installed,
    max_rel_err,
    peers,
)
from bench.measuring.results import PEAKS_SUITE
from bench.measuring.suites import DwsepShape, ModelShape, RbfShape, Workload

FP32 = torch.float32
# Odd shapes: 7 -> 11 channels on 9x9, stride 2 with a linear bottleneck (MobileNetV2's form).
DWSEP_WORKLOAD = Workload(
    "t", DwsepShape(7, 11, 3, 2, 9, 9, activation="relu6", pw_activation=None), 2
)
MODEL_WORKLOAD = Workload("t", ModelShape("lenet5_dw"), 3)
RBF_SHAPE = (13, 12, 10)  # B, D, K
MODULES = {
    "onnxruntime": ("onnxruntime", "onnxscript"),
    "onnxruntime_standard": ("onnxruntime", "onnxscript"),
    "openvino": ("openvino",),
    "openvino_standard": ("openvino",),
    "keops": ("pykeops",),
    "faiss": ("faiss",),
}


def peers_missing(module: str) -> str:
    """What installed() says of a missing module (computed while it is hidden)."""
    return str(installed(module)())


def _need(provider: str) -> None:
    for module in MODULES[provider]:
        pytest.importorskip(module, reason=f"{module} not installed: pip install 'sepbench[peers]'")


def _check(kind: str, provider: str, workload: Workload) -> None:
    """The provider's first call equals the float64 oracle to float32 accuracy, and its row's
    number (max relative error) says so; a second call returns the same."""
    _need(provider)
    prepared = OPERATORS[kind].prepare(provider, workload, "cpu", FP32)
    result, expected = prepared.fn(), prepared.oracle()
    assert max_rel_err(result, expected) < 1e-5
    got = result if isinstance(result, tuple) else (result,)
    want = expected if isinstance(expected, tuple) else (expected,)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == FP32
        torch.testing.assert_close(g.double(), w.double(), **tolerance(FP32))
    again = prepared.fn()
    torch.testing.assert_close(again[0] if isinstance(again, tuple) else again, got[0])
    assert prepared.backend.split()[0] in {"onnxruntime", "openvino", "keops", "faiss"}


@pytest.mark.parametrize(
    "provider", ["onnxruntime", "onnxruntime_standard", "openvino", "openvino_standard"]
)
def test_dwsep_peers_match_float64(provider: str) -> None:
    _check("dwsep", provider, DWSEP_WORKLOAD)


@pytest.mark.parametrize("provider", ["onnxruntime", "openvino"])
def test_model_peers_match_float64(provider: str) -> None:
    _check("model", provider, MODEL_WORKLOAD)


@pytest.mark.parametrize("provider", ["keops", "faiss"])
def test_rbf_distance_peers_match_float64(provider: str) -> None:
    b, d, k = RBF_SHAPE
    _check("rbf", provider, Workload("t", RbfShape(b, d, k), b))


def test_keops_rbf_loss_and_both_gradients_match_float64() -> None:
    b, d, k = RBF_SHAPE
    _check("rbfloss", "keops", Workload("t", RbfShape(b, d, k, loss=True), b))


def test_keops_builds_into_the_session_cache_never_the_source_tree(keops_cache: Path) -> None:
    _need("keops")
    assert peers.keops_cache() == keops_cache
    peers.lazy_tensor()
    import pykeops

    build = Path(pykeops.get_build_folder()).resolve()
    assert build.is_relative_to(keops_cache.resolve())
    assert not build.is_relative_to(Path(__file__).resolve().parents[1])


def test_peers_are_declared_once_each_in_their_operators() -> None:
    for op, names in (
        (DWSEP, {"onnxruntime", "openvino"}),
        (MODEL, {"onnxruntime", "openvino"}),
        (RBF, {"keops", "faiss"}),
        (RBF_LOSS, {"keops"}),
    ):
        assert set(op.names("peer")) == names, op
    assert set(DWSEP.names("standard")) == {
        "standard_conv",
        "onnxruntime_standard",
        "openvino_standard",
    }


def test_missing_packages_give_unavailable_rows_saying_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every peer package hidden (as on the GPU machine), the peers' rows are
    `unavailable` with the package and the pip extra named, not errors."""
    hidden = {"onnxruntime", "onnxscript", "openvino", "pykeops", "faiss"}
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in hidden else real(name, *a)
    )
    workloads = [
        Workload("t", DwsepShape(4, 6, 3, 1, 5, 5), 1),
        Workload("t", RbfShape(4, 3, 2), 4),
        Workload("t", RbfShape(4, 3, 2, loss=True), 4),
        Workload("t", ModelShape("lenet5"), 1),
    ]
    df = runner.run(
        workloads,
        tmp_path,
        "cpu",
        min_run_time=0.01,
        progress=False,
        providers=["peer", "onnxruntime_standard", "openvino_standard"],
    )
    rows = df[df["suite"] != PEAKS_SUITE]
    assert len(rows) == 4 + 2 + 1 + 2
    assert set(rows["status"]) == {"unavailable"}
    assert rows["latency_ms_p50"].isna().all()
    for r in rows.itertuples():
        assert "not installed (pip install 'sepbench[peers]')" in r.message, r
    by = rows.set_index(["workload", "provider"])["message"]
    assert by[("dwsep_4_6_k3_s1_5x5", "onnxruntime")].startswith("Unavailable: onnxruntime, ")
    assert by[("rbf_b4_d3_k2", "faiss")] == "Unavailable: " + peers_missing("faiss")
    assert isinstance(pd.read_csv(tmp_path / "results.csv"), pd.DataFrame)
