"""What every operator shares: the provider table row, the setting a provider is prepared in,
the prepared provider the runner times, and the check of its result against float64.

An operator (one per workload kind: dw-sep block, RBF distance, RBF loss, whole model) owns its
providers as rows of one table; the runner, the report, the claims and the tests read names and
roles from those rows, never from string literals of their own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from bench.measuring.suites import Workload

# Provider families: what kind of implementation a provider is (plots group by it, and only the
# families in COMPUTES_WORKLOAD are alternatives to one another).
FAMILIES: dict[str, str] = {
    "standard": "the standard (non-separable) convolution: what the separable form replaces",
    "part": "one half of the separable block on its own",
    "eager": "PyTorch eager",
    "compile": "torch.compile (Inductor)",
    "fused": "the fused Triton kernels",
    "roofline": "the same operands through the plain library primitive: a roof, not the workload",
    "methodology": "document 001's host-clock timing of another provider: a method, not a backend",
}
COMPUTES_WORKLOAD = ("eager", "compile", "fused")

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


@dataclass
class Setting:
    """One workload on one device in one dtype: what a provider's ``prepare`` receives.

    Operators subclass it with cached properties (inputs, baselines, costs), so the cases of one
    setting build their inputs once and share them.
    """

    workload: Workload
    device: str
    dtype: torch.dtype

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

    def kernel_fields(self, note: str) -> dict[str, str]:
        """backend, mode and note of a fused-kernel row: timed on a GPU, checked only (on the
        reduced shape ``note`` describes) under the interpreter."""
        if self.interpreted:
            return {"backend": "triton-interpreter", "mode": "interpreter", "note": note}
        return {"backend": "triton", "mode": "timed", "note": note}


def _always(workload: Workload, device: str) -> bool:
    return True


@dataclass(frozen=True)
class Provider:
    """One row of an operator's provider table."""

    name: str
    family: str  # a key of FAMILIES
    prepare: Callable[[Any], Prepared] = field(compare=False, repr=False)
    times: str  # what one timed call computes, in a line (README, summary, row notes)
    layout: str = "nchw"  # the input layout it is timed on: "nchw", "nhwc" or "row-major"
    baseline: bool = False  # the operator's speed-up reference
    document: bool = False  # the documents' own way of computing the workload
    wraps: str | None = None  # methodology rows: the provider whose function they time
    applies: Callable[[Workload, str], bool] = field(default=_always, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"provider {self.name!r}: unknown family {self.family!r}")


@dataclass(frozen=True)
class Case:
    """One provider of one workload in one dtype, not yet prepared."""

    workload: Workload
    spec: Provider
    dtype: torch.dtype
    prepare: Callable[[], Prepared]

    @property
    def provider(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class Operator:
    """A workload kind: its input shape type, its setting (inputs, oracle, cost) and providers."""

    kind: str
    shape_type: type
    setting: type[Setting]
    providers: tuple[Provider, ...]
    description: str
    title: str = ""  # a few words for plot titles and tables ("dw-sep block")

    def __post_init__(self) -> None:
        names = [p.name for p in self.providers]
        if len(set(names)) != len(names):
            raise ValueError(f"operator {self.kind}: provider names repeat: {names}")
        if sum(p.baseline for p in self.providers) != 1:
            raise ValueError(f"operator {self.kind}: exactly one provider must be the baseline")

    def provider(self, name: str) -> Provider:
        for p in self.providers:
            if p.name == name:
                return p
        raise KeyError(f"operator {self.kind} has no provider {name!r}: {self.names()}")

    def names(self, *families: str) -> list[str]:
        """Provider names in table order, only those of ``families`` when given."""
        return [p.name for p in self.providers if not families or p.family in families]

    @property
    def baseline(self) -> Provider:
        return next(p for p in self.providers if p.baseline)

    @property
    def document(self) -> Provider:
        """The documents' own implementation (the baseline when no other is marked)."""
        return next((p for p in self.providers if p.document), self.baseline)

    def cases(self, workload: Workload, device: str, dtype: torch.dtype) -> list[Case]:
        """Every provider that applies to ``workload`` on ``device``, sharing one setting."""
        setting = self.setting(workload, device, dtype)
        return [
            Case(workload, p, dtype, functools.partial(p.prepare, setting))
            for p in self.providers
            if p.applies(workload, device)
        ]


def registrar(table: list[Provider]) -> Callable[..., Callable]:
    """A decorator factory that appends a Provider row to ``table`` for the decorated prepare
    function: ``@provider("name", "family", times=..., ...)``."""

    def provider(name: str, family: str, **spec: Any) -> Callable:
        def register(prepare: Callable[[Any], Prepared]) -> Callable[[Any], Prepared]:
            table.append(Provider(name, family, prepare, **spec))
            return prepare

        return register

    return provider


def kernel(name: str) -> Callable:
    """``kernels.<name>``, or Unavailable saying why it cannot be imported here."""
    try:
        import kernels

        return getattr(kernels, name)
    except Exception as err:
        raise Unavailable(f"kernels.{name} cannot be imported: {err}") from err


def library_rows(
    table: list[Provider],
    prepare: Callable[..., Prepared],
    rows: tuple[tuple[str, str, str, str], ...],
    layout: str,
) -> None:
    """Append a Provider per (name, family, backend, times) row, prepared by
    ``prepare(setting, name=..., backend=...)``; the first row is the baseline and the documents'
    own form; compile rows run only where compiles_here."""
    for i, (name, family, backend, times) in enumerate(rows):
        applies = {"applies": compiles_here} if family == "compile" else {}
        table.append(
            Provider(
                name,
                family,
                functools.partial(prepare, name=name, backend=backend),
                times,
                layout=layout,
                baseline=i == 0,
                document=i == 0,
                **applies,
            )
        )


def compiles_here(workload: Workload, device: str) -> bool:
    """torch.compile providers: always on GPU; on CPU only where the workload asks (Inductor
    builds C++ per shape there, 15-20 s each)."""
    return device == "cuda" or workload.compile_on_cpu


def naive_timer_wanted(workload: Workload, device: str) -> bool:
    return workload.naive_timer


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
