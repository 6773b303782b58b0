"""Forward passes that record what each module of a model did: its calls (input and output
shapes), the functional ops its own forward ran outside any child module (with their formula
MACs and the parameters they used), torch.utils.flop_counter's count per module and, in a
separate pass (its patches of torch.nn.functional would otherwise see our recorder's calls),
ptflops' count per module. Nothing here depends on fvcore (see counters.fvcore_analysis).
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode

from bench.counting import layers

Shape = tuple[int, ...]

# Elementwise arithmetic worth naming in a note ("residual add"), 0 MACs by formulas rule (d).
_NAMED_MAPS = {
    "add",
    "add_",
    "__add__",
    "__iadd__",
    "__radd__",
    "mul",
    "mul_",
    "__mul__",
    "__imul__",
    "__rmul__",
    "sub",
    "__sub__",
    "div",
    "__truediv__",
    "cat",
}


@dataclass
class Probe:
    """What one forward pass saw. Module names are named_modules() names ("" is the root)."""

    finished: list[str] = field(default_factory=list)  # first call of each module, in order
    calls: dict[str, list[tuple[Shape | None, Shape | None]]] = field(
        default_factory=lambda: defaultdict(list)
    )  # (first tensor input, first tensor output) per call
    own_ops: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    own_macs: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    own_reads: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # of own_macs
    unfit_ops: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    param_users: dict[str, str] = field(default_factory=dict)  # parameter name -> module name
    torch_flops: dict[str, int] = field(default_factory=dict)  # per module, children included
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
def _scopes(model: nn.Module, probe: Probe | None = None) -> Iterator[list[str]]:
    """Hooks on every module keeping a stack of the modules running now (innermost last); with
    a probe, each finished call's shapes are recorded in it."""
    stack: list[str] = []
    handles = []

    def enter(name: str):
        def pre(_m: nn.Module, _inp: object) -> None:
            stack.append(name)

        return pre

    def leave(name: str):
        def post(_m: nn.Module, inp: object, out: object) -> None:
            if stack and stack[-1] == name:
                stack.pop()
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


class _OpRecorder(TorchFunctionMode):
    """Attributes each torch function call to the innermost running module, unless that module
    is a leaf whose own formula already covers it (a Conv2d's F.conv2d)."""

    def __init__(
        self, probe: Probe, stack: list[str], covered: set[str], params: dict[int, str]
    ) -> None:
        super().__init__()
        self.probe, self.stack, self.covered, self.params = probe, stack, covered, params

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if not self.stack or self.stack[-1] in self.covered:
            return out
        owner = self.stack[-1]
        for p in _parameters_in(args, kwargs):
            if id(p) in self.params:
                self.probe.param_users.setdefault(self.params[id(p)], owner)
        name = getattr(func, "__name__", "")
        if func in layers.FUNCTIONAL or name in _NAMED_MAPS:
            label = layers.op_name(func)
            self.probe.own_ops[owner][label] += 1
            counted = layers.count_functional(func, args, kwargs, out)
            if counted is None:
                self.probe.unfit_ops[owner].add(label)
            else:
                self.probe.own_macs[owner] += counted[0]
                self.probe.own_reads[owner] += counted[1]
        return out


def probe(model: nn.Module, x: torch.Tensor) -> Probe:
    """One no-grad pass of ``model(x)`` recording shapes, functional ops and torch's counts, on
    any device, the meta device included (ptflops_counts is a separate pass)."""
    result = Probe()
    covered = {n for n, m in model.named_modules() if not any(m.children()) and layers.has_rule(m)}
    root = type(model).__name__
    with (
        torch.no_grad(),
        _scopes(model, result) as stack,
        FlopCounterMode(display=False) as counter,
        _OpRecorder(result, stack, covered, {id(p): n for n, p in model.named_parameters()}),
    ):
        model(x)
    flops = {k: int(sum(v.values())) for k, v in counter.get_flop_counts().items()}
    result.torch_total = flops.get("Global", 0)
    for name, _ in model.named_modules():
        key = f"{root}.{name}" if name else root
        if key in flops:
            result.torch_flops[name] = flops[key]
    return result


def ptflops_available() -> bool:
    return importlib.util.find_spec("ptflops") is not None


def ptflops_counts(model: nn.Module, x: torch.Tensor) -> dict[str, int] | None:
    """ptflops' MACs per module (its own part, children not included) with its defaults: the
    module hooks of its pytorch backend plus its patched functional and tensor ops
    (count_functional=True), each functional call charged to the innermost running module.
    None where ptflops is not installed (pip install 'sepbench[counters]')."""
    if not ptflops_available():
        return None
    from ptflops import pytorch_engine, pytorch_ops

    own: dict[str, int] = defaultdict(int)
    hooked: dict[str, nn.Module] = {}
    with _scopes(model) as stack:

        class Collector(list):  # ptflops appends each functional op's count here
            def append(self, flops: object) -> None:
                own[stack[-1] if stack else ""] += int(flops)

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
                own[name] += int(m.__dict__.pop("__flops__", 0))
    return dict(own)
