"""The training data of the documents: MNIST, CIFAR-10, scikit-learn's digits, synthetic tensors.

Every dataset is held in memory as uint8 images (N, C, H, W) plus int64 labels, and turned into
model input one batch at a time (``ImageData.model_input``): scale to [0, 1], pad, normalize,
adapt the channel count. That is what torchvision's Pad / ToTensor / Normalize do per image, done
once per batch on the training device (MNIST/CIFAR-10 fit on any GPU as uint8: 47 / 150 MB).

Files: bench.experiments.data makes them present and verified first (MNIST against pinned
SHA-256, CIFAR-10 against the official md5); torchvision then reads MNIST (``<data-dir>/MNIST/raw``,
IDX files) and CIFAR-10 (``<data-dir>/cifar-10-batches-py``, python pickles). torchvision only
accepts CIFAR-10 pickles whose md5 matches the official release, so files with other checksums (a
subset, a re-export, the small files the tests write) are read by ``_read_cifar_pickles`` in the
same standard format and validated field by field. Missing or unreadable files raise
``UserError`` saying where the files are expected and how to get them.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

from bench.errors import UserError
from bench.experiments.data import (
    CIFAR_TRAIN_FILES,
    cifar_folder,
    cifar_help,
    cifar_present,
    first_line,
    mnist_help,
    mnist_present,
    mnist_raw_folder,
    prepare_cifar10,
    prepare_mnist,
)

DATASETS = ("mnist", "cifar10", "digits", "synthetic")
NUM_CLASSES = 10
# Document 003: MNIST mean / std; document 001: (0.5, 0.5, 0.5) for both moments on CIFAR-10.
MNIST_NORMALIZE = ((0.1307,), (0.3081,))
CIFAR_NORMALIZE = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
DIGITS_TEST_FRACTION = 0.2  # stratified, random_state 0: 1437 train / 360 test images


@dataclass(frozen=True)
class ImageData:
    """A train/test split as uint8 images (N, C, H, W) and int64 labels, plus its preprocessing."""

    name: str
    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    pad: int  # zero padding on every side, applied before normalization (document 003's Pad(2))
    source: str  # where the data came from, for the run's log

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one model input before channel adaptation."""
        c, h, w = self.train_images.shape[1:]
        return c, h + 2 * self.pad, w + 2 * self.pad

    def limit_train(self, n: int | None) -> ImageData:
        """The first ``n`` training images (quick checks); the test split is unchanged."""
        return self._first(n, "train", "training")

    def limit_test(self, n: int | None) -> ImageData:
        """The first ``n`` test images: timing runs on synthetic data, whose accuracy is chance by
        construction and whose full evaluation would cost more than the timed steps."""
        return self._first(n, "test", "test")

    def _first(self, n: int | None, split: str, words: str) -> ImageData:
        if n is None:
            return self
        if n < 1:
            raise UserError(f"--limit-{split} must be a positive number of images, got {n}")
        images, labels = getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")
        return replace(
            self,
            **{f"{split}_images": images[:n], f"{split}_labels": labels[:n]},
            source=f"{self.source}, first {min(n, len(labels))} {words} images",
        )

    def to(self, device: torch.device | str) -> ImageData:
        return ImageData(
            self.name,
            self.train_images.to(device),
            self.train_labels.to(device),
            self.test_images.to(device),
            self.test_labels.to(device),
            self.mean,
            self.std,
            self.pad,
            self.source,
        )

    def model_input(self, images: Tensor, channels: int) -> Tensor:
        """uint8 (B, C, H, W) -> float32 model input with ``channels`` channels."""
        x = images.float().div_(255.0)
        if self.pad:
            x = TF.pad(x, [self.pad])
        x = TF.normalize(x, list(self.mean), list(self.std))
        if x.shape[1] == channels:
            return x
        if x.shape[1] == 1:  # grey digits into a colour model (cifar_cnn on digits/MNIST)
            return x.expand(-1, channels, -1, -1)
        if channels == 1:  # colour into a grey model: luminance, after per-channel normalization
            return TF.rgb_to_grayscale(x)
        raise UserError(
            f"cannot feed {x.shape[1]}-channel {self.name} images to a model that "
            f"takes {channels} channels"
        )


def load(
    name: str,
    data_dir: str | Path = "data",
    *,
    download: bool = True,
    channels: int = 3,
) -> ImageData:
    """Load dataset ``name`` (one of DATASETS). ``channels`` only shapes the synthetic data."""
    data_dir = Path(data_dir)
    if name == "mnist":
        return load_mnist(data_dir, download=download)
    if name == "cifar10":
        return load_cifar10(data_dir, download=download)
    if name == "digits":
        return load_digits()
    if name == "synthetic":
        return synthetic(channels)
    raise UserError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


# ---------------------------------------------------------------------------------------- MNIST


def load_mnist(data_dir: str | Path, *, download: bool = True) -> ImageData:
    """MNIST through torchvision: 60,000 / 10,000 28x28 images, padded to 32x32 (document 003)."""
    from torchvision.datasets import MNIST

    data_dir = Path(data_dir)
    raw = mnist_raw_folder(data_dir)
    prepare_mnist(data_dir, download=download)  # present, decompressed, SHA-256 checked
    splits = []
    for train in (True, False):
        try:
            ds = MNIST(str(data_dir), train=train, download=False)
            images, labels = ds.data, ds.targets
        except Exception as err:
            raise UserError(
                f"the MNIST files in {raw}/ are unreadable or corrupt "
                f"({first_line(err)}). {mnist_help(data_dir)}"
            ) from None
        _check_split(images.unsqueeze(1), labels, (1, 28, 28), f"MNIST in {raw}/", data_dir)
        splits += [images.unsqueeze(1).contiguous(), labels.long()]
    return ImageData("mnist", *splits, *MNIST_NORMALIZE, pad=2, source=f"MNIST from {raw}/")


# ------------------------------------------------------------------------------------- CIFAR-10


def load_cifar10(data_dir: str | Path, *, download: bool = True) -> ImageData:
    """CIFAR-10: 50,000 / 10,000 32x32 RGB images. The official files (md5 as torchvision
    records them) load through torchvision; others through ``_read_cifar_pickles``."""
    from torchvision.datasets import CIFAR10

    data_dir = Path(data_dir)
    folder = cifar_folder(data_dir)
    official = prepare_cifar10(data_dir, download=download, strict=False).official
    splits = []
    for train in (True, False):
        try:
            if official:
                ds = CIFAR10(str(data_dir), train=train, download=False)
                images, labels = ds.data, ds.targets
            else:
                images, labels = _read_cifar_pickles(folder, train)
        except UserError:
            raise
        except Exception as err:
            raise UserError(
                f"the CIFAR-10 files in {folder}/ are unreadable or corrupt "
                f"({first_line(err)}). {cifar_help(data_dir)}"
            ) from None
        images = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))  # NHWC->NCHW
        labels = torch.as_tensor(labels, dtype=torch.long)
        _check_split(images, labels, (3, 32, 32), f"CIFAR-10 in {folder}/", data_dir)
        splits += [images, labels]
    how = "torchvision, md5 verified" if official else "sepbench's pickle reader: md5 differs"
    return ImageData(
        "cifar10", *splits, *CIFAR_NORMALIZE, pad=0, source=f"CIFAR-10 from {folder}/ ({how})"
    )


def _read_cifar_pickles(folder: Path, train: bool) -> tuple[np.ndarray, list[int]]:
    """The CIFAR-10 python format: each batch a pickled dict with "data" (n, 3072) uint8 in
    channel-major order and "labels" (n ints); batches.meta holds the 10 "label_names"."""
    meta = _unpickle(folder / "batches.meta")
    if not isinstance(meta, dict) or len(meta.get("label_names", ())) != NUM_CLASSES:
        raise UserError(
            f"{folder / 'batches.meta'} has no list of {NUM_CLASSES} 'label_names'; "
            f"it is corrupt. {cifar_help(folder.parent)}"
        )
    images, labels = [], []
    for name in CIFAR_TRAIN_FILES if train else ("test_batch",):
        entry = _unpickle(folder / name)
        data = entry.get("data") if isinstance(entry, dict) else None
        batch_labels = entry.get("labels") if isinstance(entry, dict) else None
        if (
            not isinstance(data, np.ndarray)
            or data.dtype != np.uint8
            or data.ndim != 2
            or data.shape[1] != 3 * 32 * 32
            or batch_labels is None
            or len(batch_labels) != len(data)
        ):
            raise UserError(
                f"{folder / name} is not a CIFAR-10 batch (a dict with 'data': uint8 (n, 3072) "
                f"and n 'labels'); it is corrupt. {cifar_help(folder.parent)}"
            )
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))  # NHWC, as torchvision
        labels.extend(int(v) for v in batch_labels)
    return np.concatenate(images), labels


def _unpickle(path: Path) -> object:
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="latin1")  # the format's python-2 pickles need latin1
    except Exception as err:
        raise UserError(
            f"{path} is not a readable pickle ({first_line(err)}); it is corrupt. "
            f"{cifar_help(path.parent.parent)}"
        ) from None


# --------------------------------------------------------------------------- digits, synthetic


def load_digits() -> ImageData:
    """scikit-learn's bundled 8x8 digits (1,797 images, offline), upsampled to 28x28 and padded to
    32x32 like MNIST, with a fixed stratified train/test split."""
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    digits = sk_load_digits()
    x = torch.from_numpy(digits.images).float().unsqueeze(1) * (255.0 / 16.0)  # 0..16 -> 0..255
    x = TF.resize(x, [28, 28], interpolation=TF.InterpolationMode.BILINEAR, antialias=False)
    images = x.round_().clamp_(0, 255).to(torch.uint8)
    labels = torch.from_numpy(digits.target).long()
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)),
        test_size=DIGITS_TEST_FRACTION,
        stratify=digits.target,
        random_state=0,
    )
    train_idx, test_idx = torch.from_numpy(train_idx), torch.from_numpy(test_idx)
    # Standardize with the training split's own moments (document 003: zero mean, unit variance).
    padded = TF.pad(images[train_idx].float() / 255.0, [2])
    mean, std = (padded.mean().item(),), (padded.std().item(),)
    return ImageData(
        "digits",
        images[train_idx],
        labels[train_idx],
        images[test_idx],
        labels[test_idx],
        mean,
        std,
        pad=2,
        source=f"scikit-learn digits, 8x8 upsampled to 28x28 and padded to 32x32, stratified "
        f"split {len(train_idx)} train / {len(test_idx)} test (random_state 0)",
    )


def synthetic(channels: int = 3, n_train: int = 10_000, n_test: int = 1_000) -> ImageData:
    """Uniform random 32x32 images and labels (seed 0): epoch time and images/s without a dataset
    on disk. Accuracy on it is chance (~10%) by construction."""
    g = torch.Generator().manual_seed(0)
    n = n_train + n_test
    images = torch.randint(0, 256, (n, channels, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, NUM_CLASSES, (n,), generator=g)
    mean, std = (0.5,) * channels, (0.5,) * channels
    return ImageData(
        "synthetic",
        images[:n_train],
        labels[:n_train],
        images[n_train:],
        labels[n_train:],
        mean,
        std,
        pad=0,
        source=f"synthetic uniform noise, {channels}x32x32, random labels (seed 0)",
    )


# -------------------------------------------------------------------------------------- helpers


def _check_split(
    images: Tensor, labels: Tensor, shape: tuple[int, ...], what: str, data_dir: Path
) -> None:
    help_text = mnist_help(data_dir) if shape[0] == 1 else cifar_help(data_dir)
    if tuple(images.shape[1:]) != shape or images.dtype != torch.uint8:
        raise UserError(
            f"{what}: images are {images.dtype} {tuple(images.shape[1:])}, expected "
            f"uint8 {shape}; the files are corrupt. {help_text}"
        )
    if len(images) != len(labels) or len(labels) == 0:
        raise UserError(
            f"{what}: {len(images)} images but {len(labels)} labels; the files are "
            f"corrupt or truncated. {help_text}"
        )
    if int(labels.min()) < 0 or int(labels.max()) >= NUM_CLASSES:
        raise UserError(
            f"{what}: labels outside 0..{NUM_CLASSES - 1}; the files are corrupt. {help_text}"
        )


def default_dataset_note(model_dataset: str, data_dir: str | Path) -> str | None:
    """Why the default dataset had to change, or None when the model's own is on disk."""
    present = mnist_present if model_dataset == "mnist" else cifar_present
    if present(data_dir):
        return None
    where = mnist_raw_folder(data_dir) if model_dataset == "mnist" else cifar_folder(data_dir)
    return (
        f"{model_dataset} is not in {where}/, so this run uses the offline digits dataset; "
        f"pass --dataset {model_dataset} to download it (needs network) or put its files "
        f"there"
    )
