"""What a claim's check reads (Evidence) and returns (Outcome), and ``@claim``, which declares a
claim on the check that judges it (bench.checking.document_claims, training_claims)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from bench.counting.counters import count_registered


@dataclass
class Outcome:
    measured: str
    method: str
    verdict: str
    note: str = ""


@dataclass
class Evidence:
    """What the checks may read: measured rows and training results, when available.

    ``training`` is a comparison.csv (one row per model and seed, from `sepbench experiments`, or
    one per model from `sepbench compare-training`); ``training_epochs`` the per-epoch rows of
    the experiments' runs/*.csv."""

    results: pd.DataFrame | None = None
    training: pd.DataFrame | None = None
    training_epochs: pd.DataFrame | None = None
    _counts: dict[str, pd.DataFrame] = field(default_factory=dict)

    def counts(self, model: str) -> pd.DataFrame:
        if model not in self._counts:
            self._counts[model] = count_registered(model)
        return self._counts[model]

    def layer(self, model: str, layer: str) -> pd.Series:
        df = self.counts(model)
        return df[df["layer"] == layer].iloc[0]


@dataclass(frozen=True)
class Claim:
    claim_id: str
    document: str  # key of bench.checking.claims.DOCS
    statement: str
    claimed: str
    check: Callable[[Evidence], Outcome]

    @property
    def module(self) -> str:
        """The module that declares it (which kind of evidence it reads)."""
        return self.check.__module__


# Every declared claim, in declaration order (bench.checking.claims imports the modules that
# declare them, in the order the verdict table lists them).
CLAIMS: list[Claim] = []


def claim(
    claim_id: str, document: str, *, statement: str, claimed: str
) -> Callable[[Callable[[Evidence], Outcome]], Callable[[Evidence], Outcome]]:
    """Declare the decorated check as the judge of one claim of ``document``."""

    def register(check: Callable[[Evidence], Outcome]) -> Callable[[Evidence], Outcome]:
        if any(c.claim_id == claim_id for c in CLAIMS):
            raise ValueError(f"claim {claim_id!r} declared twice")
        CLAIMS.append(Claim(claim_id, document, statement, claimed, check))
        return check

    return register


def verdict(ok: bool) -> str:
    return "holds" if ok else "refuted"


def in_range(value: float, lo: float, hi: float) -> bool:
    return lo <= value <= hi


def untested(needs: str, method: str) -> Outcome:
    return Outcome("not measured", method, "untested", f"needs {needs}")
