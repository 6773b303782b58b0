"""bench.experiments.datasets: the real torchvision MNIST / CIFAR-10 loaders on small files
written here in the real formats (IDX; CIFAR's python pickles), the digits split, and clear
errors for missing or corrupt files. The writers are imported by test_train.py too."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.datasets import CIFAR10
from torchvision.transforms.v2 import functional as TF

from bench.cli import main
from bench.errors import UserError
from bench.experiments import data, datasets

# --------------------------------------------------------------------------- format writers


def _idx_bytes(array: np.ndarray) -> bytes:
    """IDX: 0x0000, type 0x08 (uint8), ndim, then each dimension as big-endian int32, then data."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(
    root: Path, n_train: int = 60, n_test: int = 20, *, gz: bool = False, seed: int = 0
):
    """Random 28x28 digits in root/MNIST/raw, as torchvision expects. Returns the arrays."""
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        data = _idx_bytes(array)
        if gz:
            (raw / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (raw / name).write_bytes(data)
    return arrays


def pin_mnist(monkeypatch: pytest.MonkeyPatch, root: Path) -> dict[str, str]:
    """Point the pinned SHA-256 table at the MNIST files now in root/MNIST/raw (decompressed
    digests, as the real table holds): only a test may make written files 'the release'."""
    raw = root / "MNIST" / "raw"
    sums = {}
    for name in data.MNIST_FILES:
        path = raw / name
        payload = (
            path.read_bytes()
            if path.is_file()
            else gzip.decompress((raw / f"{name}.gz").read_bytes())
        )
        sums[name] = hashlib.sha256(payload).hexdigest()
        monkeypatch.setitem(data.MNIST_SHA256, name, sums[name])
    return sums


def write_cifar(root: Path, per_batch: int = 8, n_test: int = 10, seed: int = 0):
    """Random CIFAR-10 batches in root/cifar-10-batches-py: five train batches, test, meta.
    Returns (train_data, train_labels, test_data, test_labels) in the files' (n, 3072) layout."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    train_data, train_labels = [], []
    for i in range(1, 6):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch).tolist()
        _pickle(
            folder / f"data_batch_{i}",
            {"batch_label": f"training batch {i} of 5", "data": data, "labels": labels},
        )
        train_data.append(data)
        train_labels += labels
    test_data = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    test_labels = rng.integers(0, 10, n_test).tolist()
    _pickle(
        folder / "test_batch",
        {"batch_label": "testing batch 1 of 1", "data": test_data, "labels": test_labels},
    )
    names = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    _pickle(folder / "batches.meta", {"label_names": names, "num_vis": 3072})
    return np.concatenate(train_data), train_labels, test_data, test_labels


def _pickle(path: Path, obj: object) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------- MNIST


@pytest.mark.parametrize("gz", [False, True], ids=["idx", "idx.gz"])
def test_mnist_loads_the_written_idx_files(tmp_path: Path, gz: bool, monkeypatch) -> None:
    arrays = write_mnist(tmp_path, gz=gz)
    pin_mnist(monkeypatch, tmp_path)
    # torchvision.datasets.MNIST reads the files (after our loader decompresses any .gz).
    data = datasets.load("mnist", tmp_path, download=False)
    assert data.train_images.shape == (60, 1, 28, 28) and data.test_images.shape == (20, 1, 28, 28)
    assert np.array_equal(data.train_images[:, 0].numpy(), arrays["train-images-idx3-ubyte"])
    assert np.array_equal(data.test_labels.numpy(), arrays["t10k-labels-idx1-ubyte"])
    assert data.train_labels.dtype == torch.long
    # Document 003's pipeline: Pad(2) to 32x32, ToTensor, Normalize(0.1307, 0.3081).
    x = data.model_input(data.train_images[:3], channels=1)
    assert x.shape == (3, 1, 32, 32)
    pixels = torch.from_numpy(arrays["train-images-idx3-ubyte"][:3]).float() / 255
    torch.testing.assert_close(x[:, 0, 2:30, 2:30], (pixels - 0.1307) / 0.3081)
    border = torch.full((3, 32), (0 - 0.1307) / 0.3081)
    torch.testing.assert_close(x[:, 0, 0, :], border)


def test_missing_mnist_says_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(UserError) as err:
        datasets.load_mnist(tmp_path / "nowhere", download=False)
    text = str(err.value)
    assert str(tmp_path / "nowhere" / "MNIST" / "raw") in text
    assert "train-images-idx3-ubyte" in text and "--dataset digits" in text and "http" in text


def test_truncated_mnist_is_reported_before_it_is_read(tmp_path: Path, monkeypatch) -> None:
    write_mnist(tmp_path)
    pin_mnist(monkeypatch, tmp_path)
    images = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:1000])
    with pytest.raises(
        UserError, match="is truncated: 1,000 bytes, its IDX header promises 47,056"
    ) as err:
        datasets.load_mnist(tmp_path, download=False)
    assert str(images) in str(err.value) and "SHA-256" in str(err.value)


def test_mnist_label_count_mismatch_is_reported(tmp_path: Path, monkeypatch) -> None:
    write_mnist(tmp_path)
    labels = tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    labels.write_bytes(_idx_bytes(np.zeros(7, dtype=np.uint8)))  # 20 test images, 7 labels
    pin_mnist(monkeypatch, tmp_path)  # a consistent release whose files disagree with each other
    with pytest.raises(UserError, match="20 images but 7 labels"):
        datasets.load_mnist(tmp_path, download=False)


def test_corrupt_mnist_gzip_is_reported(tmp_path: Path, monkeypatch) -> None:
    write_mnist(tmp_path, gz=True)
    pin_mnist(monkeypatch, tmp_path)
    (tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(UserError, match=r"train-labels-idx1-ubyte\.gz is corrupt"):
        datasets.load_mnist(tmp_path, download=False)


# ---------------------------------------------------------------------------------- CIFAR-10


def _expected_nchw(flat: np.ndarray) -> np.ndarray:
    return flat.reshape(-1, 3, 32, 32)  # the format stores each image channel-major: R, G, B


def test_cifar_through_torchvision_when_md5_matches(tmp_path: Path, monkeypatch) -> None:
    """The official-file path: torchvision's CIFAR10 with its md5 check. The test files are not
    the official ones, so the test (only the test) points torchvision's md5 table at them."""
    train, train_labels, test, test_labels = write_cifar(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    monkeypatch.setattr(
        CIFAR10,
        "train_list",
        [[f"data_batch_{i}", _md5(folder / f"data_batch_{i}")] for i in range(1, 6)],
    )
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", _md5(folder / "test_batch")]])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": _md5(folder / "batches.meta")})
    data = datasets.load("cifar10", tmp_path, download=False)
    assert "torchvision, md5 verified" in data.source
    assert np.array_equal(data.train_images.numpy(), _expected_nchw(train))
    assert np.array_equal(data.test_images.numpy(), _expected_nchw(test))
    assert data.train_labels.tolist() == train_labels and data.test_labels.tolist() == test_labels


def test_cifar_with_other_md5_goes_through_the_pickle_reader(tmp_path: Path) -> None:
    train, train_labels, test, test_labels = write_cifar(tmp_path)
    data = datasets.load_cifar10(tmp_path, download=False)
    assert "md5 differs" in data.source
    assert data.train_images.shape == (40, 3, 32, 32) and data.test_images.shape == (10, 3, 32, 32)
    assert np.array_equal(data.train_images.numpy(), _expected_nchw(train))
    assert np.array_equal(data.test_images.numpy(), _expected_nchw(test))
    assert data.train_labels.tolist() == train_labels and data.test_labels.tolist() == test_labels
    # Document 001: ToTensor then Normalize((0.5,)*3, (0.5,)*3), no padding.
    x = data.model_input(data.test_images[:2], channels=3)
    expected = torch.from_numpy(_expected_nchw(test)[:2]).float() / 255 * 2 - 1
    torch.testing.assert_close(x, expected)


@pytest.mark.parametrize(
    "damage",
    ["garbage", "truncated", "wrong_shape", "labels_short", "meta"],
)
def test_corrupt_cifar_is_reported(tmp_path: Path, damage: str) -> None:
    write_cifar(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    batch = folder / "data_batch_3"
    if damage == "garbage":
        batch.write_bytes(b"\x00\x01 not a pickle")
    elif damage == "truncated":
        batch.write_bytes(batch.read_bytes()[:500])
    elif damage == "wrong_shape":
        _pickle(batch, {"data": np.zeros((8, 100), np.uint8), "labels": [0] * 8})
    elif damage == "labels_short":
        _pickle(batch, {"data": np.zeros((8, 3072), np.uint8), "labels": [0] * 3})
    else:
        _pickle(folder / "batches.meta", {"num_vis": 3072})
    with pytest.raises(UserError, match="corrupt") as err:
        datasets.load_cifar10(tmp_path, download=False)
    assert str(folder) in str(err.value) and "cifar-10-python.tar.gz" in str(err.value)


def test_missing_cifar_says_where_and_how(tmp_path: Path) -> None:
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(UserError, match="not found") as err:
        datasets.load_cifar10(tmp_path, download=False)
    assert str(tmp_path / "cifar-10-batches-py") in str(err.value)


def test_cli_exits_2_with_the_message_for_a_bad_data_dir(tmp_path: Path, capsys) -> None:
    code = main(
        [
            "train",
            "--model",
            "lenet5",
            "--dataset",
            "mnist",
            "--no-download",
            "--data-dir",
            str(tmp_path / "empty"),
            "--out",
            str(tmp_path / "run"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "MNIST files not found" in err and str(tmp_path / "empty" / "MNIST" / "raw") in err
    assert "Traceback" not in err


def test_cli_exits_2_for_corrupt_cifar(tmp_path: Path, capsys) -> None:
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"junk")
    code = main(
        [
            "train",
            "--model",
            "cifar_cnn",
            "--dataset",
            "cifar10",
            "--no-download",
            "--data-dir",
            str(tmp_path),
            "--out",
            str(tmp_path / "run"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "test_batch is not a readable pickle" in err and "Traceback" not in err


# ---------------------------------------------------------------------- digits, synthetic


def test_digits_split_is_fixed_and_stratified() -> None:
    a, b = datasets.load_digits(), datasets.load_digits()
    assert a.train_images.shape == (1437, 1, 28, 28) and a.test_images.shape == (360, 1, 28, 28)
    assert torch.equal(a.test_images, b.test_images) and torch.equal(a.train_labels, b.train_labels)
    assert a.image_shape == (1, 32, 32)
    test_counts = torch.bincount(a.test_labels, minlength=10).float()
    all_counts = test_counts + torch.bincount(a.train_labels, minlength=10)
    # Stratified: every class holds its share of the test split to within one image.
    assert torch.all((test_counts - all_counts * 360 / 1797).abs() <= 1.0)
    # Standardized with the training split's own moments.
    x = a.model_input(a.train_images, channels=1)
    assert abs(float(x.mean())) < 1e-3 and abs(float(x.std()) - 1) < 1e-3


def test_channel_adaptation() -> None:
    grey = datasets.load_digits()
    x1 = grey.model_input(grey.test_images[:4], channels=1)
    x3 = grey.model_input(grey.test_images[:4], channels=3)
    assert x3.shape == (4, 3, 32, 32)
    for c in range(3):
        assert torch.equal(x3[:, c], x1[:, 0])
    colour = datasets.synthetic(channels=3, n_train=8, n_test=4)
    g = colour.model_input(colour.test_images, channels=1)
    torch.testing.assert_close(g, TF.rgb_to_grayscale(colour.model_input(colour.test_images, 3)))


def test_default_dataset_note(tmp_path: Path) -> None:
    note = datasets.default_dataset_note("mnist", tmp_path)
    assert note is not None and "digits" in note and str(tmp_path / "MNIST" / "raw") in note
    write_mnist(tmp_path, n_train=2, n_test=2)
    assert datasets.default_dataset_note("mnist", tmp_path) is None


@pytest.mark.parametrize(("n_train", "n_test"), [(12, None), (None, 3), (7, 1), (80, 9)])
def test_limits_keep_the_first_images_of_one_split(n_train, n_test) -> None:
    full = datasets.synthetic(channels=1, n_train=50, n_test=5)
    data = full.limit_train(n_train).limit_test(n_test)
    kept_train, kept_test = min(n_train or 50, 50), min(n_test or 5, 5)
    assert torch.equal(data.train_images, full.train_images[:kept_train])
    assert torch.equal(data.test_labels, full.test_labels[:kept_test])
    assert len(data.test_images) == kept_test and len(data.train_labels) == kept_train
    if n_test is not None:
        assert f"first {kept_test} test images" in data.source


def test_limit_train_and_unknown_dataset() -> None:
    data = datasets.synthetic(channels=1, n_train=50, n_test=5).limit_train(12)
    assert len(data.train_labels) == 12 and len(data.test_labels) == 5
    with pytest.raises(UserError, match="positive"):
        data.limit_train(0)
    with pytest.raises(UserError, match="--limit-test must be a positive"):
        data.limit_test(-1)
    with pytest.raises(UserError, match="mnist, cifar10, digits"):
        datasets.load("imagenet")
