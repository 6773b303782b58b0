"""The dw-sep block operator: depthwise KxK -> BN -> act -> pointwise 1x1 -> BN -> act.

Inputs: deterministic float64 tensors (x, both weights, a standard KxK weight, BN statistics),
cast per device and dtype. Oracle: the unfused block in float64. Cost: the documents' formula
MACs, fvcore's count, and the fewest bytes a fused kernel must move. Providers: the standard
convolution it replaces (the speed-up baseline), each half alone, the PyTorch forms of
dwsep_modules (eager in each layout, BN folded, torch.compile), the fused Triton kernel, and
document 001's host-clock method; and the peers: ONNX Runtime and OpenVINO running the block
and the standard convolution from an exported graph (RUNTIME_PAIRS pairs them per runtime).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property

import torch
import torch.nn.functional as F
from torch import nn

from bench import formulas
from bench.counting.counters import fvcore_macs
from bench.measuring import roofline
from bench.measuring.operators import peers
from bench.measuring.operators.base import (
    INTERPRETER_NOTE,
    NAIVE_NOTE,
    Operator,
    Prepared,
    Setting,
    compiles_here,
    conv_backend,
    conv_precision,
    generator,
    installed,
    kernel,
    naive_timer_wanted,
)
from bench.measuring.operators.compiling import StaticCompile
from bench.measuring.operators.dwsep_modules import (
    INDUCTOR_NOTE,
    NHWC,
    block_modules,
    depthwise_conv_backend,
    no_grad_call,
    standard_modules,
)
from bench.measuring.suites import DwsepShape
from kernels.reference import apply_activation, dwsep_reference, fold_batchnorm

BnStats = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # mean, var, gamma, beta


def _bn_stats(n: int, g: torch.Generator) -> BnStats:
    return (
        torch.randn(n, generator=g).double() * 0.1,
        torch.rand(n, generator=g).double() + 0.5,
        torch.rand(n, generator=g).double() + 0.5,
        torch.randn(n, generator=g).double() * 0.1,
    )


def fold(bn: BnStats) -> tuple[torch.Tensor, torch.Tensor]:
    """BN (mean, var, gamma, beta) in eval as y * scale + shift (float64 stays float64)."""
    mean, var, gamma, beta = bn
    return fold_batchnorm(mean, var, gamma, beta)


@dataclass(frozen=True)
class DwsepInputs:
    """The block's inputs in float64 on the CPU; ``random`` makes the seeded ones."""

    shape: DwsepShape
    x: torch.Tensor  # (N, C, H, W)
    dw_weight: torch.Tensor  # (C, 1, K, K)
    pw_weight: torch.Tensor  # (Cout, C, 1, 1)
    std_weight: torch.Tensor  # (Cout, C, K, K): the standard conv it replaces
    bn_dw: BnStats
    bn_pw: BnStats
    bn_std: BnStats

    @classmethod
    def random(cls, shape: DwsepShape, batch: int, seed: int = 0) -> DwsepInputs:
        g = generator(seed)
        s, k2 = shape, shape.kernel * shape.kernel
        return cls(
            shape,
            x=torch.randn(batch, s.in_ch, s.h, s.w, generator=g, dtype=torch.float64),
            dw_weight=torch.randn(s.in_ch, 1, s.kernel, s.kernel, generator=g).double() / k2,
            pw_weight=torch.randn(s.out_ch, s.in_ch, 1, 1, generator=g).double() / s.in_ch**0.5,
            std_weight=(
                torch.randn(s.out_ch, s.in_ch, s.kernel, s.kernel, generator=g).double()
                / (s.in_ch * k2) ** 0.5
            ),
            bn_dw=_bn_stats(s.in_ch, g),
            bn_pw=_bn_stats(s.out_ch, g),
            bn_std=_bn_stats(s.out_ch, g),
        )

    def block_kwargs(self, device: str, dtype: torch.dtype) -> dict:
        """dwsep_block / dwsep_reference keyword arguments (BN folded to scale/shift)."""
        s = self.shape
        dw_scale, dw_shift = fold(self.bn_dw)
        pw_scale, pw_shift = fold(self.bn_pw)
        return dict(
            stride=s.stride,
            padding=s.pad,
            activation=s.activation,
            pw_activation=s.pw_activation,
            dw_scale=dw_scale.to(device, dtype),
            dw_shift=dw_shift.to(device, dtype),
            pw_scale=pw_scale.to(device, dtype),
            pw_shift=pw_shift.to(device, dtype),
        )

    def reference64(self, device: str) -> torch.Tensor:
        """The unfused block in float64 on ``device`` (fp64 is exact enough and fast on an H200)."""
        kw = self.block_kwargs(device, torch.float64)
        x, dw, pw = (t.to(device) for t in (self.x, self.dw_weight, self.pw_weight))
        return dwsep_reference(x, dw, pw, **kw)


def conv_bn_act(
    x: torch.Tensor,
    weight: torch.Tensor,
    bn: BnStats,
    *,
    stride: int,
    padding: int,
    groups: int,
    activation: str | None,
) -> torch.Tensor:
    mean, var, gamma, beta = bn
    y = F.conv2d(x, weight, None, stride, padding, 1, groups)
    y = F.batch_norm(y, mean, var, gamma, beta, False, 0.0, 1e-5)
    return apply_activation(y, activation)


def reduced(shape: DwsepShape) -> DwsepShape:
    """A shape small enough for the Triton interpreter (seconds, not minutes), same K/stride."""
    return replace(
        shape,
        in_ch=min(shape.in_ch, 8),
        out_ch=min(shape.out_ch, 12),
        h=min(shape.h, 11),
        w=min(shape.w, 11),
    )


@functools.lru_cache(maxsize=64)
def fvcore_count(shape: DwsepShape, batch: int, part: str) -> float:
    """fvcore MACs of the standard conv, one half, or the separable pair, at ``batch``: counted
    at batch 1 and scaled (convolution MACs are linear in the batch, and tracing a batch-128
    MobileNet layer on one CPU thread would cost seconds per row)."""
    s = shape
    dw = nn.Conv2d(s.in_ch, s.in_ch, s.kernel, s.stride, s.pad, groups=s.in_ch, bias=False)
    pw = nn.Conv2d(s.in_ch, s.out_ch, 1, bias=False)
    modules = {
        "standard": nn.Conv2d(s.in_ch, s.out_ch, s.kernel, s.stride, s.pad, bias=False),
        "depthwise": dw,
        "pointwise": pw,
        "separable": nn.Sequential(dw, pw),
    }
    shape_in = (1, s.in_ch, *s.out_hw) if part == "pointwise" else (1, s.in_ch, s.h, s.w)
    with torch.no_grad():
        return batch * fvcore_macs(modules[part], torch.zeros(shape_in))


class DwsepSetting(Setting):
    shape: DwsepShape

    @cached_property
    def inputs(self) -> DwsepInputs:
        return DwsepInputs.random(self.shape, self.batch)

    @cached_property
    def macs(self) -> int:
        s = self.shape
        return formulas.depthwise_separable(s.in_ch, s.out_ch, s.kernel, s.out_hw).macs * self.batch

    @cached_property
    def nbytes(self) -> int:
        s = self.shape
        return roofline.dwsep_bytes(
            self.batch, s.in_ch, s.out_ch, s.kernel, (s.h, s.w), s.out_hw, self.elem
        )

    @cached_property
    def modules(self) -> nn.Sequential:
        """The block as eval-mode nn.Modules (BN as BatchNorm2d) in the setting's dtype."""
        d = self.inputs
        return block_modules(
            d.dw_weight.to(self.device, self.dtype),
            d.pw_weight.to(self.device, self.dtype),
            **d.block_kwargs(self.device, self.dtype),
        )

    def prepared(self, fn: Callable[[], object], **fields: object) -> Prepared:
        """A Prepared of the separable block: its MACs, bytes and float64 oracle."""
        fields.setdefault("oracle", lambda: self.inputs.reference64(self.device))
        fields.setdefault("precision", conv_precision(self.device, self.dtype))
        return Prepared(
            fn=fn,
            macs=self.macs,
            macs_fvcore=fvcore_count(self.shape, self.batch, "separable"),
            nbytes=self.nbytes,
            **fields,
        )

    def module_call(
        self,
        call: Callable[[torch.Tensor], torch.Tensor],
        memory_format: torch.memory_format,
        note: str,
        backend: str | None = None,
        mode: str = "timed",
        compiled: StaticCompile | None = None,
    ) -> Prepared:
        """A Prepared of ``call`` on x in ``memory_format``; ``backend`` defaults to the library
        the eager depthwise conv dispatches to for this input."""
        x = self.inputs.x.to(self.device, self.dtype).contiguous(memory_format=memory_format)
        if backend is None:
            s = self.shape
            backend = depthwise_conv_backend(
                self.device,
                self.dtype,
                memory_format,
                channels=s.in_ch,
                kernel=s.kernel,
                stride=s.stride,
                padding=s.pad,
                input_shape=tuple(x.shape),
            )
        return self.prepared(
            lambda: call(x), backend=backend, note=note, mode=mode, compiled=compiled
        )

    def eager(
        self, module: nn.Module, memory_format: torch.memory_format, note: str, **kw: str
    ) -> Prepared:
        """An eval-mode module called under no_grad."""
        return self.module_call(no_grad_call(module), memory_format, note, **kw)

    def compiled(self, mode: str | None, times: str) -> Prepared:
        """torch.compile of the NCHW modules: one static graph in a frame of its own."""
        frame = StaticCompile(copy.deepcopy(self.modules), mode=mode, name=self.workload.id)
        return self.module_call(
            no_grad_call(frame),
            torch.contiguous_format,
            f"{times}; {INDUCTOR_NOTE}",
            backend="inductor",
            compiled=frame,
        )


DWSEP = Operator(
    "dwsep",
    DwsepShape,
    DwsepSetting,
    title="dw-sep block",
    description="fused depthwise KxK -> BN -> act -> pointwise 1x1 -> BN -> act",
)
provider = DWSEP.provider


def _conv_part(s: DwsepSetting, part: str) -> Prepared:
    """The standard KxK conv, or one half of the block alone, each + BN (eval) + act, NCHW."""
    d, sh, b = s.inputs, s.shape, s.batch
    x = d.x
    if part == "standard":
        weight, bn, cout, k, groups = d.std_weight, d.bn_std, sh.out_ch, sh.kernel, 1
        kw = dict(stride=sh.stride, padding=sh.pad, groups=1, activation=sh.pw_activation)
    elif part == "depthwise":
        weight, bn, cout, k, groups = d.dw_weight, d.bn_dw, sh.in_ch, sh.kernel, sh.in_ch
        kw = dict(stride=sh.stride, padding=sh.pad, groups=groups, activation=sh.activation)
    else:  # pointwise, on an input already at the output resolution
        weight, bn, cout, k, groups = d.pw_weight, d.bn_pw, sh.out_ch, 1, 1
        kw = dict(stride=1, padding=0, groups=1, activation=sh.pw_activation)
        x = torch.randn(b, sh.in_ch, *sh.out_hw, generator=generator(1), dtype=torch.float64)

    def on(dtype: torch.dtype) -> tuple:
        return (
            x.to(s.device, dtype),
            weight.to(s.device, dtype),
            tuple(t.to(s.device, dtype) for t in bn),
        )

    xd, wd, bnd = on(s.dtype)
    xo, wo, bno = on(torch.float64)
    in_hw = (x.shape[-2], x.shape[-1])
    return Prepared(
        fn=lambda: conv_bn_act(xd, wd, bnd, **kw),
        backend=conv_backend(s.device, depthwise=groups > 1),
        precision=conv_precision(s.device, s.dtype),
        oracle=lambda: conv_bn_act(xo, wo, bno, **kw),
        macs=formulas.conv2d(sh.in_ch, cout, k, sh.out_hw, groups=groups).macs * b,
        macs_fvcore=fvcore_count(sh, b, part),
        nbytes=roofline.conv_bytes(b, sh.in_ch, cout, k, in_hw, sh.out_hw, s.elem, groups=groups),
    )


@provider(
    "standard_conv",
    "standard",
    baseline=True,
    times="the standard KxK conv + BN (eval) + act, NCHW",
)
def standard_conv(s: DwsepSetting) -> Prepared:
    return _conv_part(s, "standard")


@provider("depthwise_only", "part", times="the depthwise KxK conv + BN + act alone, NCHW")
def depthwise_only(s: DwsepSetting) -> Prepared:
    return _conv_part(s, "depthwise")


@provider("pointwise_only", "part", times="the pointwise 1x1 conv + BN + act alone, NCHW")
def pointwise_only(s: DwsepSetting) -> Prepared:
    return _conv_part(s, "pointwise")


EAGER_NCHW_TIMES = "dw conv -> BN -> act -> pw conv -> BN -> act, eager nn.Modules, NCHW"
BN_AS_MODULES = "BN as BatchNorm2d modules"


@provider("eager_nchw", "eager", document=True, times=EAGER_NCHW_TIMES)
def eager_nchw(s: DwsepSetting) -> Prepared:
    return s.eager(s.modules, torch.contiguous_format, f"{EAGER_NCHW_TIMES}; {BN_AS_MODULES}")


@provider(
    "eager_channels_last",
    "eager",
    layout="nhwc",
    times="the same eager modules, channels_last input and weights",
)
def eager_channels_last(s: DwsepSetting) -> Prepared:
    module = copy.deepcopy(s.modules).to(memory_format=NHWC)
    note = f"the same eager modules, channels_last input and weights; {BN_AS_MODULES}"
    return s.eager(module, NHWC, note)


@provider("eager_folded", "eager", times="eager, NCHW, BN folded into the convs' weight and bias")
def eager_folded(s: DwsepSetting) -> Prepared:
    d = s.inputs
    module = block_modules(
        d.dw_weight.to(s.device, s.dtype),
        d.pw_weight.to(s.device, s.dtype),
        fold=True,
        **d.block_kwargs(s.device, s.dtype),
    )
    note = "eager, NCHW, BN folded into the convs' weight and bias"
    return s.eager(module, torch.contiguous_format, note)


@provider(
    "compile_default",
    "compile",
    applies=compiles_here,
    times="torch.compile (default mode) of the eager NCHW modules",
)
def compile_default(s: DwsepSetting) -> Prepared:
    return s.compiled(None, "torch.compile (default mode) of the eager NCHW modules")


@provider(
    "compile_max_autotune",
    "compile",
    applies=compiles_here,
    times="torch.compile (max-autotune) of the eager NCHW modules",
)
def compile_max_autotune(s: DwsepSetting) -> Prepared:
    return s.compiled("max-autotune", "torch.compile (max-autotune) of the eager NCHW modules")


@provider(
    "triton_fused",
    "fused",
    layout="nhwc",
    times="kernels.dwsep_block: the whole block in one Triton kernel, channels_last input",
)
def triton_fused(s: DwsepSetting) -> Prepared:
    dwsep_block = kernel("dwsep_block")
    shape, batch = (reduced(s.shape), 1) if s.interpreted else (s.shape, s.batch)
    same = (shape, batch) == (s.shape, s.batch)
    inp = s.inputs if same else DwsepInputs.random(shape, batch)
    x = inp.x.to(s.device, s.dtype).contiguous(memory_format=NHWC)
    # The weight packed once, outside the timed call, as the models pack theirs at build.
    dw = kernel("pack_dw_weight")(inp.dw_weight.to(s.device, s.dtype))
    pw = inp.pw_weight.to(s.device, s.dtype)
    kw = inp.block_kwargs(s.device, s.dtype)
    note = "fused Triton kernel, channels_last input"
    if s.interpreted:
        note = f"{INTERPRETER_NOTE}; checked on reduced shape {shape.describe(batch)}"
    return s.prepared(
        lambda: dwsep_block(x, dw, pw, **kw),
        oracle=lambda: inp.reference64(s.device),
        **s.kernel_fields(note),
    )


@provider(
    "naive_host_clock",
    "methodology",
    wraps="eager_nchw",
    applies=naive_timer_wanted,
    times="document 001's host clock around 100 calls of eager_nchw (no warm-up, no sync)",
)
def naive_host_clock(s: DwsepSetting) -> Prepared:
    return s.eager(s.modules, torch.contiguous_format, f"{NAIVE_NOTE} on eager_nchw", mode="naive")


# The peer runtimes: the same eval-mode modules exported (BN as scale/shift, folded by the
# runtime's own graph optimisations), float32, NCHW, on the run's thread count.
PEER_BLOCK = "the block's eval-mode modules (dw -> BN -> act -> pw -> BN -> act)"
PEER_STANDARD = "the standard KxK conv + BN (eval) + act"


def _standard_module(s: DwsepSetting) -> nn.Sequential:
    d, sh = s.inputs, s.shape
    scale, shift = fold(d.bn_std)
    return standard_modules(
        d.std_weight.float(),
        stride=sh.stride,
        padding=sh.pad,
        scale=scale.float(),
        shift=shift.float(),
        activation=sh.pw_activation,
    )


def _peer(s: DwsepSetting, runtime: str, part: str) -> Prepared:
    """``runtime``'s call of the separable block (``part`` "block") or of the standard conv."""
    peers.check_dtype(runtime, s.dtype)
    call = {"onnxruntime": peers.onnxruntime_call, "openvino": peers.openvino_call}[runtime]
    x = s.inputs.x.float()
    if part == "block":
        module = copy.deepcopy(s.modules).to("cpu", torch.float32)
        fn, backend = call(module, x, s.device)
        return s.prepared(fn, backend=backend, note=f"{runtime} of {PEER_BLOCK}, NCHW")
    fn, backend = call(_standard_module(s), x, s.device)
    return replace(
        _conv_part(s, "standard"), fn=fn, backend=backend, note=f"{runtime} of {PEER_STANDARD}"
    )


@provider(
    "onnxruntime",
    "peer",
    enabled=installed("onnxruntime", "onnxscript"),
    times="ONNX Runtime (CPU EP; CUDA EP where installed) of the block exported by torch.onnx",
)
def onnxruntime_block(s: DwsepSetting) -> Prepared:
    return _peer(s, "onnxruntime", "block")


@provider(
    "onnxruntime_standard",
    "standard",
    enabled=installed("onnxruntime", "onnxscript"),
    times="ONNX Runtime of the standard KxK conv + BN + act exported by torch.onnx",
)
def onnxruntime_standard(s: DwsepSetting) -> Prepared:
    return _peer(s, "onnxruntime", "standard")


@provider(
    "openvino",
    "peer",
    enabled=installed("openvino"),
    times="OpenVINO (CPU plugin, f32) of the block converted by openvino.convert_model",
)
def openvino_block(s: DwsepSetting) -> Prepared:
    return _peer(s, "openvino", "block")


@provider(
    "openvino_standard",
    "standard",
    enabled=installed("openvino"),
    times="OpenVINO (CPU plugin, f32) of the standard KxK conv + BN + act",
)
def openvino_standard(s: DwsepSetting) -> Prepared:
    return _peer(s, "openvino", "standard")


# Per runtime: (the standard conv, the separable block) whose latency ratio the speed claims
# and ratio_gap.png read.
RUNTIME_PAIRS: dict[str, tuple[str, str]] = {
    "pytorch": (DWSEP.baseline.name, DWSEP.document.name),
    "onnxruntime": ("onnxruntime_standard", "onnxruntime"),
    "openvino": ("openvino_standard", "openvino"),
}
