"""Where the claims' evidence comes from: a report folder's results.csv and the training results
of `sepbench experiments` (reports/experiments/ of this checkout by default)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.errors import UserError
from bench.experiments.seeded_runs import COMPARISON, load_runs
from bench.files import read_csv
from bench.measuring.results import RESULTS_CSV, load_results
from bench.provenance import REPO_ROOT


def results_of(folder: str | Path) -> pd.DataFrame:
    """A report folder's results.csv (or that file itself), checked by the results schema."""
    path = Path(folder)
    path = path if path.is_file() else path / RESULTS_CSV
    if not path.exists():
        raise UserError(f"--results: {path} does not exist")
    try:
        return load_results(path)
    except UserError as err:
        raise UserError(f"--results: {err}") from None


def training_of(folder: str | Path) -> pd.DataFrame:
    """The comparison.csv of an experiments (or compare-training) folder."""
    if Path(folder).is_file():
        raise UserError(
            f"--training {folder} is a file, not a folder; give an experiments folder (one "
            f"holding {COMPARISON}, like reports/experiments)"
        )
    return read_csv(Path(folder) / COMPARISON, "--training")


def training_epochs_of(folder: str | Path) -> pd.DataFrame | None:
    """The per-epoch rows of an experiments folder (runs/*.csv); None for a compare-training
    folder, which has none."""
    epochs = load_runs(Path(folder))
    return None if epochs.empty else epochs


def default_training_folder() -> str | None:
    """reports/experiments/ of this checkout when `make experiments` has written it, else None."""
    folder = REPO_ROOT / "reports" / "experiments"
    return str(folder) if (folder / COMPARISON).is_file() else None
