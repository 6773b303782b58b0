"""The whole-model operator: a registered model's forward pass at its own input shape.

Inputs: the model built with seed 0 and a float64 input batch. Oracle: the same model in
float64 on the device. Cost: the formula and fvcore MACs of the forward pass, and the bytes of
parameters + input + output. Providers: eager PyTorch (the baseline), torch.compile, the model
built on its Triton backend (the depthwise twins), MobileNetV2 with its dw->pw chains fused, and
document 001's host-clock method on the eager model; and the peers, ONNX Runtime and OpenVINO
running the exported model (RUNTIME_PROVIDERS names each runtime's row).
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import nn

from bench.counting.counters import count_registered
from bench.measuring.operators import peers
from bench.measuring.operators.base import (
    INTERPRETER_NOTE,
    NAIVE_NOTE,
    Operator,
    Prepared,
    Setting,
    Unavailable,
    compiles_here,
    conv_backend,
    conv_precision,
    generator,
    installed,
    naive_timer_wanted,
)
from bench.measuring.operators.compiling import StaticCompile
from bench.measuring.suites import ModelShape, Workload
from models import registry

# Above this many MACs a model is not run under the Triton interpreter (cifar_cnn_dw would take
# minutes there); its triton rows say so instead.
INTERPRETER_MODEL_MACS = 10_000_000


@functools.lru_cache(maxsize=32)
def model_params(name: str) -> int:
    """Parameters of the registered model, from its counting table (no model built here)."""
    return int(count_registered(name, batch=1).iloc[-1]["params"])


@functools.lru_cache(maxsize=32)
def model_counts(name: str, batch: int) -> tuple[float, float]:
    """(formula MACs, fvcore MACs) of the model's forward pass at ``batch``: counted at batch 1
    on the CPU and scaled (every layer of these models is linear in the batch)."""
    total = count_registered(name, batch=1).iloc[-1]
    return batch * float(total["macs_formula"]), batch * float(total["macs_fvcore"])


def frozen(model: nn.Module, device: str, dtype: torch.dtype) -> nn.Module:
    model = model.eval().to(device, dtype)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@dataclass(frozen=True)
class ModelInputs:
    """The model built with seed 0 (float32, CPU), a float64 input batch on the device and the
    model's float64 output on it (the oracle)."""

    model: nn.Module
    x64: torch.Tensor
    expected: torch.Tensor


class ModelSetting(Setting):
    shape: ModelShape

    @cached_property
    def spec(self) -> registry.ModelSpec:
        return registry.get(self.shape.name)

    @cached_property
    def inputs(self) -> ModelInputs:
        torch.manual_seed(0)
        model = self.spec.build().eval()
        x64 = torch.randn(
            self.batch, *self.spec.input_shape, generator=generator(), dtype=torch.float64
        ).to(self.device)
        with torch.no_grad():  # the float64 oracle runs on the device (fp64 is fast on an H200)
            expected = copy.deepcopy(model).to(self.device, torch.float64)(x64)
        return ModelInputs(model, x64, expected)

    @cached_property
    def macs(self) -> float:
        return model_counts(self.shape.name, self.batch)[0]

    @cached_property
    def nbytes(self) -> float:
        """Parameters and the input batch, each once (the logits are a rounding error): the
        floor of the cost model, counted without building the model."""
        inputs = math.prod(self.spec.input_shape) * self.batch
        return (model_params(self.shape.name) + inputs) * self.elem

    def prepared(
        self,
        model: nn.Module,
        backend: str,
        note: str,
        mode: str = "timed",
        compiled: StaticCompile | None = None,
    ) -> Prepared:
        """A Prepared of ``model``'s forward (frozen, in the setting's dtype) on the input;
        ``compiled``, when given, is the compiled frame that runs ``model``."""
        x = self.inputs.x64.to(self.device, self.dtype)
        runnable = frozen(model, self.device, self.dtype)
        call = runnable if compiled is None else compiled
        return self.prepared_call(
            functools.partial(_forward, call, x),
            model,
            backend,
            note,
            mode=mode,
            compiled=compiled,
        )

    def prepared_call(
        self,
        fn: Callable[[], torch.Tensor],
        model: nn.Module,
        backend: str,
        note: str,
        *,
        mode: str = "timed",
        compiled: StaticCompile | None = None,
    ) -> Prepared:
        """A Prepared of ``fn``, a ready forward of ``model`` on the setting's input (a peer
        runtime's session, say): the model's cost and the float64 oracle."""
        expected = self.inputs.expected
        _, fv = model_counts(self.shape.name, self.batch)
        params = sum(p.numel() for p in model.parameters())
        return Prepared(
            fn=fn,
            backend=backend,
            oracle=lambda: expected,
            macs=self.macs,
            macs_fvcore=fv,
            nbytes=(params + self.inputs.x64.numel() + expected.numel()) * self.elem,
            mode=mode,
            note=note,
            precision=conv_precision(self.device, self.dtype),
            compiled=compiled,
        )

    def fresh_model(self) -> nn.Module:
        """A copy of the seeded model, for a provider to change or compile."""
        return copy.deepcopy(self.inputs.model)


def _forward(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


def _has_pair(workload: Workload, device: str) -> bool:
    return registry.get(workload.shape.name).pair is not None


def _is_mobilenet(workload: Workload, device: str) -> bool:
    return workload.shape.name == "mobilenet_v2"


MODEL = Operator(
    "model",
    ModelShape,
    ModelSetting,
    title="whole model",
    description="a registered model's forward pass (the documents' networks and MobileNetV2)",
)
provider = MODEL.provider


@provider("torch", "eager", baseline=True, document=True, times="eager PyTorch forward, NCHW")
def eager(s: ModelSetting) -> Prepared:
    return s.prepared(s.fresh_model(), conv_backend(s.device), "eager PyTorch, NCHW")


@provider("compile", "compile", applies=compiles_here, times="torch.compile(model), default mode")
def compiled(s: ModelSetting) -> Prepared:
    model = frozen(s.fresh_model(), s.device, s.dtype)
    frame = StaticCompile(model, name=f"{s.workload.id}_{s.batch}_{s.dtype}")
    return s.prepared(model, "inductor", "torch.compile(model), default mode", compiled=frame)


def _triton_model(s: ModelSetting, fused: bool) -> Prepared:
    """The depthwise twin on backend='triton', or MobileNetV2 through models.mobilenet.fuse."""
    macs, _ = model_counts(s.shape.name, s.batch)
    if s.interpreted and not macs <= INTERPRETER_MODEL_MACS:
        raise Unavailable(
            f"not run under the Triton interpreter: {macs:.3g} MACs would take minutes "
            f"on CPU (limit {INTERPRETER_MODEL_MACS:.0e}); run on a GPU",
            lasting=True,
        )
    if fused:
        from models.mobilenet import fuse

        candidate = fuse(s.fresh_model())
        note = "dw->pw chains swapped by models.mobilenet.fuse"
    else:
        torch.manual_seed(0)
        candidate = s.spec.build(backend="triton")
        candidate.load_state_dict(s.inputs.model.state_dict())
        note = "backend='triton'"
    if s.interpreted:
        return s.prepared(
            candidate,
            "triton-interpreter",
            f"{INTERPRETER_NOTE}; full model at batch {s.batch}",
            "interpreter",
        )
    return s.prepared(candidate, "triton", note)


@provider(
    "triton",
    "fused",
    applies=_has_pair,
    times="the depthwise twin built with backend='triton' (fused blocks and RBF kernels)",
)
def triton_twin(s: ModelSetting) -> Prepared:
    return _triton_model(s, fused=False)


@provider(
    "fused",
    "fused",
    applies=_is_mobilenet,
    times="MobileNetV2 with each dw -> BN -> ReLU6 -> 1x1 -> BN chain one fused kernel",
)
def mobilenet_fused(s: ModelSetting) -> Prepared:
    return _triton_model(s, fused=True)


@provider(
    "naive_host_clock",
    "methodology",
    wraps="torch",
    applies=naive_timer_wanted,
    times="document 001's host clock around 100 calls of the eager model (no warm-up, no sync)",
)
def naive_host_clock(s: ModelSetting) -> Prepared:
    return s.prepared(s.fresh_model(), conv_backend(s.device), f"{NAIVE_NOTE} on torch", "naive")


def _peer(s: ModelSetting, runtime: str) -> Prepared:
    peers.check_dtype(runtime, s.dtype)
    call = {"onnxruntime": peers.onnxruntime_call, "openvino": peers.openvino_call}[runtime]
    model = frozen(s.fresh_model(), "cpu", torch.float32)
    fn, backend = call(model, s.inputs.x64.float(), s.device)
    return s.prepared_call(fn, model, backend, f"{runtime} of the eval-mode model, NCHW")


@provider(
    "onnxruntime",
    "peer",
    enabled=installed("onnxruntime", "onnxscript"),
    times="ONNX Runtime (CPU EP; CUDA EP where installed) of the model exported by torch.onnx",
)
def onnxruntime_model(s: ModelSetting) -> Prepared:
    return _peer(s, "onnxruntime")


@provider(
    "openvino",
    "peer",
    enabled=installed("openvino"),
    times="OpenVINO (CPU plugin, f32) of the model converted by openvino.convert_model",
)
def openvino_model(s: ModelSetting) -> Prepared:
    return _peer(s, "openvino")


# The provider that runs each model on each runtime (the depthwise twins are workloads of their
# own, so a runtime's claim compares its rows of the two models).
RUNTIME_PROVIDERS: dict[str, str] = {
    "pytorch": MODEL.baseline.name,
    "onnxruntime": "onnxruntime",
    "openvino": "openvino",
}
