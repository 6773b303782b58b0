"""One report across several GPUs: under torchrun (`torchrun --nproc-per-node G -m bench report`)
the rows still to measure are split across the ranks by their estimated cost, each rank measures
its share on its own device (LOCAL_RANK) into OUT/shards/rank-<r>.csv, written whole after every
row, and rank 0 merges the shards into OUT/results.csv.

Resume: whoever starts a run (rank 0, or a plain process) first folds every shard it finds into
results.csv (same run only: a shard of another run is moved aside), so a rank killed mid-way
loses at most its row in flight and a rerun with any number of ranks measures only what is
missing. Coordination is torchrun's own rendezvous (c10d) and a gloo process group: barriers
only, no tensors move between ranks.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import torch

from bench.files import move_aside, read_csv
from bench.measuring import plans
from bench.measuring.operators import Case
from bench.measuring.results import COLUMNS, KEY, PEAKS_SUITE, STATUSES, run_of
from bench.provenance import Dist

SHARDS = "shards"
# Test hook: "RANK:N" makes that rank exit abruptly after measuring N rows (a killed process).
DIE_AFTER_ENV = "SEPBENCH_TEST_DIE_AFTER"


def shard_path(out_dir: Path, rank: int) -> Path:
    return Path(out_dir) / SHARDS / f"rank-{rank}.csv"


def _index(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return ""
    return str(int(value))


def peaks_of_device(row: dict, env: dict) -> bool:
    """Whether ``row`` is a peaks row of the device ``env`` measures on."""
    same = _index(row.get("device_index")) == _index(env.get("device_index"))
    return row.get("suite") == PEAKS_SUITE and same


def row_key(row: dict) -> tuple:
    """A row's identity in the merged file: its KEY, and for a peaks row also the device it was
    measured on (each rank measures its own GPU's peaks)."""
    key = tuple(str(row[k]) for k in KEY)
    if row.get("suite") == PEAKS_SUITE:
        key += (_index(row.get("device_index")),)
    return key


def merged(rows: Sequence[dict]) -> list[dict]:
    """One row per key, the last written winning (a shard's row is newer than results.csv's)."""
    by_key: dict[tuple, dict] = {}
    for r in rows:
        by_key.pop(row_key(r), None)
        by_key[row_key(r)] = r
    return list(by_key.values())


def read_shards(out_dir: Path, env: dict, say: Callable[[str], None]) -> list[dict]:
    """Rows of every shard in OUT/shards/ that belong to this run; a shard of another run is
    moved aside (shards/rank-<r>-<sha>-<time>.csv), never mixed in."""
    rows: list[dict] = []
    for path in sorted((Path(out_dir) / SHARDS).glob("rank-*.csv")):
        if path.stem.count("-") > 1:  # one moved aside earlier
            continue
        df = read_csv(path)
        mine = [r for r in df.to_dict("records") if r.get("status") in STATUSES]
        if {run_of(r) for r in mine} <= {run_of(env)}:
            rows += mine
        else:
            say(f"{path} holds another run: moved to {move_aside(path).name}")
    return rows


def clear_shards(out_dir: Path) -> None:
    """The shards folded into results.csv removed (and their folder, when nothing is left)."""
    folder = Path(out_dir) / SHARDS
    for path in folder.glob("rank-*.csv"):
        if path.stem.count("-") == 1:
            path.unlink()
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def case_seconds(case: Case) -> float:
    """A case's estimated cost (plans.SECONDS_PER): what the split balances."""
    seconds = plans.SECONDS_PER["row"]
    if case.spec.family == "compile":
        autotune = "max_autotune" in case.provider
        seconds += plans.SECONDS_PER["max-autotune" if autotune else "compile"]
    elif case.spec.family == "fused":
        seconds += plans.SECONDS_PER["fused"]
    return seconds


def split(cases: Sequence[Case], world: int) -> list[list[Case]]:
    """The cases in ``world`` shares of about equal estimated cost, the same on every rank:
    the longest first, each to the share with the least so far (ties to the lower rank); each
    share keeps the run's order, so a workload's inputs are built once per rank."""
    order = {id(c): i for i, c in enumerate(cases)}
    loads = [0.0] * world
    shares: list[list[Case]] = [[] for _ in range(world)]
    for case in sorted(cases, key=lambda c: (-case_seconds(c), order[id(c)])):
        rank = min(range(world), key=lambda r: (loads[r], r))
        loads[rank] += case_seconds(case)
        shares[rank].append(case)
    return [sorted(share, key=lambda c: order[id(c)]) for share in shares]


def start(ctx: Dist, device: str) -> None:
    """Join torchrun's process group (gloo: barriers only) and take this rank's GPU."""
    import torch.distributed as dist

    if device == "cuda":
        torch.cuda.set_device(ctx.local_rank)
    if not dist.is_initialized():
        # a rank measures its share alone: the others may wait for it for hours
        dist.init_process_group("gloo", timeout=dt.timedelta(days=1))


def barrier(ctx: Dist) -> None:
    if ctx.world > 1:
        import torch.distributed as dist

        dist.barrier()


def finish(ctx: Dist) -> None:
    import torch.distributed as dist

    if ctx.world > 1 and dist.is_initialized():
        dist.destroy_process_group()


def maybe_die(ctx: Dist, measured: int) -> None:
    """The test hook of DIE_AFTER_ENV: exit like a killed process, nothing cleaned up."""
    wanted = os.environ.get(DIE_AFTER_ENV, "")
    if wanted and wanted == f"{ctx.rank}:{measured}":
        os._exit(3)


def ordered(rows: list[dict], cases: Sequence[Case]) -> pd.DataFrame:
    """The rows as a frame in the run's order: peaks first, then the cases' order."""
    position = {
        (
            c.workload.suite,
            c.workload.id,
            c.provider,
            str(c.dtype).removeprefix("torch."),
            str(c.workload.batch),
        ): i
        for i, c in enumerate(cases)
    }
    df = pd.DataFrame(rows, columns=COLUMNS)
    keys = [tuple(str(r[k]) for k in KEY) for r in rows]
    df["_order"] = [
        -1 if r["suite"] == PEAKS_SUITE else position.get(k, len(position))
        for r, k in zip(rows, keys, strict=True)
    ]
    return df.sort_values("_order", kind="stable").drop(columns="_order")
