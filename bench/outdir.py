"""Where a command may write: the one guard every output folder passes before anything is
written into it (report, train and compare-training call it; any command that fills a folder can).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

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
