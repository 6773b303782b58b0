"""Choose compiled Triton (CUDA present) or the Triton interpreter (CPU only).

TRITON_INTERPRET is read when ``@triton.jit`` decorates a function, so every kernel module
imports this module before it defines a kernel. A user who set TRITON_INTERPRET keeps it.
"""

from __future__ import annotations

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

#: True when kernels run under the Triton interpreter: correct results, no meaningful speed.
INTERPRET: bool = os.environ.get("TRITON_INTERPRET", "0") == "1"


def kernel_device_ok(t: torch.Tensor) -> bool:
    """Whether a tensor lives where the kernels can run: CUDA compiled, CPU interpreted."""
    return t.device.type == ("cpu" if INTERPRET else "cuda")


def accepted_device() -> str:
    return "cpu (Triton interpreter)" if INTERPRET else "cuda"


def check_device(name: str, t: torch.Tensor) -> None:
    """Raise a clear error when ``t`` is on a device the kernels cannot run on."""
    if not kernel_device_ok(t):
        raise ValueError(
            f"{name} is on {t.device}; the Triton kernels here accept tensors on "
            f"{accepted_device()} (TRITON_INTERPRET={os.environ.get('TRITON_INTERPRET', '0')})"
        )
