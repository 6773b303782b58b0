"""Bad files, bad output folders and Ctrl-C through the CLI: exit status 2 (130 for Ctrl-C), one
line naming the file and what is wrong with it, never a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from test_report import fixture_frame

from bench.cli import main
from bench.files import write_csv_atomic
from bench.measuring.results import PEAKS_SUITE

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _good_csv(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(fixture_frame(), folder / "results.csv")
    return folder / "results.csv"


def _binary(csv: Path) -> None:
    csv.write_bytes(bytes(range(256)) * 8)


def _empty(csv: Path) -> None:
    csv.write_bytes(b"")


def _column_missing(csv: Path) -> None:
    lines = csv.read_text().splitlines()
    drop = lines[0].split(",").index("latency_ms_p50")
    csv.write_text(
        "\n".join(",".join(f for i, f in enumerate(line.split(",")) if i != drop) for line in lines)
        + "\n"
    )


def _not_numeric(csv: Path) -> None:
    text = csv.read_text().splitlines()
    head = text[0].split(",")
    row = text[3].split(",")
    row[head.index("latency_ms_p50")] = "fast"
    csv.write_text("\n".join([*text[:3], ",".join(row), *text[4:]]) + "\n")


BAD_FILES = {
    "empty": (_empty, "is empty"),
    "binary": (_binary, "binary data at byte"),
    "column-missing": (_column_missing, "lacks the column(s) latency_ms_p50"),
    "not-numeric": (_not_numeric, "column latency_ms_p50 holds 'fast' on line 4"),
}


@pytest.fixture(params=list(BAD_FILES))
def bad_report(request, tmp_path: Path) -> tuple[Path, str]:
    spoil, what = BAD_FILES[request.param]
    csv = _good_csv(tmp_path / "report")
    spoil(csv)
    return csv.parent, what


@pytest.mark.parametrize("command", ["plot", "claims", "report"])
def test_bad_results_csv_exits_2_naming_the_file(bad_report, command: str, capsys) -> None:
    folder, what = bad_report
    argv = {
        "plot": ["plot", str(folder)],
        "claims": ["claims", "--results", str(folder)],
        # a report resuming over the file: refused before anything is measured
        "report": ["report", "--suite", "lenet", "--out", str(folder)],
    }[command]
    before = (folder / "results.csv").read_bytes()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert str(folder / "results.csv") in err and what in err, err
    assert len(err.strip().splitlines()) == 1
    assert (folder / "results.csv").read_bytes() == before  # left as it was
    if command == "report":
        assert "--fresh" in err  # and says how to go on


def test_pytest_benchmark_json_without_q1(tmp_path: Path, capsys) -> None:
    doc = {
        "benchmarks": [
            {
                "name": "test_workload[x]",
                "stats": {"median": 1e-3, "q3": 2e-3, "rounds": 5},
                "extra_info": {
                    "suite": "rbf",
                    "workload": "w",
                    "provider": "broadcast",
                    "dtype": "float32",
                    "batch": 1,
                    "status": "ok",
                },
            }
        ]
    }
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(doc))
    assert main(["report", "--from-pytest-benchmark", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "'q1'" in err and "test_workload[x]" in err


def _file(tmp: Path) -> Path:
    (tmp / "a-file").write_text("x")
    return tmp / "a-file"


def _foreign(tmp: Path) -> Path:
    (tmp / "photos").mkdir()
    (tmp / "photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    return tmp / "photos"


COMMANDS = {
    "report": ["report", "--suite", "lenet"],
    "train": ["train", "--model", "lenet5", "--dataset", "digits", "--epochs", "1"],
    "compare-training": [
        "compare-training",
        "--pair",
        "lenet5",
        "--dataset",
        "digits",
        "--epochs",
        "1",
    ],
}
BAD_OUTS = {
    "file": (_file, "is a file"),
    "root": (lambda tmp: Path("/"), "filesystem root"),
    "home": (lambda tmp: Path.home(), "home folder"),
    "foreign": (_foreign, "not made by sepbench"),
}


@pytest.fixture
def nothing_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The measuring and training entry points fail the test if reached, so a command that does
    not refuse its --out fails here instead of writing into / or the home folder (the home
    folder is a temporary one besides). Returns that home."""
    from bench.experiments import pairs, train
    from bench.measuring import runner

    def must_not_run(*args, **kwargs):
        raise AssertionError("the command went on to write into a folder it should refuse")

    for module, name in ((runner, "run"), (train, "train"), (pairs, "compare_pair")):
        monkeypatch.setattr(module, name, must_not_run)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("bad", list(BAD_OUTS))
def test_bad_out_exits_2(tmp_path: Path, nothing_runs: Path, command: str, bad: str, capsys):
    make, what = BAD_OUTS[bad]
    out = make(tmp_path)
    assert bad != "home" or out == nothing_runs
    listing = sorted(os.listdir(out)) if out.is_dir() else None
    assert main([*COMMANDS[command], "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert what in err and str(out) in err, err
    assert (sorted(os.listdir(out)) if out.is_dir() else None) == listing  # nothing written


@pytest.mark.parametrize("command", list(COMMANDS))
def test_read_only_out_exits_2(read_only_dir: Path, nothing_runs: Path, command: str, capsys):
    assert main([*COMMANDS[command], "--out", str(read_only_dir)]) == 2
    assert "cannot write there" in capsys.readouterr().err


def _sepbench(*argv: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bench", *argv],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_a_real_process_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    """The same refusals from `python -m bench`: nothing else reaches stderr (no traceback, no
    "No CUDA runtime is found" notice, no torch.jit deprecation warning)."""
    csv = _good_csv(tmp_path / "report")
    _binary(csv)
    runs = {
        "report --suite": _sepbench("report", "--suite", "nope"),  # imports the timers: the
        # "No CUDA runtime is found" notice came with them
        "plot": _sepbench("plot", str(csv.parent)),
        "report": _sepbench(*COMMANDS["report"], "--out", str(_file(tmp_path))),
        "train": _sepbench(*COMMANDS["train"], "--out", str(_foreign(tmp_path))),
    }
    for name, proc in runs.items():
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 2, (name, err)
        command = name.split()[0]
        assert err.startswith(f"sepbench {command}: error: ") and err.count("\n") == 1, err


def test_ctrl_c_ends_with_one_line_and_exit_130(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _sepbench("report", "--suite", "documents", "--out", str(out))
    deadline = time.monotonic() + 120
    while not (out / "results.csv").exists() and proc.poll() is None:
        assert time.monotonic() < deadline, "no results.csv after 120 s"
        time.sleep(0.2)
    time.sleep(1.0)  # a few rows in
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if line.strip()]
    last = lines[-1]
    assert last.startswith("sepbench report: interrupted; ") and "rerun to resume" in last, err
    assert str(out / "results.csv") in last
    assert "Traceback" not in err
    saved = int(last.split("interrupted; ")[1].split(" rows")[0])
    rows = pd.read_csv(out / "results.csv")
    assert saved == int((rows["suite"] != PEAKS_SUITE).sum())  # the peaks rows are not counted


@pytest.mark.parametrize("command", ["train", "compare-training"])
def test_ctrl_c_in_training_says_how_to_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, capsys
) -> None:
    from bench.experiments import pairs, train

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "train", interrupted)
    monkeypatch.setattr(pairs, "compare_pair", interrupted)
    assert main([*COMMANDS[command], "--out", str(tmp_path / "run")]) == 130
    err = capsys.readouterr().err
    assert err.startswith(f"sepbench {command}: interrupted; ") and "--resume" in err
    assert err.count("\n") == 1
