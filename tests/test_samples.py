"""Raw timing samples kept beside the percentiles (results.csv's samples_ms column), and the
test-only slowdown that lets `sepbench compare` be checked on a real rerun."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from bench.errors import UserError
from bench.measuring import runner, samples, slowdown, timing
from bench.measuring.operators import Case, Prepared, Provider
from bench.measuring.suites import RbfShape, Workload


def test_cpu_timing_keeps_the_samples_its_percentiles_came_from() -> None:
    x = torch.randn(64, 64)
    measured = timing.time_callable(lambda: x @ x, "cpu", min_run_time=0.05)
    assert len(measured.samples_ms) == measured.repeats >= timing.MIN_CPU_SAMPLES
    p20, p50, p80 = np.quantile(measured.samples_ms, timing.QUANTILES)
    assert (p20, p50, p80) == (measured.p20_ms, measured.p50_ms, measured.p80_ms)
    assert timing.naive_host_clock(lambda: None, calls=3).samples_ms != ()


@pytest.mark.parametrize(
    "cell, expected",
    [
        ("0.5 1.25 2", (0.5, 1.25, 2.0)),
        ("", ()),
        (float("nan"), ()),
        ("0.5 fast", ()),
        ("0.5 -1", ()),
        ("0.5 inf", ()),
    ],
)
def test_samples_cell_decodes_or_is_empty(cell, expected) -> None:
    assert samples.decode(cell) == expected


def test_samples_cell_round_trips_to_6_digits() -> None:
    values = (0.123456789, 12.5, 3e-4)
    back = samples.decode(samples.encode(values))
    assert np.allclose(back, values, rtol=5e-6)  # 6 significant digits


@pytest.mark.parametrize("text", ["eager_nchw", "eager_nchw:fast", ":1.3", "x:0.5", "x:nan"])
def test_malformed_slowdown_is_refused(text: str) -> None:
    with pytest.raises(UserError, match="PROVIDER:FACTOR"):
        slowdown.factors(text)


def test_slowdown_makes_calls_take_factor_times_as_long() -> None:
    assert slowdown.factors("a:1.3, b:2") == {"a": 1.3, "b": 2.0}
    spin = slowdown.slowed(lambda: time.sleep(0.002), 1.0)  # factor 1: the call alone
    slow = slowdown.slowed(lambda: time.sleep(0.002), 1.5)
    ratios = []
    for _ in range(5):
        a = time.perf_counter()
        spin()
        b = time.perf_counter()
        slow()
        ratios.append((time.perf_counter() - b) / (b - a))
    assert 1.3 < float(np.median(ratios)) < 1.8  # sleep's own jitter on a shared host


def test_runner_rows_carry_samples_and_say_when_slowed(monkeypatch) -> None:
    x = torch.ones(64)

    def prepare() -> Prepared:
        return Prepared(lambda: x * 2, "aten", None, 64, 64, 512)

    workload = Workload("rbf", RbfShape(8, 4, 3), 8)
    spec = Provider("doubling", "eager", prepare, "x * 2")
    case = Case(workload, spec, torch.float32, prepare)
    env = {"device": "cpu", "git_sha": "abc"}
    row = runner.measure_case(case, "cpu", env, min_run_time=0.02)
    assert len(samples.decode(row["samples_ms"])) == row["repeats"]
    assert "slowdown" not in row["note"]
    monkeypatch.setenv(slowdown.ENV, "doubling:1.3")
    row = runner.measure_case(case, "cpu", env, min_run_time=0.02)
    assert row["status"] == "ok" and "test slowdown x1.3" in row["note"]
    assert row["note"].startswith("x * 2")


def test_a_malformed_slowdown_stops_the_report_before_it_measures(monkeypatch, tmp_path, capsys):
    from bench.cli import main

    monkeypatch.setenv(slowdown.ENV, "oops")
    assert main(["report", "--suite", "lenet", "--out", str(tmp_path / "r")]) == 2
    assert "PROVIDER:FACTOR" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
