"""Shared test helpers: the dtype tolerance table and output poisoning.

tests/ is on sys.path under pytest (rootdir conftest, no package), so test modules import
``from tolerances import tolerance`` or ``from conftest import poison``.
"""

from __future__ import annotations

import pytest
import torch
from tolerances import TOLERANCES, poison, tolerance

# Before anything imports triton.language (torchvision and torch._dynamo do): _runtime sets
# TRITON_INTERPRET on CPU machines, and triton.language's own @jit helpers (tl.zeros, tl.sum,
# ...) are decorated for the interpreter only if it is set when they are imported.
from kernels import _runtime  # noqa: F401

__all__ = ["TOLERANCES", "poison", "poisoned_allocations", "tolerance"]


@pytest.fixture
def poisoned_allocations(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``torch.empty`` / ``torch.empty_like`` called from Python (the launchers' output
    allocations) return poisoned memory for the rest of the test, so an unwritten output element
    shows up as NaN instead of whatever the allocator handed back."""
    real_empty, real_empty_like = torch.empty, torch.empty_like

    def empty(*args, **kwargs):
        return poison(real_empty(*args, **kwargs))

    def empty_like(*args, **kwargs):
        return poison(real_empty_like(*args, **kwargs))

    monkeypatch.setattr(torch, "empty", empty)
    monkeypatch.setattr(torch, "empty_like", empty_like)
