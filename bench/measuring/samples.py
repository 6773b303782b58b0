"""The raw timing samples of a row, kept in results.csv's ``samples_ms`` column beside the
percentiles made from them, so `sepbench compare` can test two runs' samples for a difference
(Mann-Whitney U) instead of comparing p20-p80 intervals.

One cell holds a row's samples in ms, space-separated, 6 significant digits: about 5 samples of
10 characters a row on CPU (blocked_autorange's blocks), 8 KB for the quick CPU report's 131
timed rows. A row without samples (GPU do_bench keeps quantiles only, files written before the
column existed) holds nothing, and compare falls back to the percentiles for it.
"""

from __future__ import annotations

import math

from bench.measuring.timing import Timing

COLUMN = "samples_ms"


def encode(samples_ms: tuple[float, ...] | list[float]) -> str:
    """(0.1234567, 0.2) -> "0.123457 0.2"; () -> ""."""
    return " ".join(f"{s:.6g}" for s in samples_ms)


def decode(cell: object) -> tuple[float, ...]:
    """A ``samples_ms`` cell back to floats: empty, NaN (pandas' empty cell) or a non-text value
    is no samples; a cell that holds anything but positive finite numbers is none either, so a
    hand-edited file cannot feed the test garbage."""
    if not isinstance(cell, str) or not cell.strip():
        return ()
    try:
        values = tuple(float(part) for part in cell.split())
    except ValueError:
        return ()
    if not all(math.isfinite(v) and v > 0 for v in values):
        return ()
    return values


def columns(measured: Timing) -> dict[str, str]:
    """The row fields holding ``measured``'s samples (what the runner adds to a timed row)."""
    return {COLUMN: encode(measured.samples_ms)}
