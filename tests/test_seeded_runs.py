"""bench.experiments.seeded_runs (`sepbench experiments`) on a tiny offline set: scikit-learn's
digits for the LeNet pair, a few images per epoch. Each run is a real child process."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from bench.cli import main
from bench.errors import UserError
from bench.experiments import seeded_runs as sr
from bench.experiments import train

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--group", "lenet", "--mnist-dataset", "digits", "--limit-train", "200", "--device", "cpu"]


def test_plan_pairs_each_seed_and_sizes_the_cifar_steps() -> None:
    opts = sr.Options(out=Path("x"), groups=("lenet", "cifar_steps"), seeds=(3, 4))
    runs = sr.plan(opts, "cpu")
    assert [(r.model, r.seed) for r in runs[:4]] == [
        ("lenet5", 3),
        ("lenet5_dw", 3),
        ("lenet5", 4),
        ("lenet5_dw", 4),
    ]
    assert {r.epochs for r in runs[:4]} == {train.RECIPES["lenet5"].epochs}
    epochs, steps = sr.CIFAR_STEPS["cpu"]
    cifar = runs[4]
    assert (cifar.model, cifar.dataset, cifar.epochs) == ("cifar_cnn", "synthetic", epochs)
    assert cifar.limit_train == steps * 128 and cifar.limit_test == 128  # document 001's batch
    cfg = sr.train_config(cifar, opts, "cpu", Path("w"))
    assert (cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay) == ("sgd", 0.1, 0.9, 1e-4)
    assert cfg.resume and not cfg.download and cfg.out == str(Path("w") / cifar.name)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"groups": ("lenet", "vgg")}, "unknown group"),
        ({"seeds": (1, 1)}, "distinct"),
        ({"jobs": 0}, "--jobs must be a positive"),
        ({"cifar_steps": -2}, "--cifar-steps"),
    ],
)
def test_bad_options(changes: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        sr.Options(out=Path("x"), **changes)


def _mtimes(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*.csv")}


@pytest.mark.timeout(600)
def test_a_killed_set_resumes_without_redoing_finished_runs(tmp_path: Path, capsys) -> None:
    """Kill the whole set (SIGKILL to its process group) once its first run is written; the rerun
    keeps that run and does the rest."""
    out = tmp_path / "exp"
    argv = ["experiments", *TINY, "--epochs", "2", "--seeds", "0", "--jobs", "1", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    first = out / "runs" / "lenet5-digits-seed0.csv"
    deadline = time.monotonic() + 400
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    log = proc.communicate()[0].decode()
    assert first.exists(), log[-3000:]
    assert not (out / "runs" / "lenet5_dw-digits-seed0.csv").exists(), "killed too late"
    before = _mtimes(out)

    assert main([*argv]) == 0
    table = pd.read_csv(out / "comparison.csv")
    assert table["status"].tolist() == ["ok", "ok"], table.to_string()
    assert _mtimes(out)["lenet5-digits-seed0.csv"] == before["lenet5-digits-seed0.csv"]
    assert table["model"].tolist() == ["lenet5", "lenet5_dw"]
    assert (table["epochs"] == 2).all() and (table["steps_per_epoch"] == 2).all()
    assert set(table.columns) == set(sr.COLUMNS)
    for name in ("comparison.md", "curves.png", "accuracy_vs_macs.png", "cifar_steps.png"):
        assert (out / name).stat().st_size > 0
    assert not (out / "work" / "lenet5_dw-digits-seed0").exists()  # checkpoint gone once done
    # A third invocation starts no child at all and rewrites no run.
    done = _mtimes(out)
    capsys.readouterr()
    assert main([*argv]) == 0
    log = capsys.readouterr().out
    assert log.count("finished earlier") == 2 and "started" not in log
    assert _mtimes(out) == done


@pytest.mark.timeout(600)
def test_resume_from_a_checkpoint_and_a_failing_run_becomes_a_row(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    """A run cut after epoch 1 (its checkpoint in OUT/work/) continues at epoch 2 with epoch 1's
    rows unchanged; a run whose child fails is a row with the child's error, the set goes on."""
    out = tmp_path / "exp"
    opts = sr.Options(
        out=out,
        groups=("lenet",),
        seeds=(5,),
        device="cpu",
        mnist_dataset="digits",
        epochs=2,
        limit_train=200,
        jobs=2,
    )
    standard, depthwise = sr.plan(opts, "cpu")
    cut = dataclasses.replace(sr.train_config(standard, opts, "cpu", out / "work"), epochs=1)
    torch.set_num_threads(1)
    planted = train.train(cut, progress=False).metrics
    capsys.readouterr()

    real = sr.train_config

    def failing(run, *args):
        cfg = real(run, *args)
        if run.model == "lenet5_dw":
            object.__setattr__(cfg, "lr", -1.0)  # past the parent's check: the child refuses it
        return cfg

    monkeypatch.setattr(sr, "train_config", failing)
    table = sr.run_set(opts).set_index("model")
    log = capsys.readouterr().out
    assert "resuming from" in log and "after epoch 1" in log
    rows = pd.read_csv(out / "runs" / f"{standard.name}.csv")
    assert rows["epoch"].tolist() == [1, 2]
    pd.testing.assert_series_equal(rows["test_acc"].iloc[:1], planted["test_acc"].iloc[:1])
    assert table.loc["lenet5", "status"] == "ok"
    assert table.loc["lenet5_dw", "status"] == "error"
    assert "--lr must be positive" in table.loc["lenet5_dw", "error"]
    assert not (out / "runs" / f"{depthwise.name}.csv").exists()
