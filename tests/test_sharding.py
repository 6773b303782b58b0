"""One sweep across ranks: `torchrun ... -m bench report` splits the rows by estimated cost,
each rank writes its shard, rank 0 merges; a killed rank loses only its row in flight and a
rerun with any number of processes measures what is missing. Two-process gloo runs on CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import torch

from bench.measuring import sharding
from bench.measuring.operators import cases_for
from bench.measuring.results import KEY, PEAKS_SUITE
from bench.measuring.suites import build_suites
from bench.provenance import REPO_ROOT

# without the peers (tests/test_peers.py): KeOps would compile in each rank's process
REPORT = ["report", "--smoke", "--suite", "rbf", "--device", "cpu", "--skip-providers", "peer"]


def _bench(out: Path, nproc: int = 1, **env: str) -> subprocess.CompletedProcess:
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    cmd = [sys.executable, *(launcher if nproc > 1 else []), "-m", "bench", *REPORT]
    return subprocess.run(
        [*cmd, "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )


def _keys(folder: Path) -> set[tuple]:
    df = pd.read_csv(folder / "results.csv")
    work = df[df["suite"] != PEAKS_SUITE]
    assert not work.duplicated(subset=list(KEY)).any()
    return {tuple(str(v) for v in r) for r in work[list(KEY)].itertuples(index=False)}


def test_split_balances_the_gpu_matrix_by_estimated_cost() -> None:
    cases = [
        c
        for w in build_suites(None, "quick", "cuda")
        for d in (torch.float32, torch.float16)
        for c in cases_for(w, "cuda", d)
    ]
    for world in (2, 8):
        shares = sharding.split(cases, world)
        assert sorted(id(c) for s in shares for c in s) == sorted(id(c) for c in cases)
        loads = [sum(sharding.case_seconds(c) for c in s) for s in shares]
        assert max(loads) <= 1.25 * sum(loads) / world
        assert sharding.split(cases, world) == shares  # the same on every rank


def test_two_ranks_merge_and_a_killed_rank_loses_only_its_row_in_flight(tmp_path: Path) -> None:
    one = _bench(tmp_path / "one")
    assert one.returncode == 0, one.stderr[-2000:]
    expected = _keys(tmp_path / "one")

    two = _bench(tmp_path / "two", nproc=2)
    assert two.returncode == 0, two.stderr[-2000:]
    assert _keys(tmp_path / "two") == expected
    merged = pd.read_csv(tmp_path / "two" / "results.csv")
    assert set(merged.loc[merged["suite"] != PEAKS_SUITE, "rank"]) == {0, 1}
    assert not (tmp_path / "two" / "shards").exists()
    summary = (tmp_path / "two" / "summary.md").read_text()
    assert "Measured by 2 torchrun ranks" in summary and "not meaningful" in summary

    out = tmp_path / "killed"
    killed = _bench(out, nproc=2, **{sharding.DIE_AFTER_ENV: "1:2"})
    assert killed.returncode != 0
    shard = pd.read_csv(out / "shards" / "rank-1.csv")
    assert (shard["suite"] != PEAKS_SUITE).sum() == 2  # what it measured before dying is kept
    rerun = _bench(out)  # one process completes the set
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "folded" in rerun.stdout and "resuming:" in rerun.stdout
    assert _keys(out) == expected
    assert not (out / "shards").exists()


def test_peaks_rows_are_kept_per_device() -> None:
    env = {"device_index": 0}
    assert sharding.peaks_of_device({"suite": "peaks", "device_index": 0.0}, env)
    assert not sharding.peaks_of_device({"suite": "peaks", "device_index": 1}, env)
    copy = {"suite": "peaks", "workload": "copy_bandwidth", "provider": "tensor_copy"}
    copy.update(dtype="float32", batch=1)
    assert len(sharding.merged([{**copy, "device_index": 0}, {**copy, "device_index": 1}])) == 2
    assert len(sharding.merged([{**copy, "device_index": 0}, {**copy, "device_index": 0}])) == 1
