"""The runtimes a user would pick instead of PyTorch, as ready calls for the peer providers:
ONNX Runtime (from a torch.onnx export) and OpenVINO (from openvino.convert_model) for the
separable block, the standard convolution and whole models; KeOps (LazyTensor reductions) and
faiss (pairwise_distances) for the RBF distances and loss.

Everything slow happens here, before the runner's warm-up call: the export, the session or the
compiled model, KeOps' compile of each formula. Each runtime runs on the run's thread count
(torch.get_num_threads(), which bench.provenance fixed and the rows record). The providers are
declared in their operators' modules (``family="peer"``, ``enabled=installed(...)``), once each.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from bench.measuring.operators.base import Unavailable

# The runtimes each speed claim is judged on: the documents' own (PyTorch eager) and the two
# inference runtimes that run the same convolutions from an exported graph.
RUNTIMES: dict[str, str] = {
    "pytorch": "PyTorch eager (the documents' own runtime)",
    "onnxruntime": "ONNX Runtime, CPU execution provider (CUDA's where installed)",
    "openvino": "OpenVINO, CPU plugin",
}
PEER_DTYPES = (torch.float32,)


def threads() -> int:
    """The run's thread count: every peer is pinned to it."""
    return torch.get_num_threads()


def check_dtype(name: str, dtype: torch.dtype) -> None:
    if dtype not in PEER_DTYPES:
        raise Unavailable(f"{name} is timed in float32 only here, not {dtype}", lasting=True)


def cpu_only(name: str, device: str) -> None:
    if device != "cpu":
        raise Unavailable(f"{name} runs on the CPU only; this run is on {device}", lasting=True)


def _numpy_input(x: torch.Tensor):
    return x.detach().to("cpu", torch.float32).contiguous().numpy()


# ----------------------------------------------------------------------------- ONNX Runtime


def onnx_model(module: nn.Module, example: torch.Tensor) -> bytes:
    """The serialized ONNX graph of ``module`` (float32, on the CPU) from torch.onnx's exporter
    (torch.export based); its progress lines are kept off the run's output."""
    module = module.to("cpu", torch.float32).eval()
    example = example.to("cpu", torch.float32)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, (example,), dynamo=True, verbose=False)
    return program.model_proto.SerializeToString()


def onnxruntime_call(
    module: nn.Module, x: torch.Tensor, device: str
) -> tuple[Callable[[], torch.Tensor], str]:
    """(call, backend): an InferenceSession of ``module`` on input ``x``, graph optimisations
    on (ORT fuses Conv + BN + ReLU itself), intra-op threads pinned to the run's. On CUDA the
    CUDA execution provider with the input and output bound to device memory (no host copy)."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    if device == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise Unavailable(
                f"onnxruntime {ort.__version__} here has no CUDAExecutionProvider "
                "(install onnxruntime-gpu for CUDA rows)"
            )
        tf32 = int(torch.backends.cudnn.allow_tf32)  # the precision the PyTorch convs run in
        ep: tuple = (("CUDAExecutionProvider", {"use_tf32": tf32}),)
    else:
        ep = ("CPUExecutionProvider",)
    session = ort.InferenceSession(onnx_model(module, x), options, providers=list(ep))
    name, out_name = session.get_inputs()[0].name, session.get_outputs()[0].name
    backend = f"onnxruntime {ort.__version__} {session.get_providers()[0]}"
    if device != "cuda":
        feed = {name: _numpy_input(x)}
        return (lambda: torch.from_numpy(session.run([out_name], feed)[0])), backend
    xd = x.detach().to("cuda", torch.float32).contiguous()
    with torch.no_grad():
        shape = module.to("cuda", torch.float32)(xd).shape
    out = torch.empty(shape, device="cuda", dtype=torch.float32)
    binding = session.io_binding()
    index = xd.device.index or 0
    binding.bind_input(name, "cuda", index, np.float32, tuple(xd.shape), xd.data_ptr())
    binding.bind_output(out_name, "cuda", index, np.float32, tuple(out.shape), out.data_ptr())

    def run() -> torch.Tensor:
        session.run_with_iobinding(binding)
        return out

    return run, backend


# ----------------------------------------------------------------------------- OpenVINO


def openvino_call(
    module: nn.Module, x: torch.Tensor, device: str
) -> tuple[Callable[[], torch.Tensor], str]:
    """(call, backend): ``openvino.convert_model`` of the module traced on ``x``, compiled for
    the CPU plugin with the run's thread count, the latency hint (one stream) and f32 inference
    precision (the plugin would otherwise pick bf16 on CPUs that have it)."""
    cpu_only("openvino", device)
    import openvino as ov

    module = module.to("cpu", torch.float32).eval()
    xc = x.detach().to("cpu", torch.float32).contiguous()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        model = ov.convert_model(module, example_input=xc)
    config = {
        "INFERENCE_NUM_THREADS": threads(),
        "INFERENCE_PRECISION_HINT": "f32",
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
    }
    compiled = ov.Core().compile_model(model, "CPU", config)
    request = compiled.create_infer_request()
    feed = {0: _numpy_input(xc)}

    def run() -> torch.Tensor:
        return torch.from_numpy(request.infer(feed, share_inputs=True)[0])

    return run, f"openvino {ov.__version__.split('-')[0]} CPU"


# ----------------------------------------------------------------------------- KeOps


def keops_cache() -> Path:
    """Where KeOps writes the code it compiles: $SEPBENCH_KEOPS_CACHE, else the user cache
    (~/.cache/sepbench/keops-<version>), never the source tree."""
    if os.environ.get("SEPBENCH_KEOPS_CACHE"):
        return Path(os.environ["SEPBENCH_KEOPS_CACHE"])
    from importlib.metadata import version

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "sepbench" / f"keops-{version('pykeops')}"


@functools.cache
def _system_openmp() -> ctypes.CDLL | None:
    """The OpenMP runtime KeOps' compiled code links (g++ -fopenmp: the system libgomp, not
    the copy torch bundles), or None."""
    try:
        return ctypes.CDLL("libgomp.so.1")
    except OSError:
        return None


def lazy_tensor() -> type:
    """pykeops.torch.LazyTensor with its build folder on keops_cache(), quiet, and its OpenMP
    threads pinned to the run's; Unavailable where no C++ compiler can build its formulas."""
    folder = keops_cache()
    folder.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("KEOPS_CACHE_FOLDER", str(folder))
    compiler = os.environ.get("CXX", "g++")
    if shutil.which(compiler) is None:
        raise Unavailable(f"KeOps needs a C++ compiler to build its formulas; {compiler} not found")
    with contextlib.redirect_stdout(io.StringIO()):
        import pykeops
        from pykeops.torch import LazyTensor

        pykeops.set_verbose(False)
        if Path(pykeops.get_build_folder()).resolve().parent != folder.resolve():
            pykeops.set_build_folder(str(folder / "build"))
    omp = _system_openmp()
    if omp is not None:
        omp.omp_set_num_threads(threads())
    return LazyTensor


def keops_backend(device: str) -> str:
    from importlib.metadata import version

    where = "cuda" if device == "cuda" else "cpu (g++, OpenMP)"
    return f"keops {version('pykeops')} {where}"


def keops_sq_distances(x: torch.Tensor, centers: torch.Tensor) -> object:
    """The symbolic (B, K) matrix D_ij = |x_i - c_j|^2 (never materialised by itself)."""
    lazy = lazy_tensor()
    return ((lazy(x[:, None, :]) - lazy(centers[None, :, :])) ** 2).sum(-1)


def keops_distance_matrix(x: torch.Tensor, centers: torch.Tensor) -> Callable[[], torch.Tensor]:
    """A call returning the dense (B, K) squared distances. KeOps only reduces: the matrix is
    gathered by Sum_j D_ij e_j, e_j the j-th row of the K x K identity, which costs K extra
    multiply-adds per (i, j) pair: what asking a reduction engine for the matrix costs."""
    lazy = lazy_tensor()
    eye = torch.eye(centers.shape[0], device=centers.device, dtype=centers.dtype)
    d_ij, e_j = keops_sq_distances(x, centers), lazy(eye[None, :, :])
    return lambda: (d_ij * e_j).sum(dim=1)


def keops_rbf_loss(
    x: torch.Tensor, centers: torch.Tensor, target: torch.Tensor, j: float
) -> torch.Tensor:
    """LeCun's loss, mean over the batch, with the log-sum-exp over the K centers reduced by
    KeOps (the B x K matrix is never formed; autograd runs through KeOps' own gradient
    formulas): d_target + log(e^-j + sum_k e^-d_k)."""
    lse = (-keops_sq_distances(x, centers)).logsumexp(dim=1).squeeze(1)
    d_true = ((x - centers[target]) ** 2).sum(1)
    return (d_true + torch.logaddexp(lse, torch.full_like(lse, -j))).mean()


# ----------------------------------------------------------------------------- faiss


def faiss_distance_call(
    x: torch.Tensor, centers: torch.Tensor, device: str
) -> tuple[Callable[[], torch.Tensor], str]:
    """faiss.pairwise_distances on float32 numpy copies made once (CPU); faiss' OpenMP threads
    pinned to the run's. It computes |x|^2 + |c|^2 - 2 x.c through BLAS."""
    cpu_only("faiss", device)
    import faiss

    faiss.omp_set_num_threads(threads())
    xn, cn = _numpy_input(x), _numpy_input(centers)
    call = lambda: torch.from_numpy(faiss.pairwise_distances(xn, cn))  # noqa: E731
    return call, f"faiss {faiss.__version__} cpu (BLAS)"
