"""The CLI end to end: count and claims, CSV output, and clear errors with exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_count_prints_table_and_writes_csv(tmp_path, capsys):
    out = tmp_path / "lenet.csv"
    assert main(["count", "lenet5_paper", "--csv", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "c3" in printed and "60,000" in printed
    df = pd.read_csv(out)
    assert df.iloc[-1]["layer"] == "total" and df.iloc[-1]["params"] == 60_000


def test_claims_writes_csv(tmp_path, capsys):
    out = tmp_path / "claims.csv"
    assert main(["claims", "--csv", str(out)]) == 0
    df = pd.read_csv(out)
    assert "cifar-example-8.7x" in set(df["claim_id"])
    assert "refuted" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["count", "lenet6"], "unknown model 'lenet6'"),
        (["count", "lenet5", "--batch", "0"], "--batch must be a positive integer"),
        (["count", "lenet5", "--csv", "/nonexistent-dir/x.csv"], "cannot write CSV"),
        (["claims", "--results", "/nonexistent-dir"], "does not exist"),
    ],
)
def test_bad_input_exits_2_with_message(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_python_m_bench_and_console_script():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-m", "bench", "count", "nolenet"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2 and "unknown model" in run.stderr
    assert "Traceback" not in run.stderr
    script = Path(sys.executable).with_name("sepbench")
    if not script.exists():
        pytest.skip("the sepbench console script is not installed in this environment")
    run = subprocess.run(
        [str(script), "count", "lenet5"], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0 and "total" in run.stdout


def test_argparse_errors_exit_2():
    with pytest.raises(SystemExit) as exc:
        main(["count", "lenet5", "--batch", "two"])
    assert exc.value.code == 2
