"""The output-folder guard every writing command shares: roots, home, files, foreign folders
and unwritable folders are refused with a message; new, empty and sepbench's own folders pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.errors import UserError
from bench.files import check_out_dir

OURS = ("results.csv",)


def test_new_nested_folder_is_created(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    assert check_out_dir(target, OURS) == target
    assert target.is_dir() and not any(target.iterdir())  # the write probe left nothing


@pytest.mark.parametrize("content", [None, "results.csv", "sub/metrics.csv"])
def test_empty_and_own_folders_pass(tmp_path: Path, content: str | None) -> None:
    if content:  # a folder of ours holds other files beside its marker
        (tmp_path / content).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / content).write_text("suite\n")
        (tmp_path / "plot.png").write_bytes(b"x")
    assert check_out_dir(tmp_path, ("results.csv", "*/metrics.csv")) == tmp_path


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (lambda tmp: Path("/"), "filesystem root"),
        (lambda tmp: Path.home(), "home folder"),
        (lambda tmp: Path("~"), "home folder"),
        (lambda tmp: _file(tmp), "is a file"),
        (lambda tmp: _foreign(tmp), "not made by sepbench"),
        (lambda tmp: _file(tmp) / "below", "cannot write there"),
    ],
    ids=["root", "home", "tilde", "file", "foreign", "below-a-file"],
)
def test_refused_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where, message: str):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # a home of the test's own
    (tmp_path / "home").mkdir()
    target = where(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(UserError, match=message):
        check_out_dir(target, OURS)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_read_only_folder_is_refused(read_only_dir: Path) -> None:
    with pytest.raises(UserError, match="cannot write there"):
        check_out_dir(read_only_dir, OURS)


def _file(tmp: Path) -> Path:
    path = tmp / "a-file"
    path.write_text("not a folder")
    return path


def _foreign(tmp: Path) -> Path:
    folder = tmp / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"\xff\xd8")
    return folder
