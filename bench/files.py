"""Reading and writing the files sepbench makes: the one guard every folder argument passes
before anything is written into it, CSV writes that never leave half a file, moving a previous
result aside instead of overwriting it, and CSV reads that fail with a message naming the file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from bench.errors import UserError


def _is_ours(folder: Path, ours: Sequence[str]) -> bool:
    return any(next(folder.glob(pattern), None) is not None for pattern in ours)


def check_out_dir(path: str | Path, ours: Sequence[str], flag: str = "--out") -> Path:
    """``path`` as a folder that exists and takes files, or a UserError saying why not.

    Refused: a filesystem root; the user's home folder; a file; a folder that is not empty and
    holds none of ``ours`` (glob patterns of what sepbench writes there, e.g. "results.csv"), so
    it was not made by sepbench; a folder that cannot be created or written into. A refused
    folder is left as it was.
    """
    folder = Path(path).expanduser()
    resolved = folder.resolve()
    if resolved.parent == resolved:
        raise UserError(f"{flag} {path} is a filesystem root; give a folder of its own")
    if resolved == Path.home().resolve():
        raise UserError(f"{flag} {path} is your home folder; give a folder of its own in it")
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{flag} {path} is a file, not a folder; give a folder (it may not exist)")
    if folder.is_dir() and any(folder.iterdir()) and not _is_ours(folder, ours):
        raise UserError(
            f"{flag} {path} is not empty and was not made by sepbench for this command "
            f"(none of {', '.join(ours)} in it); give a new or empty folder"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".sepbench-probe-", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as err:
        raise UserError(f"{flag} {path}: cannot write there ({err.strerror or err})") from None
    return folder


def write_csv_atomic(df: pd.DataFrame, path: str | Path, *, make_parents: bool = True) -> Path:
    """Write to a temp file beside ``path`` and rename over it: never a half-written CSV. An
    unwritable place is a UserError naming it. ``make_parents=False`` for a path the user typed
    (--csv): a missing folder there is more likely a typo than a wish."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if make_parents:
            path.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(tmp, index=False)
        os.replace(tmp, path)
    except OSError as err:
        _discard(tmp)
        raise UserError(f"cannot write CSV to {str(path)!r}: {err.strerror or err}") from None
    except BaseException:  # Ctrl-C mid-write: leave no temp file behind
        _discard(tmp)
        raise
    return path


def _discard(tmp: Path) -> None:
    # Where the folder is a file (--csv FILE/a.csv) the unlink fails the same way the write did.
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)


def check_data_dir(path: str | Path, flag: str = "--data-dir") -> Path:
    """``path`` as a folder that holds datasets or can be made to (downloads go there), or a
    UserError saying why not: a file; a folder that cannot be read; one that does not exist and
    cannot be created (under /proc, say). Unlike check_out_dir it takes a folder holding anything
    (torchvision's root is shared with other datasets). A folder this check had to create to
    prove it can be is removed again: nothing is left behind by a refused or unused argument."""
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{flag} {path} is a file, not a folder; give the datasets' folder")
    if folder.is_dir():
        if not os.access(folder, os.R_OK | os.X_OK):
            raise UserError(f"{flag} {path}: cannot read it (permission denied)")
        return folder
    created = []
    try:
        for parent in reversed([folder, *folder.parents]):
            if not parent.exists():
                parent.mkdir()
                created.append(parent)
    except OSError as err:
        raise UserError(
            f"{flag} {path}: cannot create it ({err.strerror or err}); give a folder that "
            "exists or can be made"
        ) from None
    finally:
        for made in reversed(created):
            with contextlib.suppress(OSError):
                made.rmdir()
    return folder


def move_aside(path: Path, sha: str | None = None) -> Path:
    """results.csv -> results-<sha>-<time last written>.csv beside it (a free name); ``sha``
    names the code that wrote it, when one SHA did."""
    stamp = dt.datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y%m%dT%H%M%S")
    name = f"{path.stem}-{sha}-{stamp}" if sha else f"{path.stem}-{stamp}"
    target, n = path.with_name(name + path.suffix), 1
    while target.exists():
        n += 1
        target = path.with_name(f"{name}-{n}{path.suffix}")
    os.replace(path, target)
    return target


def read_csv(path: str | Path, what: str = "") -> pd.DataFrame:
    """A CSV file as a DataFrame, or a UserError naming the file and what is wrong: missing, a
    folder, unreadable, not UTF-8 text, empty, not a CSV. A last line without its newline (a
    writer killed mid-line; write_csv_atomic never leaves one) is dropped and counted in
    ``df.attrs["dropped"]``. ``what`` prefixes the message (the flag that named the file)."""
    path = Path(path)
    where = f"{what}: {path}" if what else str(path)
    if not path.exists():
        raise UserError(f"{where} does not exist")
    if path.is_dir():
        raise UserError(f"{where} is a folder, not a CSV file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{where} is not a CSV: binary data at byte {err.start}") from None
    except OSError as err:
        raise UserError(f"{where}: cannot read it ({err.strerror or err})") from None
    if "\0" in text[:4096]:
        raise UserError(f"{where} is not a CSV: binary data (a NUL byte) in its first 4 KB")
    dropped = 0
    if text and not text.endswith("\n") and "\n" in text:
        text, dropped = text[: text.rindex("\n") + 1], 1
    try:
        df = pd.read_csv(io.StringIO(text))
    except pd.errors.EmptyDataError:
        raise UserError(f"{where} is empty: no header, no rows") from None
    except pd.errors.ParserError as err:
        raise UserError(f"{where} is not a readable CSV: {err}") from None
    df.attrs["dropped"] = dropped
    return df
