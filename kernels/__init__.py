"""Triton kernels and their launchers: pure functions on tensors (no nn.Module here).

Attributes load lazily so ``import kernels`` neither imports Triton nor queries a device.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "dwsep_block": "kernels.dwsep",
    "rbf_distance": "kernels.rbf",
    "rbf_loss": "kernels.rbf",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'kernels' has no attribute {name!r}")
