"""torch.compile for the compile providers: one static graph per case, in a frame of its own.

Dynamo caches compiled graphs on the code object of the frame it compiles, at most
torch._dynamo.config.recompile_limit (8) per code object. Compiling a shared function (a
reference formula, or a model class's forward) for several shapes and dtypes would recompile it,
with dynamic=None the second shape as a dynamic graph, and past the limit the calls would run
eagerly without a word. Each StaticCompile compiles a fresh frame (its own code object) with
dynamic=False, so a case gets exactly one static graph; ``entries()`` reads Dynamo's cache of
that frame, so the runner can record (and refuse) anything else.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import torch

# Inductor in the report; tests may set "eager" to check the frames without compiling C++.
BACKEND = "inductor"
_serial = itertools.count()


class StaticCompile:
    """``torch.compile(fn, mode=mode, dynamic=False)`` in a frame named ``sepbench_<name>_<n>``,
    built on the first call (compiling costs seconds, and only the timed case pays it)."""

    def __init__(self, fn: Callable[..., Any], *, mode: str | None = None, name: str) -> None:
        def frame(*args: Any) -> Any:
            return fn(*args)

        tag = "".join(ch if ch.isalnum() else "_" for ch in name)
        frame.__code__ = frame.__code__.replace(co_name=f"sepbench_{tag}_{next(_serial)}")
        self.code = frame.__code__
        self.mode = mode
        self._frame = frame
        self._compiled: Callable[..., Any] | None = None

    def __call__(self, *args: Any) -> Any:
        if self._compiled is None:
            mode = self.mode if BACKEND == "inductor" else None
            self._compiled = torch.compile(self._frame, mode=mode, dynamic=False, backend=BACKEND)
        return self._compiled(*args)

    def entries(self) -> int:
        """How many compiled versions Dynamo holds for this frame: 1 for one static graph, 0
        when it ran eagerly, more when it recompiled."""
        lookup = getattr(torch._C._dynamo.eval_frame, "_debug_get_cache_entry_list", None)
        if lookup is None:  # private API: unknown on a torch without it
            return -1
        return len(lookup(self.code))


def graphs_compiled() -> int:
    """Dynamo's count of graphs compiled in this process so far (a delta per case is its
    compile_graphs: 1 for a whole graph, more where the code broke the graph)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])
