"""What a reader is told: the README's Python API snippet runs as written (CPU, Triton
interpreter, tiny shapes), kernels exports what it lists, the command table names the flags
that exist, and summary.md says where the training claims' results came from."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _api_snippet() -> str:
    block = README.split("<!-- python-api:start -->")[1].split("<!-- python-api:end -->")[0]
    code = re.search(r"```python\n(.*?)```", block, re.S)
    assert code, "no ```python block between the python-api markers"
    return code.group(1)


def test_readme_python_api_snippet_runs(tmp_path):
    script = tmp_path / "snippet.py"
    script.write_text(_api_snippet())
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("torch.Size([2, 16, 5, 5])")
    assert float(lines[0].split()[-1]) < 1e-4  # the fused block equals dw -> BN -> ReLU -> pw
    assert lines[1] == "torch.Size([4, 10])"


def test_kernels_exports_what_the_readme_lists():
    import kernels
    from kernels.reference import fold_batchnorm

    assert kernels.fold_batchnorm is fold_batchnorm
    listed = re.search(r"`kernels.__all__`: (.*?)\)", README, re.S).group(1)
    assert sorted(re.findall(r"`(\w+)`", listed)) == sorted(kernels.__all__)


@pytest.mark.parametrize(
    "text",
    ["[--suite S [--suite S ...]]", "[--workers N]", "[--backend torch\\|triton]", "[--latency]"],
)
def test_command_table_names_the_flags(text):
    assert text in README


def test_one_count_of_commands():
    assert "Three commands" not in README and "## Two commands" in README


def test_readme_figures_name_host_and_date():
    measured = README.split("## Measured results")[1].split("## What a GPU")[0]
    assert "2026-11-22" in measured and '"AMD EPYC"' in measured
    assert "How much these figures move" in measured and "Intel Xeon" in measured


def test_summary_says_where_the_training_results_came_from(tmp_path):
    from test_report import fixture_frame

    from bench.checking.sources import default_training_folder
    from bench.files import write_csv_atomic
    from bench.reporting.summary import training_source, write_report

    if default_training_folder() is None:
        pytest.skip("reports/experiments/comparison.csv is not in this checkout")
    write_csv_atomic(fixture_frame(), tmp_path / "results.csv")
    write_report(tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    line = training_source(default_training_folder())
    assert line in summary
    runs = len(pd.read_csv(Path(default_training_folder()) / "comparison.csv"))
    assert "`reports/experiments/comparison.csv`" in line and f"{runs} runs" in line
    assert "AMD EPYC" in line and "2026-11-22" in line and "torch 2.14.1" in line
    assert "untested" in training_source(None)
