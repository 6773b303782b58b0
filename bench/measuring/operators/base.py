"""What every operator shares: the Operator with its provider table, the Setting a provider is
prepared in, the Prepared call the runner times, and the check of its result against float64.

An operator is one workload kind (dw-sep block, RBF distance, RBF loss, whole model). Each of its
providers is one decorated function in the operator's module:

    @DWSEP.provider("eager_nchw", "eager", document=True, times="...")
    def eager_nchw(s: DwsepSetting) -> Prepared:
        ...

The function receives the Setting (one workload on one device in one dtype, its inputs built
once and shared by every provider) and returns what to time. The runner, the report, the claims
and the tests read names and roles from these declarations, never from string literals of their
own.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from bench.measuring.operators.compiling import StaticCompile
from bench.measuring.suites import Workload

# Provider families: what kind of implementation a provider is (plots group by it, and only the
# families in COMPUTES_WORKLOAD are alternatives to one another).
FAMILIES: dict[str, str] = {
    "standard": "the standard (non-separable) convolution: what the separable form replaces",
    "part": "one half of the separable block on its own",
    "eager": "PyTorch eager",
    "compile": "torch.compile (Inductor)",
    "fused": "the fused Triton kernels",
    "peer": "another runtime a user would pick instead: ONNX Runtime, OpenVINO, KeOps, faiss",
    "roofline": "the same operands through the plain library primitive: a roof, not the workload",
    "methodology": "document 001's host-clock timing of another provider: a method, not a backend",
}
COMPUTES_WORKLOAD = ("eager", "compile", "fused", "peer")
LAYOUTS = ("nchw", "nhwc", "row-major")

# Text of the note of every row whose kernel ran under the Triton interpreter.
INTERPRETER_NOTE = "interpreter: correctness only"
NAIVE_NOTE = "document 001's method (time.time() around 100 calls, no warm-up, no sync)"


class Unavailable(RuntimeError):
    """The provider cannot run here (missing module, helper or device support). ``lasting``:
    the reason holds for this code on this device (a size limit), so a resumed run of the same
    code does not try again; a missing module may be installed meanwhile, so it is not lasting."""

    def __init__(self, message: str, *, lasting: bool = False) -> None:
        super().__init__(message)
        self.lasting = lasting


@dataclass
class Prepared:
    """A provider ready to run: ``fn()`` computes the workload with inputs already bound."""

    fn: Callable[[], object]
    backend: str  # the library that really ran: "cudnn", "oneDNN", "inductor", "triton", ...
    oracle: Callable[[], object] | None  # float64 result to compare with, or None
    macs: float
    macs_fvcore: float
    nbytes: float
    mode: str = "timed"  # "timed", "naive" (host clock) or "interpreter" (no latency)
    note: str = ""
    # the arithmetic it runs on (timing.PRECISIONS); "" means its dtype's own (fp16, bf16, fp32)
    precision: str = ""
    compiled: StaticCompile | None = None  # torch.compile rows: the frame whose cache is read


class Setting:
    """One workload on one device in one dtype: what a provider function receives.

    Each operator subclasses it with its inputs (a dataclass, built from the workload with seed 0
    unless given) and ``prepared(fn, **fields)``, the one builder of its Prepared calls (cost and
    oracle filled in). Cached properties make the providers of one setting share its inputs.
    """

    def __init__(
        self, workload: Workload, device: str, dtype: torch.dtype, inputs: Any = None
    ) -> None:
        self.workload, self.device, self.dtype = workload, device, dtype
        if inputs is not None:  # tests hand in their own data (far from the origin, say)
            self.__dict__["inputs"] = inputs

    @property
    def shape(self) -> Any:
        return self.workload.shape

    @property
    def batch(self) -> int:
        return self.workload.batch

    @property
    def elem(self) -> int:
        return torch.empty((), dtype=self.dtype).element_size()

    @property
    def interpreted(self) -> bool:
        """Whether the Triton kernels run under the interpreter here (CPU: always)."""
        from kernels import _runtime

        return self.device == "cpu" or _runtime.INTERPRET

    @property
    def elements(self) -> float:
        """Elements of the workload's inputs and outputs (its cost model's bytes / element
        size): what the memory estimate scales."""
        return self.nbytes / self.elem

    def working_bytes(self) -> float:
        """Device memory a provider needs at most, by default: its inputs and outputs in the
        setting's dtype, an intermediate as large again, and the float64 oracle's copy of all of
        them (computed while the provider's result is held). Providers that materialise more
        declare ``memory=`` themselves."""
        return self.elements * (2 * self.elem + 2 * 8)

    def kernel_fields(self, note: str) -> dict[str, str]:
        """backend, mode and note of a fused-kernel row: timed on a GPU, checked only (on the
        reduced shape ``note`` describes) under the interpreter."""
        if self.interpreted:
            return {"backend": "triton-interpreter", "mode": "interpreter", "note": note}
        return {"backend": "triton", "mode": "timed", "note": note}


def _always(workload: Workload, device: str) -> bool:
    return True


def _enabled() -> bool | str:
    return True


def installed(*modules: str, extra: str = "peers") -> Callable[[], bool | str]:
    """``enabled=`` for a provider built on optional packages: True when each imports here,
    else the reason it cannot run (its rows are then `unavailable`, saying so)."""

    def check() -> bool | str:
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        if not missing:
            return True
        return f"{', '.join(missing)} not installed (pip install 'sepbench[{extra}]')"

    return check


@dataclass(frozen=True)
class Provider:
    """One provider of an operator: how to prepare it and what it is."""

    name: str
    family: str  # a key of FAMILIES
    prepare: Callable[[Any], Prepared] = field(compare=False, repr=False)
    times: str  # what one timed call computes, in a line (README, summary, row notes)
    layout: str = "nchw"  # the input layout it is timed on: a LAYOUTS entry
    baseline: bool = False  # the operator's speed-up reference
    document: bool = False  # the documents' own way of computing the workload
    wraps: str | None = None  # methodology rows: the provider whose function they time
    # whether it applies to a workload on a device (no row at all where it does not)
    applies: Callable[[Workload, str], bool] = field(default=_always, compare=False, repr=False)
    # whether it can run here: True, or the reason not (an `unavailable` row saying it)
    enabled: Callable[[], bool | str] = field(default=_enabled, compare=False, repr=False)
    # device bytes it needs at most (before anything is allocated); None: Setting.working_bytes
    memory: Callable[[Any], float] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"provider {self.name!r}: unknown family {self.family!r}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"provider {self.name!r}: unknown layout {self.layout!r}")

    def memory_bytes(self, setting: Setting) -> float:
        """What it needs on the device for ``setting``, from the operator's cost model."""
        return self.memory(setting) if self.memory is not None else setting.working_bytes()

    def ready(self, setting: Setting) -> Prepared:
        """prepare(setting), or Unavailable with the reason ``enabled`` gave."""
        ok = self.enabled()
        if ok is not True:
            raise Unavailable(str(ok) if ok else f"{self.name} is not enabled here")
        return self.prepare(setting)


@dataclass(frozen=True)
class Case:
    """One provider of one workload in one dtype, not yet prepared (the runner's unit)."""

    workload: Workload
    spec: Provider
    dtype: torch.dtype
    prepare: Callable[[], Prepared]
    setting: Setting | None = field(default=None, compare=False, repr=False)

    @property
    def provider(self) -> str:
        return self.spec.name


class Operator:
    """A workload kind: its shape type, its Setting and its providers, declared with
    ``@OPERATOR.provider(name, family, times=..., ...)`` on each prepare function."""

    def __init__(
        self, kind: str, shape_type: type, setting: type[Setting], *, title: str, description: str
    ) -> None:
        self.kind, self.shape_type, self.setting = kind, shape_type, setting
        self.title, self.description = title, description
        self.providers: list[Provider] = []

    def __repr__(self) -> str:
        return f"Operator({self.kind!r}, {len(self.providers)} providers)"

    def provider(
        self,
        name: str,
        family: str,
        *,
        times: str,
        layout: str = "nchw",
        baseline: bool = False,
        document: bool = False,
        wraps: str | None = None,
        applies: Callable[[Workload, str], bool] | None = None,
        enabled: Callable[[], bool | str] | None = None,
        memory: Callable[[Any], float] | None = None,
    ) -> Callable[[Callable[[Any], Prepared]], Callable[[Any], Prepared]]:
        """Declare the decorated function (Setting -> Prepared) as provider ``name``."""

        def register(prepare: Callable[[Any], Prepared]) -> Callable[[Any], Prepared]:
            if any(p.name == name for p in self.providers):
                raise ValueError(f"operator {self.kind}: provider {name!r} declared twice")
            if baseline and any(p.baseline for p in self.providers):
                raise ValueError(f"operator {self.kind}: a second baseline {name!r}")
            self.providers.append(
                Provider(
                    name,
                    family,
                    prepare,
                    times,
                    layout=layout,
                    baseline=baseline,
                    document=document,
                    wraps=wraps,
                    applies=applies or _always,
                    enabled=enabled or _enabled,
                    memory=memory,
                )
            )
            return prepare

        return register

    def get(self, name: str) -> Provider:
        for p in self.providers:
            if p.name == name:
                return p
        raise KeyError(f"operator {self.kind} has no provider {name!r}: {self.names()}")

    def names(self, *families: str) -> list[str]:
        """Provider names in declaration order, only those of ``families`` when given."""
        return [p.name for p in self.providers if not families or p.family in families]

    @property
    def baseline(self) -> Provider:
        found = [p for p in self.providers if p.baseline]
        if len(found) != 1:
            raise ValueError(f"operator {self.kind}: {len(found)} baselines, one is needed")
        return found[0]

    @property
    def document(self) -> Provider:
        """The documents' own implementation (the baseline when no other is marked)."""
        return next((p for p in self.providers if p.document), self.baseline)

    def cases(self, workload: Workload, device: str, dtype: torch.dtype) -> list[Case]:
        """Every provider that applies to ``workload`` on ``device``, sharing one setting."""
        setting = self.setting(workload, device, dtype)
        return [
            Case(workload, p, dtype, functools.partial(p.ready, setting), setting)
            for p in self.providers
            if p.applies(workload, device)
        ]

    def prepare(
        self, name: str, workload: Workload, device: str, dtype: torch.dtype, inputs: Any = None
    ) -> Prepared:
        """Provider ``name`` prepared on ``workload`` (with ``inputs`` instead of the seeded
        ones when given): what the tests call to check a provider against its oracle."""
        return self.get(name).ready(self.setting(workload, device, dtype, inputs))


def kernel(name: str) -> Callable:
    """``kernels.<name>``, or Unavailable saying why it cannot be imported here."""
    try:
        import kernels

        return getattr(kernels, name)
    except Exception as err:
        raise Unavailable(f"kernels.{name} cannot be imported: {err}") from err


def compiles_here(workload: Workload, device: str) -> bool:
    """torch.compile providers: always on GPU; on CPU only where the workload asks (Inductor
    builds C++ per shape there, 15-20 s each)."""
    return device == "cuda" or workload.compile_on_cpu


def naive_timer_wanted(workload: Workload, device: str) -> bool:
    return workload.naive_timer


def conv_precision(device: str, dtype: torch.dtype) -> str:
    """The arithmetic a convolution runs in: float32 on a GPU takes TF32 tensor cores when
    cuDNN's allow_tf32 is on (PyTorch's default); 16-bit dtypes their own tensor cores."""
    if dtype == torch.float32:
        return "tf32" if device == "cuda" and torch.backends.cudnn.allow_tf32 else "fp32"
    return {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dtype, "")


def matmul_precision(device: str, dtype: torch.dtype) -> str:
    """The arithmetic torch.mm runs in: TF32 for float32 only when cuBLAS's allow_tf32 is on
    (off by default)."""
    if dtype == torch.float32:
        tf32 = device == "cuda" and torch.backends.cuda.matmul.allow_tf32
        return "tf32" if tf32 else "fp32"
    return conv_precision(device, dtype)


def conv_backend(device: str, depthwise: bool = False) -> str:
    """The library an eager convolution runs on: cuDNN (or ATen's own depthwise kernel) on a
    GPU, oneDNN on a CPU build that has it."""
    if device == "cuda":
        return "cudnn/native-depthwise" if depthwise else "cudnn"
    return "oneDNN" if torch.backends.mkldnn.is_available() else "aten-cpu"


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


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
