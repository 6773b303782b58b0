"""bench.experiments.train: the documents' recipes, accuracy on digits, exact resume, the
comparison table."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from test_datasets import pin_mnist, write_mnist
from torch import nn

from bench.cli import main
from bench.errors import UserError
from bench.experiments import train as tr
from bench.experiments.recipes import CHECKPOINT, TrainConfig, TrainFlags, make_config
from bench.provenance import device_name
from models.registry import ModelSpec

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: the machine's cores are shared, and one thread keeps CPU float
    reductions in one fixed order."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class TinyNet(nn.Module):
    """Stand-in with every kind of state a checkpoint must carry: BN running stats (buffers) and
    dropout (RNG)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 4, 5, stride=2),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.AvgPool2d(2),
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(4 * 7 * 7, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


TINY = ModelSpec("tiny", "test_train:TinyNet", (1, 32, 32), "tests", "stand-in for resume tests")


def _tiny_config(out: Path, **changes) -> TrainConfig:
    cfg = TrainConfig(
        model="tiny",
        dataset="digits",
        epochs=3,
        batch_size=32,
        lr=0.05,
        optimizer="sgd",
        momentum=0.9,
        weight_decay=1e-4,
        seed=7,
        device="cpu",
        out=str(out),
        limit_train=256,
    )
    return dataclasses.replace(cfg, **changes)


def _flags(**flags) -> TrainFlags:
    return TrainFlags(**flags)


# ---------------------------------------------------------------------------------- recipes


def test_recipes_follow_the_documents(tmp_path: Path) -> None:
    cifar = make_config(_flags(dataset="cifar10"), "cifar_cnn_dw")
    assert (cifar.optimizer, cifar.lr, cifar.momentum, cifar.weight_decay) == (
        "sgd",
        0.1,
        0.9,
        1e-4,
    )
    assert (cifar.batch_size, cifar.epochs, cifar.loss) == (128, 10, "cross_entropy")
    lenet = make_config(_flags(dataset="mnist"), "lenet5")
    assert (lenet.optimizer, lenet.lr, lenet.batch_size, lenet.epochs) == ("adam", 1e-3, 100, 10)
    assert lenet.out == str(Path("runs") / "lenet5-mnist")
    assert make_config(_flags(dataset="mnist"), "lenet5_paper_dw").loss == "rbf"
    switched = make_config(_flags(optimizer="sgd", dataset="digits"), "lenet5")
    assert (switched.optimizer, switched.lr, switched.momentum) == ("sgd", 0.01, 0.9)


def test_default_dataset_falls_back_to_digits_and_says_so(tmp_path: Path) -> None:
    absent = make_config(_flags(data_dir=str(tmp_path)), "lenet5")
    assert absent.dataset == "digits" and "digits" in absent.note
    write_mnist(tmp_path, n_train=2, n_test=2)
    present = make_config(_flags(data_dir=str(tmp_path)), "lenet5")
    assert present.dataset == "mnist" and present.note is None


def test_backend_reaches_the_layers_that_have_one() -> None:
    from models.registry import get

    assert tr._backend_kwargs(get("lenet5_dw"), "triton") == {"backend": "triton"}
    assert tr._backend_kwargs(get("cifar_cnn_dw"), "triton") == {"backend": "triton"}
    paper = {"backend": "triton", "conv_backend": "triton"}  # RBF layer and separable convs
    assert tr._backend_kwargs(get("lenet5_paper_dw"), "triton") == paper
    assert tr._backend_kwargs(get("lenet5"), "triton") == {}
    assert tr._backend_kwargs(get("lenet5_dw"), "torch") == {}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "mobilenet_v2"], "no training recipe"),
        (["--model", "lenet7"], "unknown model"),
        (["--model", "lenet5", "--epochs", "0"], "--epochs must be at least 1"),
        (["--model", "lenet5", "--lr", "-1"], "--lr must be positive"),
    ],
)
def test_bad_train_arguments_exit_2(argv: list[str], message: str, capsys) -> None:
    assert main(["train", "--dataset", "digits", *argv]) == 2
    assert message in capsys.readouterr().err


# ---------------------------------------------------------------------------------- training


def test_lenet5_reaches_90_percent_on_digits_within_5_epochs(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--model",
            "lenet5",
            "--dataset",
            "digits",
            "--epochs",
            "5",
            "--batch-size",
            "32",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics.columns) == list(tr.METRIC_COLUMNS)
    assert metrics["epoch"].tolist() == [1, 2, 3, 4, 5]
    final = metrics["test_acc"].iloc[-1]
    assert final >= 0.90, metrics.to_string()
    assert f"final test accuracy: {final:.4f}" in capsys.readouterr().out
    assert (metrics["epoch_time_s"] > 0).all() and (metrics["images_per_s"] > 0).all()
    # images/s is the training split over the epoch's training time.
    ratio = metrics["images_per_s"] * metrics["epoch_time_s"]
    assert ratio.round(6).eq(1437).all()
    assert (out / "curves.png").stat().st_size > 0 and (out / "checkpoint.pt").is_file()


def test_resume_after_interruption_equals_uninterrupted(tmp_path: Path) -> None:
    whole = tr.train(_tiny_config(tmp_path / "whole"), spec=TINY, progress=False)

    def interrupt(epoch: int, batch: int) -> None:
        if (epoch, batch) == (2, 3):  # part-way through epoch 2: its progress is lost
            raise KeyboardInterrupt

    cut = _tiny_config(tmp_path / "cut")
    with pytest.raises(KeyboardInterrupt):
        tr.train(cut, spec=TINY, progress=False, on_batch=interrupt)
    assert torch.load(tmp_path / "cut" / CHECKPOINT, weights_only=True)["epoch"] == 1
    epochs_run = set()
    resumed = tr.train(
        dataclasses.replace(cut, resume=True),
        spec=TINY,
        progress=False,
        on_batch=lambda epoch, batch: epochs_run.add(epoch),
    )
    assert epochs_run == {2, 3}  # it did resume: a restart from scratch would also match

    expected, got = whole.model.state_dict(), resumed.model.state_dict()
    assert expected.keys() == got.keys()
    for name, tensor in expected.items():
        assert torch.equal(tensor, got[name]), name  # bit for bit, BN buffers included
    columns = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc"]
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "whole" / "metrics.csv")[columns],
        pd.read_csv(tmp_path / "cut" / "metrics.csv")[columns],
    )
    # Guard against a vacuous pass: training moved the weights and a different seed differs.
    other = tr.train(_tiny_config(tmp_path / "other", seed=8, epochs=1), spec=TINY, progress=False)
    assert not torch.equal(other.model.state_dict()["body.6.weight"], expected["body.6.weight"])


def test_resume_refuses_a_checkpoint_of_other_settings(tmp_path: Path) -> None:
    tr.train(_tiny_config(tmp_path, epochs=1), spec=TINY, progress=False)
    with pytest.raises(UserError, match=r"lr: checkpoint 0\.05 vs now 0\.1"):
        tr.train(_tiny_config(tmp_path, lr=0.1, resume=True), spec=TINY, progress=False)


def test_divergence_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="training diverged"):
        tr.train(_tiny_config(tmp_path, lr=1e12, momentum=0.0, epochs=1), spec=TINY, progress=False)


def test_train_on_mnist_files_through_the_cli(tmp_path: Path, monkeypatch) -> None:
    write_mnist(tmp_path / "data", n_train=120, n_test=30)
    pin_mnist(monkeypatch, tmp_path / "data")
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--model",
            "lenet5_dw",
            "--dataset",
            "mnist",
            "--epochs",
            "1",
            "--data-dir",
            str(tmp_path / "data"),
            "--no-download",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    metrics = pd.read_csv(out / "metrics.csv")
    assert len(metrics) == 1 and 0.0 <= metrics["test_acc"].iloc[0] <= 1.0
    assert round(metrics["images_per_s"].iloc[0] * metrics["epoch_time_s"].iloc[0]) == 120


def test_rbf_predictions_are_the_nearest_prototype() -> None:
    class Distances(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            d = torch.full((len(x), 10), 5.0)
            d[:, 3] = 0.5  # class 3 nearest for every input
            return d

    from bench.experiments import datasets

    data = datasets.synthetic(channels=1, n_train=4, n_test=20)
    loss, acc = tr.evaluate(Distances(), data, channels=1, loss="rbf")
    assert acc == pytest.approx(float((data.test_labels == 3).float().mean()))
    from kernels.reference import rbf_loss_from_distances

    expected = rbf_loss_from_distances(Distances()(torch.zeros(20)), data.test_labels)
    assert loss == pytest.approx(float(expected))


# ---------------------------------------------------------------------------- comparison


def test_compare_training_writes_the_table(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    code = main(
        [
            "compare-training",
            "--pair",
            "lenet5",
            "--dataset",
            "digits",
            "--epochs",
            "1",
            "--limit-train",
            "300",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    table = pd.read_csv(out / "comparison.csv")
    assert list(table.columns) == [
        "model",
        "dataset",
        "epochs",
        "params",
        "macs",
        "test_accuracy",
        "time_per_epoch_s",
        "images_per_s",
        "inference_latency_ms",
        "device",
    ]
    assert table["model"].tolist() == ["lenet5", "lenet5_dw"]
    standard, depthwise = table.iloc[0], table.iloc[1]
    # Parameters and MACs per sample from the layer formulas (weights + biases; out_hw^2 x taps).
    assert standard["params"] == 6 * 26 + 16 * 151 + 120 * 401 + 84 * 121 + 10 * 85
    assert standard["macs"] == 28**2 * 6 * 25 + 10**2 * 16 * 150 + 120 * 400 + 84 * 120 + 10 * 84
    dw_params = (25 + 6 * 2) + (6 * 25 + 6 * 16 + 16) + (16 * 25 + 16 * 120 + 120)
    assert depthwise["params"] == dw_params + 84 * 121 + 10 * 85
    dw_macs = 28**2 * (25 + 6) + 10**2 * (6 * 25 + 6 * 16) + (16 * 25 + 16 * 120)
    assert depthwise["macs"] == dw_macs + 84 * 120 + 10 * 84
    for name, row in zip(("lenet5", "lenet5_dw"), table.itertuples(), strict=True):
        metrics = pd.read_csv(out / name / "metrics.csv")
        assert row.test_accuracy == pytest.approx(metrics["test_acc"].iloc[-1])
        assert row.time_per_epoch_s == pytest.approx(metrics["epoch_time_s"].mean())
        assert row.inference_latency_ms > 0 and row.dataset == "digits"
        assert row.device == device_name("cpu")  # the hardware's name, as in results.csv
    markdown = (out / "comparison.md").read_text().splitlines()
    assert markdown[0].replace(" ", "").startswith("|model|dataset|epochs|params|macs|")
    assert markdown[2].startswith("| lenet5 ") and markdown[3].startswith("| lenet5_dw ")
    assert (out / "comparison.png").stat().st_size > 0


@pytest.mark.slow
def test_torchrun_two_processes_trains_with_ddp(tmp_path: Path) -> None:
    """Two gloo processes on CPU: each trains on half of every epoch; rank 0 alone writes."""
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "bench",
            "train",
            "--model",
            "lenet5",
            "--dataset",
            "digits",
            "--epochs",
            "2",
            "--limit-train",
            "400",
            "--device",
            "cpu",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("final test accuracy") == 1  # printed by rank 0 only
    assert "x 2 processes" in proc.stdout
    metrics = pd.read_csv(out / "metrics.csv")
    assert metrics["epoch"].tolist() == [1, 2]
    # Both shards counted: 400 images per epoch over the two processes.
    assert (metrics["images_per_s"] * metrics["epoch_time_s"]).round(6).eq(400).all()
