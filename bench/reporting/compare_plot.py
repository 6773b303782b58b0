"""compare.png: each matched row's change NEW vs BASE (the metric its verdict used), its runs'
p20-p80 spread, the noise band between the runs and the failure threshold.

Readable at its size: one labelled x tick per "nice" ratio in view and no minor-tick labels
(labelling every minor tick of a log axis overlapped the labels of the 1100x3335 px plot of a
157-row comparison), and 0.2 inch per row label.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd

from bench.reporting.compare_stats import METRIC_TEXT

_COLORS = {
    "faster": "tab:green",
    "slower": "tab:red",
    "within noise": "tab:gray",
    "not judged": "tab:purple",
}
# Ratios that may carry a labelled tick, the roundest first: a tick is kept only when it is far
# enough (in log) from every tick already kept.
_NICE = (
    1.0, 2.0, 0.5, 10.0, 0.1, 1.5, 0.67, 5.0, 0.2, 3.0, 0.3,
    1.25, 0.8, 20.0, 1.1, 0.9, 1.05, 0.95,
)  # fmt: skip
# Labels at least this fraction of the axis apart (a "0.95" label is 3% of a 10-inch axis wide).
MIN_TICK_GAP = 0.075


def ratio_ticks(lo: float, hi: float, min_gap: float = MIN_TICK_GAP) -> list[float]:
    """Nice ratios inside [lo, hi] (log axis), 1 always, none closer to another than
    ``min_gap`` of the axis: labels never overlap, whatever the range."""
    span = math.log(hi / lo) if hi > lo > 0 else 1.0
    kept: list[float] = []
    for t in _NICE:
        if lo <= t <= hi and all(abs(math.log(t / k)) >= min_gap * span for k in kept):
            kept.append(t)
    return sorted(kept) or [1.0]


def _label(row: pd.Series) -> str:
    return f"{row['workload']} / {row['provider']} / {row['dtype']} / N{row['batch']}"


def plot(
    table: pd.DataFrame,
    pairs: Sequence,
    fail_above: float | None,
    path: Path,
    providers: pd.DataFrame | None = None,
) -> Path:
    """Draw compare.png from the comparison table (compare.compare_runs), its pairs' info and
    the provider verdicts (rows of a provider called slower or faster get a ring)."""
    matched = table.dropna(subset=["change_pct"]).sort_values(["suite", "workload", "provider"])
    runs = list(dict.fromkeys(matched["run"]))
    labels = list(dict.fromkeys(matched.apply(_label, axis=1)))
    y_of = {lab: i for i, lab in enumerate(labels)}
    fig, ax = plt.subplots(figsize=(13, max(3.0, 0.2 * len(labels) + 1.8)))
    change = 1 + matched["change_pct"] / 100
    low = matched["new_p20"] / matched["base_p80"] / matched["drift"]
    high = matched["new_p80"] / matched["base_p20"] / matched["drift"]
    for k, run in enumerate(runs):
        part = matched["run"] == run
        offset = (k - (len(runs) - 1) / 2) * 0.25
        ys = np.array([y_of[_label(r)] for _, r in matched[part].iterrows()]) + offset
        ax.hlines(
            ys,
            low[part],
            high[part],
            color="0.75",
            lw=3,
            zorder=1,
            label="p20-p80 of both runs" if k == 0 else None,
        )
        for verdict, color in _COLORS.items():
            sel = (matched.loc[part, "verdict"] == verdict).to_numpy()
            if sel.any():
                ax.scatter(
                    change[part][sel],
                    ys[sel],
                    color=color,
                    s=18,
                    zorder=2,
                    marker="os^D"[k % 4],
                    label=f"{run}: {verdict}" if len(runs) > 1 else verdict,
                )
    _rings(ax, matched, providers, y_of, runs)
    for info in pairs:
        if math.isfinite(info.noise_pct) and info.noise_pct > 0:
            band = 1 + info.noise_pct / 100
            ax.axvspan(1 / band, band, color="tab:blue", alpha=0.07, zorder=0)
    if pairs and math.isfinite(pairs[0].noise_pct) and pairs[0].noise_pct > 0:
        ax.plot([], [], color="tab:blue", alpha=0.3, lw=6, label="noise between the runs")
    ax.axvline(1.0, color="black", lw=0.8)
    if fail_above is not None:
        ax.axvline(1 + fail_above / 100, color="tab:orange", lw=1.2, ls="--")
        ax.plot([], [], color="tab:orange", ls="--", label=f"fails above +{fail_above:g}%")
    finite = pd.concat([low, high, change]).replace([np.inf, -np.inf], np.nan).dropna()
    finite = finite[finite > 0]
    bands = [1 + p.noise_pct / 100 for p in pairs if 0 < p.noise_pct < 900]  # NaN: none
    if bands:  # show where the noise band ends
        finite = pd.concat([finite, pd.Series([max(bands), 1 / max(bands)])])
    lo = min(float(finite.min()) if len(finite) else 1.0, 0.95) / 1.05
    hi = max(float(finite.max()) if len(finite) else 1.0, 1.05, 1 + (fail_above or 0) / 100) * 1.05
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ticks = ratio_ticks(lo, hi)
    ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FixedFormatter([f"{t:g}" for t in ticks]))
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_ylim(len(labels) - 0.5, -0.5)  # first row on top, no empty margin
    metrics = sorted({m for m in matched["metric"] if m})
    ax.set_xlabel(
        "change NEW vs BASE (log scale; < 1 is faster): "
        + "; ".join(METRIC_TEXT[m].split(":")[0] for m in metrics)
    )
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # never over a row
    base = table["base"].iloc[0] if len(table) else ""
    ax.set_title("sepbench compare: " + ", ".join(runs) + f" vs {base}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")  # long row labels are never cut
    plt.close(fig)
    return path


def _rings(ax, matched: pd.DataFrame, providers, y_of: dict, runs: list) -> None:
    """A ring around each row of a provider judged slower or faster over all its rows."""
    if providers is None or providers.empty:
        return
    called = providers[providers["verdict"].isin(["slower", "faster"])]
    for verdict, color in (("slower", "tab:red"), ("faster", "tab:green")):
        keys = called[called["verdict"] == verdict][["run", "kind", "provider", "dtype"]]
        part = matched.merge(keys, on=["run", "kind", "provider", "dtype"])
        if part.empty:
            continue
        ys = [
            y_of[_label(r)] + (runs.index(r["run"]) - (len(runs) - 1) / 2) * 0.25
            for _, r in part.iterrows()
        ]
        ax.scatter(
            1 + part["change_pct"] / 100,
            ys,
            s=70,
            facecolors="none",
            edgecolors=color,
            lw=1.2,
            zorder=3,
            label=f"its provider {verdict} over all its rows",
        )
