"""Issue 20's inputs that were tracebacks or silence, and their kin: every folder argument passes
a guard, every conflicting or out-of-range flag is exit 2 with one line naming what is wrong and
what is accepted, and nothing is written or run before the refusal."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from test_report import fixture_frame

from bench import commands
from bench.cli import main
from bench.errors import UserError
from bench.files import write_csv_atomic

ROOT = Path(__file__).resolve().parents[1]


def _refused(argv: list[str], capsys, *needles: str) -> str:
    assert main(argv) == 2, argv
    err = capsys.readouterr().err
    assert err.startswith(f"sepbench {argv[0]}: error: "), err
    assert err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "a-file"
    path.write_text("x")
    return path


@pytest.fixture
def nothing_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The long jobs fail the test if reached: a refusal must come first."""
    from bench.counting import zoo
    from bench.experiments import data, pairs, seeded_runs, train

    def must_not_run(*args, **kwargs):
        raise AssertionError("the command went on past an input it should refuse")

    for module, name in (
        (seeded_runs, "run_set"),
        (train, "train"),
        (pairs, "compare_pair"),
        (data, "prepare"),
        (zoo, "run_zoo"),
    ):
        monkeypatch.setattr(module, name, must_not_run)


# --------------------------------------------------------------------------- folder arguments

DATA_COMMANDS = {
    "data": ["data", "mnist"],
    "train": ["train", "--model", "lenet5", "--dataset", "digits"],
    "compare-training": ["compare-training", "--dataset", "digits"],
    "experiments": ["experiments"],
}


@pytest.mark.parametrize("command", list(DATA_COMMANDS))
def test_data_dir_that_is_a_file_exits_2(command, a_file, nothing_runs, capsys):
    _refused([*DATA_COMMANDS[command], "--data-dir", str(a_file)], capsys, "is a file", "--data")


@pytest.mark.parametrize("command", list(DATA_COMMANDS))
def test_data_dir_that_cannot_be_made_exits_2(command, nothing_runs, capsys):
    _refused([*DATA_COMMANDS[command], "--data-dir", "/proc/x"], capsys, "/proc/x", "cannot create")
    assert not Path("/proc/x").exists()


def test_data_dir_check_leaves_nothing_behind(tmp_path):
    from bench.files import check_data_dir

    assert check_data_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert not (tmp_path / "a").exists()  # proven creatable, not created


@pytest.mark.parametrize("out", ["file", "/proc/x", "foreign"])
def test_experiments_out_is_guarded(out, tmp_path, a_file, nothing_runs, capsys):
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"\xff")
    path = {"file": a_file, "/proc/x": Path("/proc/x"), "foreign": foreign}[out]
    _refused(["experiments", "--out", str(path)], capsys, str(path))


@pytest.mark.parametrize("out", ["file", "/proc/x"])
def test_zoo_out_is_guarded(out, a_file, nothing_runs, capsys):
    path = a_file if out == "file" else Path("/proc/x")
    _refused(["count", "--zoo", "torchvision", "--out", str(path)], capsys, str(path))


def test_csv_under_a_file_exits_2(a_file, capsys):
    _refused(["count", "lenet5", "--csv", str(a_file / "a.csv")], capsys, "cannot write CSV")


# ----------------------------------------------------------------- conflicts and numeric flags


def test_count_model_with_zoo_is_a_conflict(nothing_runs, capsys):
    _refused(["count", "lenet5", "--zoo", "torchvision"], capsys, "either MODEL or --zoo")
    _refused(["count", "--zoo", "torchvision", "--input", "1x1x32x32"], capsys, "--zoo")


@pytest.mark.parametrize("flag", [["--out", "x"], ["--fresh"]])
def test_zoo_flags_without_zoo_are_refused(flag, capsys):
    _refused(["count", "lenet5", *flag], capsys, "applies to --zoo only")


def test_zoo_default_output_goes_under_runs(monkeypatch, tmp_path):
    from bench import provenance
    from bench.counting import zoo
    from bench.reporting import zoo as zoo_report

    monkeypatch.setattr(provenance, "REPO_ROOT", tmp_path)  # a checkout of our own

    seen = {}

    def run_zoo(csv, write, **kwargs):
        seen["csv"] = csv
        raise KeyboardInterrupt  # stop here: only the path is under test

    monkeypatch.setattr(zoo, "run_zoo", run_zoo)
    monkeypatch.setattr(zoo_report, "write_zoo_report", lambda df, out: [])
    args = argparse.Namespace(zoo="torchvision", out=None, csv=None, fresh=False)
    with pytest.raises(KeyboardInterrupt):
        commands.count_zoo(args)
    assert seen["csv"] == tmp_path / "runs" / "counting" / "zoo_torchvision.csv"
    assert not (tmp_path / "reports").exists()  # the committed reports/counting: untouched


@pytest.mark.parametrize(
    "model, shape",
    [("lenet5", "3x224"), ("lenet5", "1x3x32x32"), ("torchvision:resnet18", "3x224")],
)
def test_input_of_the_wrong_rank_names_nxcxhxw(model, shape, capsys):
    err = _refused(["count", model, "--input", shape], capsys, "NxCxHxW", repr(shape))
    assert "RuntimeError" not in err


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["train", "--model", "lenet5", "--dataset", "digits", "--seed", "-1"], "--seed"),
        (["train", "--model", "lenet5", "--dataset", "digits", "--lr", "inf"], "--lr"),
        (["experiments", "--seeds", "-1"], "--seeds must be 0 or more"),
    ],
)
def test_out_of_range_numbers_exit_2(argv, needle, nothing_runs, capsys):
    _refused(argv, capsys, needle)


def test_limit_test_must_be_positive(tmp_path, capsys):
    argv = ["train", "--model", "lenet5", "--dataset", "digits", "--limit-test", "0"]
    _refused([*argv, "--out", str(tmp_path / "t")], capsys, "--limit-test")


# ------------------------------------------------------------------------------------ silence


def test_inspect_matching_nothing_exits_2_naming_what_exists(tmp_path, capsys):
    out = tmp_path / "inspect"
    argv = ["inspect", "--kernel", "rbf_distance", "--suite", "documents", "--out", str(out)]
    _refused(argv, capsys, "documents: dwsep", "rbf: rbf_distance")
    assert not out.exists()


def test_plot_says_it_dropped_a_row_cut_mid_line(tmp_path, capsys):
    folder = tmp_path / "report"
    folder.mkdir()
    csv = write_csv_atomic(fixture_frame(), folder / "results.csv")
    text = csv.read_text()
    csv.write_text(text[: text.rindex("\n", 0, len(text) - 1) + 40])  # the last row cut
    assert main(["plot", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "dropped 1 incomplete row(s)" in out and str(csv) in out


@pytest.mark.slow
def test_train_triton_on_cpu_refuses_an_evaluation_of_hours(tmp_path, capsys):
    """lenet5_dw on the Triton interpreter: 2.5-2.8 s per test image here, 360 images: refused
    before training, saying how many images fit (about 10 s)."""
    argv = ["train", "--model", "lenet5_dw", "--dataset", "digits", "--backend", "triton"]
    _refused([*argv, "--out", str(tmp_path / "t")], capsys, "Triton interpreter", "--limit-test")


def test_interpreter_evaluation_has_a_bar_and_an_estimate(monkeypatch, capsys):
    """The check and the bar, on a stand-in model whose "interpreter" costs 50 ms an image."""
    import time

    import torch

    from bench.experiments import train
    from bench.experiments.datasets import load

    data = load("digits").limit_test(30)

    class Slow(torch.nn.Module):
        def forward(self, x):
            time.sleep(0.05 * len(x))
            return torch.zeros(len(x), 10)

    run = argparse.Namespace(
        data=data, channels=1, eval_model=Slow(), say=print, spec=None, cfg=None
    )
    monkeypatch.setattr(train, "_interpreted", lambda run: "stand-in under the interpreter")
    train.check_interpreter_eval(run)
    assert "evaluating the 30 test images takes about" in capsys.readouterr().out
    monkeypatch.setattr(train, "INTERPRETER_EVAL_LIMIT_S", 0.5)
    with pytest.raises(UserError, match=r"--limit-test (9|10) or fewer"):
        train.check_interpreter_eval(run)
    _, acc = train.evaluate(Slow(), data, 1, slow="stand-in")
    assert 0 <= acc <= 1
    assert "test set: 30/30" in capsys.readouterr().err  # LineProgress: a line at the end
