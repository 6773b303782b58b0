"""Forward passes that record what each module of a model did: its calls (input and output
shapes); every torch function its own forward ran outside a covered leaf, priced by a formula
or listed as uncounted; the ATen operators FlopCounterMode counted 0 for; torch's count per
module and per functional call; and, in a separate pass (its patches of torch.nn.functional
would otherwise see our recorder's calls), ptflops' count per module and per source. Nothing
here depends on fvcore (see counters.fvcore_analysis).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from bench.counting import aten, functional, layers

Shape = tuple[int, ...]

# Elementwise arithmetic worth naming in a note ("residual add"), 0 MACs by formulas rule (d).
NAMED_MAPS = {
    *("add", "add_", "__add__", "__iadd__", "__radd__", "mul", "mul_", "__mul__", "__imul__"),
    *("__rmul__", "sub", "__sub__", "div", "__truediv__", "cat"),
}


@dataclass
class OpTally:
    """The calls of one torch function (by note label) in one module's own forward."""

    calls: int = 0
    parts: Counter = field(default_factory=Counter)  # formula category -> MACs
    in_elements: int = 0  # elements of the first tensor argument, summed over the calls
    torch_flops: int = 0  # FlopCounterMode's FLOPs during these calls
    zero_in_torch: set[str] = field(default_factory=set)  # ATen ops it counted 0 for
    uncounted: set[str] = field(default_factory=set)  # what no formula prices (ATen ops)

    @property
    def macs(self) -> int:
        return int(sum(self.parts.values()))


@dataclass
class Probe:
    """What one forward pass saw. Module names are named_modules() names ("" is the root)."""

    finished: list[str] = field(default_factory=list)  # first call of each module, in order
    calls: dict[str, list[tuple[Shape | None, Shape | None]]] = field(
        default_factory=lambda: defaultdict(list)
    )  # (first tensor input, first tensor output) per call
    ops: dict[str, dict[str, OpTally]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(OpTally))
    )  # module -> label -> its own forward's calls of that function
    zero_in_torch: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    op_counted: set[str] = field(default_factory=set)  # leaves counted from their ops
    param_users: dict[str, str] = field(default_factory=dict)  # parameter name -> module name
    torch_own: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # per module,
    # its calls' FLOPs less those of the modules they called (shared modules included)
    torch_total: int = 0


def _first_shape(value: object) -> Shape | None:
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, (tuple, list)):
        for v in value:
            shape = _first_shape(v)
            if shape is not None:
                return shape
    return None


@contextlib.contextmanager
def _scopes(
    model: nn.Module, probe: Probe | None = None, flops: Callable[[], int] | None = None
) -> Iterator[list[str]]:
    """Hooks on every module keeping a stack of the modules running now (innermost last); with
    a probe, each finished call's shapes are recorded in it, and with ``flops`` (a running
    total) each call's own share of it: what ran in the call less what its submodules' calls
    ran. Measured per call, a module shared between parents (CoaT's position encodings) is
    charged to itself, never to whichever parent FlopCounterMode's tracker names it under."""
    stack: list[str] = []
    started: list[tuple[int, list[int]]] = []  # per running call: flops at entry, its children's
    handles = []

    def enter(name: str):
        def pre(_m: nn.Module, _inp: object) -> None:
            stack.append(name)
            if flops is not None:
                started.append((flops(), [0]))

        return pre

    def leave(name: str):
        def post(_m: nn.Module, inp: object, out: object) -> None:
            if stack and stack[-1] == name:
                stack.pop()
                if flops is not None and started:
                    start, children = started.pop()
                    spent = flops() - start
                    probe.torch_own[name] += spent - children[0]
                    if started:
                        started[-1][1][0] += spent
            if probe is not None:
                if name not in probe.calls:
                    probe.finished.append(name)
                probe.calls[name].append((_first_shape(inp), _first_shape(out)))

        return post

    for name, m in model.named_modules():
        handles.append(m.register_forward_pre_hook(enter(name)))
        handles.append(m.register_forward_hook(leave(name)))
    try:
        yield stack
    finally:
        for h in handles:
            h.remove()


def _parameters_in(args: tuple, kwargs: dict) -> Iterator[nn.Parameter]:
    for value in (*args, *kwargs.values()):
        items = value if isinstance(value, (list, tuple)) else (value,)
        yield from (v for v in items if isinstance(v, nn.Parameter))


def _global_flops(counter: FlopCounterMode) -> int:
    return int(sum(counter.flop_counts["Global"].values()))


class _AtenRecorder(TorchDispatchMode):
    """Sees every ATen operator (above FlopCounterMode, which it then calls): notes which ones
    FlopCounterMode counted 0 for, per innermost module, and keeps the calls of the torch
    function being recorded (``calls`` is a list only while the recorder below runs one)."""

    def __init__(self, probe: Probe, stack: list[str], counter: FlopCounterMode) -> None:
        super().__init__()
        self.probe, self.stack, self.counter = probe, stack, counter
        self.calls: list[tuple] | None = None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not isinstance(func, torch._ops.OpOverload) or aten.is_free(func):
            out = func(*args, **kwargs)
            zero = False
        else:
            before = _global_flops(self.counter)
            out = func(*args, **kwargs)
            zero = _global_flops(self.counter) == before
            if zero:
                self.probe.zero_in_torch[self.stack[-1] if self.stack else ""].add(aten.name(func))
        if self.calls is not None and isinstance(func, torch._ops.OpOverload):
            self.calls.append((func, args, kwargs, out, zero))
        return out


class _OpRecorder(TorchFunctionMode):
    """Prices each torch function call of a module's own forward (the innermost running module,
    unless it is a covered leaf, whose rule counts it): by its formula in
    bench.counting.functional, else by the ATen operators it ran; what neither prices is
    recorded as uncounted."""

    def __init__(
        self,
        probe: Probe,
        stack: list[str],
        covered: set[str],
        params: dict[int, str],
        counter: FlopCounterMode,
        dispatch: _AtenRecorder,
    ) -> None:
        super().__init__()
        self.probe, self.stack, self.covered, self.params = probe, stack, covered, params
        self.counter, self.dispatch = counter, dispatch

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not self.stack or self.stack[-1] in self.covered or self.dispatch.calls is not None:
            return func(*args, **kwargs)
        owner = self.stack[-1]
        for p in _parameters_in(args, kwargs):
            if id(p) in self.params:
                self.probe.param_users.setdefault(self.params[id(p)], owner)
        before = _global_flops(self.counter)
        self.dispatch.calls = []
        try:
            out = func(*args, **kwargs)
        finally:
            calls, self.dispatch.calls = self.dispatch.calls, None
        flops = _global_flops(self.counter) - before
        uncounted: set[str] = set()
        if func in functional.FUNCTIONAL:
            parts = functional.count(func, args, kwargs, out)
            if parts is None:
                parts, uncounted = {}, {"its arguments fit no formula"}
        else:
            parts = Counter()
            for op, a, k, o, _ in calls:
                cost = aten.cost(op, a, k, o)
                if cost is None:
                    uncounted.add(aten.name(op))
                else:
                    parts.update(cost)
        name = getattr(func, "__name__", "")
        if not (any(parts.values()) or uncounted or flops or name in NAMED_MAPS):
            return out
        tally = self.probe.ops[owner][functional.op_name(func)]
        tally.calls += 1
        tally.parts.update(parts)
        first = next((a for a in args if isinstance(a, torch.Tensor)), None)
        tally.in_elements += first.numel() if first is not None else 0
        tally.torch_flops += flops
        tally.zero_in_torch.update(aten.name(op) for op, *_, zero in calls if zero)
        tally.uncounted.update(uncounted)
        return out


@contextlib.contextmanager
def _frozen(model: nn.Module) -> Iterator[None]:
    """Parameters without requires_grad for the pass: FlopCounterMode's module tracker hooks
    the backward of any input that requires grad and fails (torch 2.14) on a view of a
    parameter made under no_grad (timm's attention-pool latents: 'Expected gradient function
    to be set')."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def probe(model: nn.Module, x: torch.Tensor) -> Probe:
    """One no-grad pass of ``model(x)`` recording shapes, functional ops and torch's counts, on
    any device, the meta device included (ptflops_counts is a separate pass)."""
    result = Probe()
    leaves = {n: m for n, m in model.named_modules() if not any(m.children())}
    covered = {n for n, m in leaves.items() if layers.covers(m)}
    result.op_counted = set(leaves) - covered
    params = {id(p): n for n, p in model.named_parameters()}
    counter = FlopCounterMode(display=False)
    with (
        _frozen(model),
        torch.no_grad(),
        _scopes(model, result, lambda: _global_flops(counter)) as stack,
        counter,
        _AtenRecorder(result, stack, counter) as dispatch,
        _OpRecorder(result, stack, covered, params, counter, dispatch),
    ):
        model(x)
    result.torch_total = _global_flops(counter)
    return result


def ptflops_available() -> bool:
    return importlib.util.find_spec("ptflops") is not None


HOOK = "hook"  # the source name of ptflops' module hook in ptflops_counts


def ptflops_counts(model: nn.Module, x: torch.Tensor) -> dict[str, dict[str, int]] | None:
    """ptflops' MACs per module (its own part, children not included) and per source: its
    module hook (``HOOK``, matched by exact type as ptflops does) and each of its patched
    functional and tensor ops (count_functional=True), charged to the innermost running module.
    None where ptflops is not installed (pip install 'sepbench[counters]')."""
    if not ptflops_available():
        return None
    from ptflops import pytorch_engine, pytorch_ops

    own: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    hooked: dict[str, nn.Module] = {}
    with _scopes(model) as stack:

        class Collector(list):  # ptflops' torch_function_wrapper appends each call's count here
            def append(self, flops: object) -> None:
                wrapper = sys._getframe(1).f_locals.get("self")
                op = getattr(wrapper, "op", None)
                name = getattr(op, "__name__", "")
                if getattr(F, name, None) is wrapper:  # F.relu is the wrapper while patched
                    label = f"F.{name}"
                else:
                    label = functional.op_name(op) if op is not None else "a patched op"
                own[stack[-1] if stack else ""][label] += int(flops)

        handles = []
        for name, m in model.named_modules():
            hook = pytorch_ops.MODULES_MAPPING.get(type(m))
            if hook is not None:
                m.__flops__ = 0
                hooked[name] = m
                handles.append(m.register_forward_hook(hook))
        pytorch_engine.patch_functional(Collector())
        pytorch_engine.patch_tensor_ops(Collector())
        try:
            with torch.no_grad():
                model(x)
        finally:
            pytorch_engine.unpatch_functional()
            pytorch_engine.unpatch_tensor_ops()
            for h in handles:
                h.remove()
            for name, m in hooked.items():
                own[name][HOOK] += int(m.__dict__.pop("__flops__", 0))
    return {k: dict(v) for k, v in own.items()}


@functools.cache
def ptflops_patched() -> frozenset[str]:
    """The labels (functional.op_name) of the functions ptflops' count_functional replaces:
    read off torch after its own patch_functional / patch_tensor_ops, then undone (F.linear is
    in its mapping but not patched)."""
    from ptflops import pytorch_engine

    pytorch_engine.patch_functional([])
    pytorch_engine.patch_tensor_ops([])
    try:
        found = set()
        for owner, prefix in ((F, "F"), (torch, "torch"), (torch.Tensor, "Tensor")):
            for name, value in vars(owner).items():
                if isinstance(value, pytorch_engine.torch_function_wrapper) or (
                    callable(value) and hasattr(value, "op") and owner is torch.Tensor
                ):
                    found.add(f"{prefix}.{name}")
    finally:
        pytorch_engine.unpatch_functional()
        pytorch_engine.unpatch_tensor_ops()
    return frozenset(found)


def ptflops_hooked_types() -> tuple[type, ...]:
    """The module types ptflops has a hook for (it matches them exactly: type(m) is key)."""
    from ptflops import pytorch_ops

    return tuple(pytorch_ops.MODULES_MAPPING)
