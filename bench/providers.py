"""Workload spec -> the providers that compute it: the one place that knows every kernel and
baseline. Each Case prepares lazily, so one provider whose import or setup fails becomes a row
with status "unavailable" (or "error") and the others still run.

Baselines built here: "standard_conv" (full KxK conv + BN + act, the document rows' baseline),
"depthwise_only", "pointwise_only", "mm_same_size" (torch.mm of the same operands: the matmul
roofline of the RBF distance), "naive_host_clock" (document 001's timing method). The eager /
compile providers come from kernels.reference; "triton_fused" from kernels.dwsep / kernels.rbf.
"""

from __future__ import annotations

import copy
import functools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bench import formulas, roofline
from bench.suites import DwsepShape, ModelShape, RbfShape, Workload

DWSEP_HELPERS = (
    "eager_nchw",
    "eager_channels_last",
    "eager_folded",
    "compile_default",
    "compile_max_autotune",
)
RBF_HELPERS = ("broadcast", "cdist_mm", "cdist_exact", "expansion_mm", "compile_broadcast")
RBF_LOSS_HELPERS = ("doc002_eager", "eager_stable", "compile")
BASELINES = {"dwsep": "standard_conv", "rbf": "broadcast", "rbfloss": "doc002_eager"}
MODEL_BASELINE = "torch"
RBF_J = 0.3  # LeCun 1998's constant in the RBF loss
# Above this many MACs a model is not run under the Triton interpreter (cifar_cnn_dw would take
# minutes there); its triton rows say so instead.
INTERPRETER_MODEL_MACS = 10_000_000
INTERPRETER_NOTE = "interpreter: correctness only"
NAIVE_NOTE = "document 001's method (time.time() around 100 calls, no warm-up, no sync)"


class Unavailable(RuntimeError):
    """The provider cannot run here (missing module, helper or device support)."""


@dataclass
class Prepared:
    """A provider ready to run: ``fn()`` computes the workload with inputs already bound."""

    fn: Callable[[], object]
    backend: str
    oracle: Callable[[], object] | None  # float64 result to compare with, or None
    macs: float
    macs_fvcore: float
    nbytes: float
    mode: str = "timed"  # "timed", "naive" (host clock) or "interpreter" (no latency)
    note: str = ""
    layout: str = "nchw"


@dataclass
class Case:
    workload: Workload
    provider: str
    dtype: torch.dtype
    prepare: Callable[[], Prepared]


def baseline_of(workload_kind: str) -> str:
    return BASELINES.get(workload_kind, MODEL_BASELINE)


def interpreted(device: str) -> bool:
    """Whether Triton kernels run under the interpreter for this device (CPU: always)."""
    from kernels import _runtime

    return device == "cpu" or _runtime.INTERPRET


def max_rel_err(result: object, expected: object) -> float:
    """max |result - expected| / max |expected|, in float64, over every tensor returned.

    Normalised by the largest reference magnitude (not element-wise), so ReLU zeros do not turn
    a rounding difference into an infinite error.
    """
    got = result if isinstance(result, (tuple, list)) else (result,)
    want = expected if isinstance(expected, (tuple, list)) else (expected,)
    if len(got) != len(want):
        raise ValueError(f"provider returned {len(got)} tensors, the reference {len(want)}")
    worst = 0.0
    for g, w in zip(got, want, strict=True):
        g64, w64 = g.detach().to("cpu", torch.float64), w.detach().to("cpu", torch.float64)
        if g64.shape != w64.shape:
            raise ValueError(f"output shape {tuple(g64.shape)} != reference {tuple(w64.shape)}")
        scale = w64.abs().max().item()
        err = (g64 - w64).abs().max().item()
        worst = max(worst, err / scale if scale > 0 else err)
    return worst


def _conv_backend(device: str, depthwise: bool = False) -> str:
    if device == "cuda":
        return "cudnn/native-depthwise" if depthwise else "cudnn"
    return "oneDNN" if torch.backends.mkldnn.is_available() else "aten-cpu"


def _fvcore_macs(module: nn.Module, *inputs: torch.Tensor) -> float:
    from fvcore.nn import FlopCountAnalysis

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = FlopCountAnalysis(module, inputs)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        return float(analysis.total())


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# Depthwise-separable workloads


class _DwsepInputs:
    """Random inputs in float64 on the CPU (deterministic), cast per device/dtype on demand."""

    def __init__(self, shape: DwsepShape, batch: int) -> None:
        g = _generator()
        s = shape
        k2 = s.kernel * s.kernel
        self.shape, self.batch = s, batch
        self.x = torch.randn(batch, s.in_ch, s.h, s.w, generator=g, dtype=torch.float64)
        self.dw_weight = torch.randn(s.in_ch, 1, s.kernel, s.kernel, generator=g).double() / k2
        self.pw_weight = torch.randn(s.out_ch, s.in_ch, 1, 1, generator=g).double() / s.in_ch**0.5
        self.std_weight = (
            torch.randn(s.out_ch, s.in_ch, s.kernel, s.kernel, generator=g).double()
            / (s.in_ch * k2) ** 0.5
        )

        def bn(n: int) -> tuple[torch.Tensor, ...]:  # running mean, var, gamma, beta
            return (
                torch.randn(n, generator=g).double() * 0.1,
                torch.rand(n, generator=g).double() + 0.5,
                torch.rand(n, generator=g).double() + 0.5,
                torch.randn(n, generator=g).double() * 0.1,
            )

        self.bn_dw, self.bn_pw, self.bn_std = bn(s.in_ch), bn(s.out_ch), bn(s.out_ch)

    @staticmethod
    def fold(bn: tuple[torch.Tensor, ...], eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
        mean, var, gamma, beta = bn
        scale = gamma / torch.sqrt(var + eps)
        return scale, beta - mean * scale

    def block_kwargs(self, device: str, dtype: torch.dtype) -> dict:
        """dwsep_block / dwsep_reference keyword arguments (BN folded to scale/shift)."""
        s = self.shape
        dw_scale, dw_shift = self.fold(self.bn_dw)
        pw_scale, pw_shift = self.fold(self.bn_pw)

        def cast(t: torch.Tensor) -> torch.Tensor:
            return t.to(device, dtype)

        return dict(
            stride=s.stride,
            padding=s.pad,
            dw_scale=cast(dw_scale),
            dw_shift=cast(dw_shift),
            activation=s.activation,
            pw_scale=cast(pw_scale),
            pw_shift=cast(pw_shift),
            pw_activation=s.pw_activation,
        )


def _conv_bn_act(x, weight, bn, *, stride, padding, groups, activation):
    from kernels.reference import apply_activation

    mean, var, gamma, beta = bn
    y = F.conv2d(x, weight, None, stride, padding, 1, groups)
    y = F.batch_norm(y, mean, var, gamma, beta, False, 0.0, 1e-5)
    return apply_activation(y, activation)


def _on(t: torch.Tensor | tuple, device: str, dtype: torch.dtype):
    if isinstance(t, tuple):
        return tuple(v.to(device, dtype) for v in t)
    return t.to(device, dtype)


def _describe_dwsep(s: DwsepShape, batch: int) -> str:
    return (
        f"N{batch} C{s.in_ch}->{s.out_ch} {s.h}x{s.w} k{s.kernel} s{s.stride} p{s.pad} "
        f"act={s.activation} pw_act={s.pw_activation}"
    )


@functools.lru_cache(maxsize=64)
def _dwsep_fvcore(shape: DwsepShape, batch: int, part: str) -> float:
    s = shape
    dw = nn.Conv2d(s.in_ch, s.in_ch, s.kernel, s.stride, s.pad, groups=s.in_ch, bias=False)
    pw = nn.Conv2d(s.in_ch, s.out_ch, 1, bias=False)
    modules = {
        "standard": nn.Conv2d(s.in_ch, s.out_ch, s.kernel, s.stride, s.pad, bias=False),
        "depthwise": dw,
        "pointwise": pw,
        "separable": nn.Sequential(dw, pw),
    }
    # counted at batch 1 and scaled: convolution MACs are linear in the batch, and tracing a
    # batch-128 MobileNet layer on one CPU thread would cost seconds per row
    shape_in = (1, s.in_ch, *s.out_hw) if part == "pointwise" else (1, s.in_ch, s.h, s.w)
    with torch.no_grad():
        return batch * _fvcore_macs(modules[part], torch.zeros(shape_in))


def _reduced(shape: DwsepShape) -> DwsepShape:
    """A shape small enough for the Triton interpreter (seconds, not minutes), same K/stride."""
    return DwsepShape(
        min(shape.in_ch, 8),
        min(shape.out_ch, 12),
        shape.kernel,
        shape.stride,
        min(shape.h, 11),
        min(shape.w, 11),
        padding=shape.padding,
        activation=shape.activation,
        pw_activation=shape.pw_activation,
    )


def dwsep_cases(workload: Workload, device: str, dtype: torch.dtype) -> list[Case]:
    s: DwsepShape = workload.shape  # type: ignore[assignment]
    b = workload.batch
    out_hw = s.out_hw
    elem = torch.empty((), dtype=dtype).element_size()
    inputs = functools.lru_cache(maxsize=1)(lambda: _DwsepInputs(s, b))
    sep_macs = formulas.depthwise_separable(s.in_ch, s.out_ch, s.kernel, out_hw).macs * b
    sep_bytes = roofline.dwsep_bytes(b, s.in_ch, s.out_ch, s.kernel, (s.h, s.w), out_hw, elem)

    def conv_case(part: str) -> Callable[[], Prepared]:
        def prepare() -> Prepared:
            inp = inputs()
            x = inp.x
            if part == "standard":
                weight, bn, cout, k, groups = inp.std_weight, inp.bn_std, s.out_ch, s.kernel, 1
                kw = dict(stride=s.stride, padding=s.pad, groups=1, activation=s.pw_activation)
            elif part == "depthwise":
                weight, bn, cout, k, groups = inp.dw_weight, inp.bn_dw, s.in_ch, s.kernel, s.in_ch
                kw = dict(stride=s.stride, padding=s.pad, groups=groups, activation=s.activation)
            else:  # pointwise, on an input already at the output resolution
                weight, bn, cout, k, groups = inp.pw_weight, inp.bn_pw, s.out_ch, 1, 1
                kw = dict(stride=1, padding=0, groups=1, activation=s.pw_activation)
                x = torch.randn(b, s.in_ch, *out_hw, generator=_generator(1), dtype=torch.float64)
            xd, wd, bnd = _on(x, device, dtype), _on(weight, device, dtype), _on(bn, device, dtype)
            xo, wo, bno = (
                _on(x, device, torch.float64),
                _on(weight, device, torch.float64),
                _on(bn, device, torch.float64),
            )
            in_hw = (x.shape[-2], x.shape[-1])
            return Prepared(
                fn=lambda: _conv_bn_act(xd, wd, bnd, **kw),
                backend=_conv_backend(device, depthwise=groups > 1),
                oracle=lambda: _conv_bn_act(xo, wo, bno, **kw),
                macs=formulas.conv2d(s.in_ch, cout, k, out_hw, groups=groups).macs * b,
                macs_fvcore=_dwsep_fvcore(s, b, part),
                nbytes=roofline.conv_bytes(b, s.in_ch, cout, k, in_hw, out_hw, elem, groups=groups),
                note=f"{part} conv + BN (eval) + act, eager NCHW",
            )

        return prepare

    def oracle() -> torch.Tensor:
        return _dwsep_reference64(inputs(), device)

    @functools.lru_cache(maxsize=1)
    def helpers() -> dict:
        try:
            from kernels.reference import dwsep_providers
        except ImportError as err:
            raise Unavailable(f"kernels.reference.dwsep_providers missing: {err}") from err
        inp = inputs()
        found = dwsep_providers(
            _on(inp.dw_weight, device, dtype), _on(inp.pw_weight, device, dtype),
            **inp.block_kwargs(device, dtype),
        )  # fmt: skip
        return {p.name: p for p in found}

    def helper_case(name: str, naive: bool = False) -> Callable[[], Prepared]:
        def prepare() -> Prepared:
            provider = helpers().get(name)
            if provider is None:
                raise Unavailable(f"dwsep_providers() returned no provider named {name!r}")
            x = inputs().x.to(device, dtype).contiguous(memory_format=provider.memory_format)
            layout = "nhwc" if provider.memory_format == torch.channels_last else "nchw"
            note = provider.note
            if naive:
                note = f"{NAIVE_NOTE} on {name}"
            return Prepared(
                fn=lambda: provider.fn(x), backend=provider.backend, oracle=oracle,
                macs=sep_macs, macs_fvcore=_dwsep_fvcore(s, b, "separable"), nbytes=sep_bytes,
                mode="naive" if naive else "timed", note=note, layout=layout,
            )  # fmt: skip

        return prepare

    def triton_case() -> Prepared:
        try:
            from kernels import dwsep_block
        except Exception as err:
            raise Unavailable(f"kernels.dwsep_block cannot be imported: {err}") from err
        interp = interpreted(device)
        shape, batch = (_reduced(s), 1) if interp else (s, b)
        inp = inputs() if shape == s and batch == b else _DwsepInputs(shape, batch)
        x = inp.x.to(device, dtype).contiguous(memory_format=torch.channels_last)
        dw, pw = _on(inp.dw_weight, device, dtype), _on(inp.pw_weight, device, dtype)
        kw = inp.block_kwargs(device, dtype)
        note = "fused Triton kernel, channels_last input"
        if interp:
            note = f"{INTERPRETER_NOTE}; checked on reduced shape {_describe_dwsep(shape, batch)}"
        return Prepared(
            fn=lambda: dwsep_block(x, dw, pw, **kw),
            backend="triton-interpreter" if interp else "triton",
            oracle=lambda: _dwsep_reference64(inp, device),
            macs=sep_macs, macs_fvcore=_dwsep_fvcore(s, b, "separable"), nbytes=sep_bytes,
            mode="interpreter" if interp else "timed", note=note, layout="nhwc",
        )  # fmt: skip

    cases = [
        Case(workload, "standard_conv", dtype, conv_case("standard")),
        Case(workload, "depthwise_only", dtype, conv_case("depthwise")),
        Case(workload, "pointwise_only", dtype, conv_case("pointwise")),
    ]
    for name in DWSEP_HELPERS:
        if name.startswith("compile") and device == "cpu" and not workload.compile_on_cpu:
            continue
        cases.append(Case(workload, name, dtype, helper_case(name)))
    cases.append(Case(workload, "triton_fused", dtype, triton_case))
    if workload.naive_timer:
        cases.append(Case(workload, "naive_host_clock", dtype, helper_case("eager_nchw", True)))
    return cases


def _dwsep_reference64(inp: _DwsepInputs, device: str) -> torch.Tensor:
    """The unfused block in float64 on ``device`` (fp64 is exact enough and fast on an H200)."""
    from kernels.reference import dwsep_reference

    kw = inp.block_kwargs(device, torch.float64)
    x, dw, pw = (_on(t, device, torch.float64) for t in (inp.x, inp.dw_weight, inp.pw_weight))
    return dwsep_reference(x, dw, pw, **kw)


# ---------------------------------------------------------------------------------------------
# RBF distance and loss workloads


class _MatmulT(nn.Module):
    def forward(self, x: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
        return x @ centers.t()


# Largest B*K*D for which the float64 oracle forms the (B, K, D) differences explicitly (256 MB);
# beyond it the oracle uses the float64 expansion |x|^2 + |c|^2 - 2 x.c, whose rounding (~1e-16
# relative to the norms) is still far below any float32 provider's error.
EXACT_ORACLE_ELEMS = 2**25


def _distances64(x: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    from kernels.reference import rbf_distance_reference

    if x.shape[0] * centers.shape[0] * x.shape[1] <= EXACT_ORACLE_ELEMS:
        return rbf_distance_reference(x, centers)
    sq = (x * x).sum(1, keepdim=True) + (centers * centers).sum(1) - 2 * x @ centers.t()
    return sq.clamp_min(0)


def _rbf_inputs(b: int, d: int, k: int, device: str) -> tuple[torch.Tensor, ...]:
    """Deterministic float64 x (B, D), centers (K, D) and int64 targets on ``device``."""
    g = _generator()
    x = torch.randn(b, d, generator=g, dtype=torch.float64)
    centers = torch.randn(k, d, generator=g, dtype=torch.float64)
    target = torch.randint(0, k, (b,), generator=g)
    return x.to(device), centers.to(device), target.to(device)


def _rbf_loss_oracle(x, centers, target) -> tuple[torch.Tensor, ...]:
    """(loss, grad_x, grad_centers) in float64: the providers' fns return the same triple."""
    from kernels.reference import rbf_loss_from_distances

    x, centers = x.clone().requires_grad_(True), centers.clone().requires_grad_(True)
    loss = rbf_loss_from_distances(_distances64(x, centers), target, RBF_J)
    gx, gc = torch.autograd.grad(loss, (x, centers))
    return loss.detach(), gx, gc


def rbf_cases(workload: Workload, device: str, dtype: torch.dtype) -> list[Case]:
    s: RbfShape = workload.shape  # type: ignore[assignment]
    elem = torch.empty((), dtype=dtype).element_size()
    fwd_macs = formulas.linear(s.dim, s.centers, bias=False).macs * s.batch
    if s.loss:  # forward distances + grad_x + grad_centers: three B*K*D products
        macs = 3 * fwd_macs
        nbytes = roofline.rbf_loss_bytes(s.batch, s.dim, s.centers, elem)
    else:
        macs = fwd_macs
        nbytes = roofline.rbf_distance_bytes(s.batch, s.dim, s.centers, elem)

    @functools.lru_cache(maxsize=1)
    def data() -> tuple[torch.Tensor, ...]:
        x64, c64, target = _rbf_inputs(s.batch, s.dim, s.centers, device)
        return x64, c64, target, x64.to(dtype), c64.to(dtype)

    @functools.lru_cache(maxsize=1)
    def fvcore() -> float:
        if s.loss:  # fvcore traces forward graphs only
            return math.nan
        one_row = _fvcore_macs(_MatmulT(), torch.zeros(1, s.dim), torch.zeros(s.centers, s.dim))
        return s.batch * one_row  # linear in B; a 65536-row trace would run a 65536-row mm

    def oracle() -> object:
        x64, c64, target, _, _ = data()
        return _rbf_loss_oracle(x64, c64, target) if s.loss else _distances64(x64, c64)

    @functools.lru_cache(maxsize=1)
    def helpers() -> dict:
        import kernels.reference as ref

        factory = "rbf_loss_providers" if s.loss else "rbf_distance_providers"
        if not hasattr(ref, factory):
            raise Unavailable(f"kernels.reference.{factory} is not there yet")
        _, _, target, _, c = data()
        if s.loss:
            found = ref.rbf_loss_providers(c.clone().requires_grad_(True), target, j=RBF_J)
        else:
            found = ref.rbf_distance_providers(c)
        return {p.name: p for p in found}

    def helper_case(name: str) -> Callable[[], Prepared]:
        def prepare() -> Prepared:
            provider = helpers().get(name)
            if provider is None:
                raise Unavailable(f"kernels.reference returned no provider named {name!r}")
            x = data()[3]
            # the loss helpers return the detached loss only (their grads live on fresh leaves)
            expected = (lambda: oracle()[0]) if s.loss else oracle
            return Prepared(
                fn=lambda: provider.fn(x), backend=provider.backend, oracle=expected, macs=macs,
                macs_fvcore=fvcore(), nbytes=nbytes, note=provider.note, layout="row-major",
            )  # fmt: skip

        return prepare

    def mm_case() -> Prepared:
        x64, c64, _, x, c = data()
        ct = c.t()
        return Prepared(
            fn=lambda: torch.mm(x, ct), backend="cublas" if device == "cuda" else "aten-cpu (BLAS)",
            oracle=lambda: x64 @ c64.t(), macs=macs, macs_fvcore=fvcore(), nbytes=nbytes,
            note="torch.mm of the same operands: the matmul roofline, not a distance",
            layout="row-major",
        )  # fmt: skip

    def triton_case() -> Prepared:
        try:
            from kernels import rbf_distance, rbf_loss
        except Exception as err:
            raise Unavailable(f"kernels.rbf cannot be imported: {err}") from err
        interp = interpreted(device)
        note = "fused Triton kernel"
        if interp:  # small odd shape: the interpreter runs Python per program
            bb, dd, kk = min(s.batch, 16), min(s.dim, 32), min(s.centers, 10)
            x64, c64, target = _rbf_inputs(bb, dd, kk, device)
            note = f"{INTERPRETER_NOTE}; checked on reduced shape B={bb} D={dd} K={kk}"
        else:
            x64, c64, target = data()[:3]
        x, c = x64.to(dtype), c64.to(dtype)
        if s.loss:
            xg, cg = x.clone().requires_grad_(True), c.clone().requires_grad_(True)

            def fn() -> tuple[torch.Tensor, ...]:
                loss = rbf_loss(xg, cg, target, RBF_J)
                return (loss.detach(), *torch.autograd.grad(loss, (xg, cg)))

            def expected() -> object:
                return _rbf_loss_oracle(x64, c64, target)
        else:

            def fn() -> torch.Tensor:
                return rbf_distance(x, c)

            def expected() -> object:
                return _distances64(x64, c64)

        return Prepared(
            fn=fn, backend="triton-interpreter" if interp else "triton", oracle=expected,
            macs=macs, macs_fvcore=fvcore(), nbytes=nbytes,
            mode="interpreter" if interp else "timed", note=note, layout="row-major",
        )  # fmt: skip

    cases = []
    for name in RBF_LOSS_HELPERS if s.loss else RBF_HELPERS:
        if name.startswith("compile") and device == "cpu" and not workload.compile_on_cpu:
            continue
        cases.append(Case(workload, name, dtype, helper_case(name)))
    if not s.loss:
        cases.append(Case(workload, "mm_same_size", dtype, mm_case))
    cases.append(Case(workload, "triton_fused", dtype, triton_case))
    return cases


# ---------------------------------------------------------------------------------------------
# Whole models


@functools.lru_cache(maxsize=32)
def _model_counts(name: str, batch: int) -> tuple[float, float]:
    """(formula MACs, fvcore MACs) of the model's forward pass at ``batch``: counted at batch 1
    on the CPU and scaled (every layer of these models is linear in the batch)."""
    try:
        from bench.counting import count_registered
    except ImportError:
        from models import registry

        spec = registry.get(name)
        x = torch.zeros(1, *spec.input_shape)
        return math.nan, batch * _fvcore_macs(spec.build().eval(), x)
    total = count_registered(name, batch=1).iloc[-1]
    return batch * float(total["macs_formula"]), batch * float(total["macs_fvcore"])


def _frozen(model: nn.Module, device: str, dtype: torch.dtype) -> nn.Module:
    model = model.eval().to(device, dtype)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def model_cases(workload: Workload, device: str, dtype: torch.dtype) -> list[Case]:
    from models import registry

    name = workload.id
    spec = registry.get(name)
    b = workload.batch
    elem = torch.empty((), dtype=dtype).element_size()

    @functools.lru_cache(maxsize=1)
    def base() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
        torch.manual_seed(0)
        model = spec.build().eval()
        x64 = torch.randn(b, *spec.input_shape, generator=_generator(), dtype=torch.float64)
        x64 = x64.to(device)
        with torch.no_grad():  # the float64 oracle runs on the device (fp64 is fast on an H200)
            expected = copy.deepcopy(model).to(device, torch.float64)(x64)
        return model, x64, expected

    def counts(model: nn.Module, x: torch.Tensor, out: torch.Tensor) -> tuple[float, float, float]:
        macs, fv = _model_counts(name, b)
        params = sum(p.numel() for p in model.parameters())
        return macs, fv, (params + x.numel() + out.numel()) * elem

    def prepared(model: nn.Module, backend: str, note: str, mode: str = "timed") -> Prepared:
        _, x64, expected = base()
        x = x64.to(device, dtype)
        runnable = _frozen(model, device, dtype)

        def fn():
            with torch.no_grad():
                return runnable(x)

        macs, fv, nbytes = counts(model, x64, expected)
        return Prepared(fn=fn, backend=backend, oracle=lambda: expected, macs=macs,
                        macs_fvcore=fv, nbytes=nbytes, mode=mode, note=note)  # fmt: skip

    def torch_case(naive: bool = False) -> Callable[[], Prepared]:
        def prepare() -> Prepared:
            note = "eager PyTorch, NCHW"
            if naive:
                note = f"{NAIVE_NOTE} on torch"
            return prepared(
                copy.deepcopy(base()[0]), _conv_backend(device), note, "naive" if naive else "timed"
            )

        return prepare

    def compile_case() -> Prepared:
        model = torch.compile(copy.deepcopy(base()[0]))
        return prepared(model, "inductor", "torch.compile(model), default mode")

    def triton_model(fused: bool) -> Callable[[], Prepared]:
        def prepare() -> Prepared:
            model = base()[0]
            macs, _ = _model_counts(name, b)
            interp = interpreted(device)
            if interp and not macs <= INTERPRETER_MODEL_MACS:
                raise Unavailable(
                    f"not run under the Triton interpreter: {macs:.3g} MACs would take minutes "
                    f"on CPU (limit {INTERPRETER_MODEL_MACS:.0e}); run on a GPU"
                )
            if fused:
                from models.mobilenet import fuse

                swapped = copy.deepcopy(model)
                out = fuse(swapped)
                candidate = out if out is not None else swapped
            else:
                torch.manual_seed(0)
                candidate = spec.build(backend="triton")
                candidate.load_state_dict(model.state_dict())
            mode, backend = ("interpreter", "triton-interpreter") if interp else ("timed", "triton")
            note = "dw->pw chains swapped by models.mobilenet.fuse" if fused else "backend='triton'"
            if interp:
                note = f"{INTERPRETER_NOTE}; full model at batch {b}"
            return prepared(candidate, backend, note, mode)

        return prepare

    cases = [Case(workload, "torch", dtype, torch_case())]
    if device == "cuda" or workload.compile_on_cpu:
        cases.append(Case(workload, "compile", dtype, compile_case))
    if spec.pair is not None:
        cases.append(Case(workload, "triton", dtype, triton_model(fused=False)))
    if name == "mobilenet_v2":
        cases.append(Case(workload, "fused", dtype, triton_model(fused=True)))
    if workload.naive_timer:
        cases.append(Case(workload, "naive_host_clock", dtype, torch_case(naive=True)))
    return cases


def cases_for(workload: Workload, device: str, dtype: torch.dtype) -> list[Case]:
    """Every provider that applies to ``workload`` on ``device`` in ``dtype``, unprepared."""
    if isinstance(workload.shape, DwsepShape):
        return dwsep_cases(workload, device, dtype)
    if isinstance(workload.shape, RbfShape):
        return rbf_cases(workload, device, dtype)
    if isinstance(workload.shape, ModelShape):
        return model_cases(workload, device, dtype)
    raise TypeError(f"unknown workload shape {type(workload.shape).__name__}")
