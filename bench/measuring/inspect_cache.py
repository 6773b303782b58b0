"""The compiled figures a CPU report adds, cached whole per set of launches.

kernels._compiled caches each config's figures, but finding the configs means importing the
kernels compiled (TRITON_INTERPRET=0) in spawned workers and planning every launch: 5.8 s of the
7.7-9 s a rerun of the documents + lenet report's figures took with every config already cached
(2-core CI machine, load 1.4; 10-14 s at load 4-6), for a table that cannot have changed. This
keys the finished table on what decides it: the launches (kernel, arch, workload, dtype,
layout), the kernels' source, Triton's version and the figures' version. A rerun then reads one
CSV. A table with an error row is not kept: the next run tries again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from bench.files import read_csv, write_csv_atomic

KERNELS_DIR = Path(__file__).resolve().parents[2] / "kernels"
FOLDER = "report-figures"


def kernels_source_hash(folder: Path = KERNELS_DIR) -> str:
    """SHA-256 over every kernels/*.py, names and contents: any edit there changes it."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def key_of(targets: Sequence) -> str:
    """The cache key of the figures of ``targets`` (bench.measuring.inspect.Target)."""
    import triton

    from kernels import _compiled

    launches = [[t.kernel, t.arch, repr(t.workload), t.dtype, t.layout] for t in targets]
    text = json.dumps(
        {
            "launches": launches,
            "kernels": kernels_source_hash(),
            "triton": triton.__version__,
            "figures": _compiled.FIGURES_VERSION,
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _path(key: str) -> Path:
    from kernels import _compiled

    return _compiled.cache_dir() / FOLDER / f"{key}.csv"


def load(key: str) -> pd.DataFrame | None:
    """The cached table for ``key``, or None (not cached, or unreadable: computed anew)."""
    path = _path(key)
    if not path.is_file():
        return None
    try:
        return read_csv(path)
    except Exception:  # a damaged cache entry is a miss, never an error
        return None


def store(key: str, df: pd.DataFrame) -> None:
    """Keep ``df`` for ``key`` when every row compiled (status ok)."""
    if len(df) and (df["status"] == "ok").all():
        write_csv_atomic(df, _path(key))
