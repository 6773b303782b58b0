"""A no-op rerun of a finished CPU report takes its sm_90 figures from the cache: no compile
workers, no planning (7.7-9 s before, at load 1.4, and 10-14 s at load 4-6)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bench.measuring import inspect, inspect_cache
from bench.measuring.suites import build_suites
from bench.reporting import pipeline, plots


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list:
    """inspect_targets replaced by a stand-in that records each call; an empty cache."""
    monkeypatch.setenv("SEPBENCH_COMPILED_CACHE", str(tmp_path / "cache"))
    calls: list = []

    def inspect_targets(targets, **kwargs):
        calls.append(targets)
        status = getattr(inspect_targets, "status", "ok")
        return pd.DataFrame(
            [{"kernel": t.kernel, "arch": t.arch, "status": status} for t in targets]
        ).reindex(columns=inspect.COLUMNS)

    monkeypatch.setattr(inspect, "inspect_targets", inspect_targets)
    monkeypatch.setattr(plots, "plot_compiled", lambda df, path: path)
    calls.append(inspect_targets)  # calls[0]: the stand-in, for its status
    return calls


def test_a_rerun_reads_the_figures_from_the_cache(compiles, tmp_path, monkeypatch):
    workloads = build_suites(["lenet"], "quick", "cpu")
    said: list[str] = []
    for _ in range(2):
        pipeline.compiled_figures(workloads, tmp_path, said.append)
    assert len(compiles) == 2  # the stand-in, and one compile
    assert "from the cache" in said[1]
    first = pd.read_csv(tmp_path / "compiled.csv")
    assert len(first) == len(inspect.report_targets(workloads)) == 5
    # an edit of the kernels is another key: compiled again
    monkeypatch.setattr(inspect_cache, "kernels_source_hash", lambda: "edited")
    pipeline.compiled_figures(workloads, tmp_path, said.append)
    assert len(compiles) == 3


def test_a_table_with_a_failed_compile_is_not_kept(compiles, tmp_path):
    compiles[0].status = "error"
    workloads = build_suites(["lenet"], "quick", "cpu")
    for _ in range(2):
        pipeline.compiled_figures(workloads, tmp_path, lambda line: None)
    assert len(compiles) == 3  # tried again


def test_the_key_follows_the_kernels_source(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    before = inspect_cache.kernels_source_hash(tmp_path)
    (tmp_path / "a.py").write_text("x = 2\n")
    assert inspect_cache.kernels_source_hash(tmp_path) != before
