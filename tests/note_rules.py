"""The rules every note of `sepbench count` keeps, as assertions on a count's numbers (tests/
is on sys.path): shared by the tests that count models."""

from __future__ import annotations

import re

import pandas as pd

COUNTERS = (
    ("fvcore", "macs_fvcore", 1),
    ("torch", "flops_torch", 2),
    ("ptflops", "macs_ptflops", 1),
)
# Phrases by which a note says a counter saw nothing (or less) there, and says it counted.
SHORTFALL = re.compile(r" 0 for |no handle for|no rule for|does not patch|saw none|gets no hook")
COUNTS = {
    "fvcore": re.compile(r"fvcore's \w+ handle counts"),
    "torch": re.compile(r"FlopCounterMode counts"),
    "ptflops": re.compile(r"ptflops' (\S+ hook|patched \S+) (counts|adds)|ptflops counts"),
}


def assert_notes_hold(df: pd.DataFrame) -> None:
    """The note rules on every row: each counter's causes add up to its difference from the
    formula, all are known conventions, a shortfall is a negative share, and a cause that says
    a counter counts something sits on a row where that counter's count is positive."""
    for _, row in df.iloc[:-1].iterrows():
        if pd.isna(row["macs_formula"]):
            continue
        reasons = df.attrs["reasons"][row["layer"]]
        for counter, column, per_mac in COUNTERS:
            mine = [r for r in reasons if r.counter == counter]
            if pd.isna(row[column]):
                assert not mine
                continue
            difference = row[column] / per_mac - row["macs_formula"]
            assert sum(r.delta for r in mine) == difference, (row["layer"], counter, mine)
            for r in mine:
                assert r.known, (row["layer"], r)
                if SHORTFALL.search(r.text):
                    assert r.delta < 0, (row["layer"], r)
                if COUNTS[counter].search(r.text):
                    assert row[column] > 0, (row["layer"], r)
