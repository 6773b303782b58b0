"""Mean and spread over seeds, and whether two models differ beyond the seed-to-seed noise.

Seeds are few (three by default), so the spread is the sample standard deviation, intervals use
Student's t (95%: mean +- 4.30 sd/sqrt(3) with three seeds), and two models are compared with
Welch's t-test (scipy), which does not assume equal spreads. A difference whose p-value is 0.05 or
more is reported as "inside the noise", not as a gap.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

NOISE_P = 0.05  # a difference with Welch's p at or above this is inside the seed-to-seed noise


@dataclass(frozen=True)
class Spread:
    """One quantity over seeds."""

    mean: float
    sd: float  # sample standard deviation (ddof 1); nan with one seed
    n: int
    low: float  # smallest seed
    high: float  # largest seed

    @property
    def ci95(self) -> tuple[float, float]:
        """95% interval of the mean (Student's t); (mean, mean) with one seed."""
        if self.n < 2:
            return self.mean, self.mean
        half = stats.t.ppf(0.975, self.n - 1) * self.sd / math.sqrt(self.n)
        return self.mean - half, self.mean + half

    def text(self, scale: float = 1.0, unit: str = "", digits: int = 2, count: bool = True) -> str:
        """'98.91% +- 0.05 (3 seeds, 98.86-98.95)'; ``scale`` converts (100 for %), ``count``
        False leaves out the number of seeds (a table that has a column for it)."""
        m, lo, hi = self.mean * scale, self.low * scale, self.high * scale
        if self.n < 2:
            return f"{m:.{digits}f}{unit} (1 seed)"
        seeds = f"{self.n} seeds, " if count else ""
        return (
            f"{m:.{digits}f}{unit} +- {self.sd * scale:.{digits}f} "
            f"({seeds}{lo:.{digits}f}-{hi:.{digits}f})"
        )


def spread(values: object) -> Spread:
    """Spread of the finite values in ``values`` (a sequence or a pandas Series)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise ValueError("no finite values to summarize")
    sd = float(v.std(ddof=1)) if v.size > 1 else float("nan")
    return Spread(float(v.mean()), sd, int(v.size), float(v.min()), float(v.max()))


@dataclass(frozen=True)
class Difference:
    """a - b over seeds, with Welch's test."""

    delta: float  # mean(a) - mean(b)
    p: float  # Welch's two-sided p-value; nan when either side has one seed or no spread at all

    @property
    def beyond_noise(self) -> bool:
        """True when the difference is larger than the seed-to-seed noise explains; never with a
        single seed on either side (no spread to judge it against)."""
        return not math.isnan(self.p) and self.p < NOISE_P

    def text(self, scale: float = 1.0, unit: str = "", digits: int = 2) -> str:
        value = f"{self.delta * scale:+.{digits}f}{unit}"
        if math.isnan(self.p):
            return f"{value} (one seed: the noise is unknown)"
        verdict = "beyond the noise" if self.beyond_noise else "inside the noise"
        return f"{value} (Welch p = {self.p:.2g}: {verdict})"


def difference(a: object, b: object) -> Difference:
    """Mean of ``a`` minus mean of ``b`` and Welch's p-value."""
    va, vb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    va, vb = va[np.isfinite(va)], vb[np.isfinite(vb)]
    delta = float(va.mean() - vb.mean())
    if va.size < 2 or vb.size < 2:
        return Difference(delta, float("nan"))
    if va.std() == 0 and vb.std() == 0:  # identical seeds on both sides: no noise at all
        return Difference(delta, 0.0 if delta != 0 else 1.0)
    with warnings.catch_warnings():  # nearly equal seeds make scipy warn of precision loss
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(stats.ttest_ind(va, vb, equal_var=False).pvalue)
    return Difference(delta, p)
