"""The counters beside the documents' formulas: per-layer parameters, formula MACs, fvcore's and
PyTorch's counts and the 1998 paper's connections. Nothing here times anything."""

from bench.counting.counters import (
    COLUMNS,
    count_model,
    count_registered,
    format_table,
    fvcore_analysis,
    fvcore_macs,
)

__all__ = [
    "COLUMNS",
    "count_model",
    "count_registered",
    "format_table",
    "fvcore_analysis",
    "fvcore_macs",
]
