"""Triton kernels and their launchers: pure functions on tensors (no nn.Module here).

Attributes load lazily so ``import kernels`` does not import Triton.
"""

from __future__ import annotations

import importlib
from typing import Any

# First: TRITON_INTERPRET must be set before anything imports triton (torchvision can), or
# triton's own @jit helpers are built for the compiler and fail under the interpreter.
from kernels import _runtime  # noqa: F401

_EXPORTS = {
    "dwsep_block": "kernels.dwsep",
    "fold_batchnorm": "kernels.reference",
    "pack_dw_weight": "kernels.dwsep",
    "rbf_distance": "kernels.rbf",
    "rbf_loss": "kernels.rbf",
}

__all__ = ["dwsep_block", "fold_batchnorm", "pack_dw_weight", "rbf_distance", "rbf_loss"]
assert set(__all__) == set(_EXPORTS)  # one list of names, spelled out for readers and linters


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'kernels' has no attribute {name!r}")
