"""Shared test helpers: the dtype tolerance table, output poisoning and a read-only folder.

tests/ is on sys.path under pytest (rootdir conftest, no package), so test modules import
``from tolerances import tolerance`` or ``from conftest import poison``.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import torch
from tolerances import TOLERANCES, poison, tolerance

# Before anything imports triton.language (torchvision and torch._dynamo do): _runtime sets
# TRITON_INTERPRET on CPU machines, and triton.language's own @jit helpers (tl.zeros, tl.sum,
# ...) are decorated for the interpreter only if it is set when they are imported.
from kernels import _runtime  # noqa: F401

__all__ = ["TOLERANCES", "poison", "poisoned_allocations", "read_only_dir", "tolerance"]


@pytest.fixture(scope="session", autouse=True)
def keops_cache(tmp_path_factory: pytest.TempPathFactory):
    """One KeOps build folder for the whole session (a formula compiles once, tens of seconds
    on two cores, whichever test asks first; subprocesses inherit it), outside the source tree
    and the user's cache."""
    folder = tmp_path_factory.mktemp("keops")
    before = os.environ.get("SEPBENCH_KEOPS_CACHE")
    os.environ["SEPBENCH_KEOPS_CACHE"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("SEPBENCH_KEOPS_CACHE", None)
    else:
        os.environ["SEPBENCH_KEOPS_CACHE"] = before


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


@pytest.fixture
def read_only_dir(tmp_path):
    """An empty folder nobody can write into, root included: mode 0555, and where root ignores
    modes the immutable attribute (chattr +i); skips where neither holds."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = False
    if os.geteuid() == 0:  # root writes through 0555
        chattr = shutil.which("chattr")
        made = chattr and subprocess.run([chattr, "+i", str(folder)], capture_output=True)
        immutable = bool(made) and made.returncode == 0
        if not immutable:
            folder.chmod(0o755)
            pytest.skip("running as root and chattr +i is not available: no read-only folder")
    yield folder
    if immutable:
        subprocess.run(["chattr", "-i", str(folder)], check=False)
    folder.chmod(0o755)
