"""`sepbench compare BASE NEW [NEW ...]`: runs side by side (report folders, results.csv files or
pytest-benchmark JSON), matched on (suite, workload, provider, dtype, batch); compare.csv,
compare.md and compare.png, and the rows that regressed beyond a threshold.

A change counts only outside the noise: when the two runs' p20-p80 intervals overlap the verdict
is "within noise", whatever the medians say (the machines are noisy: DESIGN.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd

from bench.errors import UserError
from bench.files import read_csv
from bench.measuring.pytest_benchmark import rows_from_pytest_benchmark
from bench.measuring.results import KEY, work_rows

LATENCY = ("latency_ms_p20", "latency_ms_p50", "latency_ms_p80")
PROVENANCE = ("device", "torch_version", "triton_version", "git_sha")
# Same-device comparisons fail on a slowdown beyond this many percent unless --fail-above says
# otherwise; a device comparison fails only when --fail-above is given.
DEFAULT_FAIL_PCT = 10.0


@dataclass
class Run:
    label: str
    path: Path
    rows: pd.DataFrame  # timed rows: KEY + latencies + provenance


def load_run(arg: str) -> Run:
    """A report folder (its results.csv), a results.csv or a pytest-benchmark JSON file."""
    path = Path(arg)
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.is_dir():
        if not (path / "results.csv").is_file():
            raise UserError(f"{path}: a folder without results.csv (not a report folder)")
        path = path / "results.csv"
    is_json = path.suffix.lower() == ".json"
    df = rows_from_pytest_benchmark(path) if is_json else read_csv(path)
    missing = [c for c in (*KEY, *LATENCY) if c not in df.columns]
    if missing:
        raise UserError(
            f"{path}: missing columns {', '.join(missing)} (a results.csv of "
            "`sepbench report` has them)"
        )
    df = work_rows(df).copy()
    if "status" in df.columns:
        df = df[df["status"].fillna("ok") == "ok"]
    for col in LATENCY:
        df[col] = pd.to_numeric(df[col], errors="coerce")
    df = df.dropna(subset=list(LATENCY))
    df["batch"] = pd.to_numeric(df["batch"], errors="coerce").astype("Int64")
    for col in ("suite", "workload", "provider", "dtype"):
        df[col] = df[col].astype(str)
    for col in PROVENANCE:
        if col not in df.columns:
            df[col] = None
    df = df.drop_duplicates(subset=list(KEY), keep="last")
    if df.empty:
        raise UserError(f"{path}: no timed rows (status ok with latencies)")
    label = path.parent.name if path.name == "results.csv" else path.name
    return Run(label, path, df[[*KEY, *LATENCY, *PROVENANCE]].reset_index(drop=True))


def _labels(runs: list[Run]) -> None:
    """Distinct labels: a repeated folder name gets its position appended."""
    seen: dict[str, int] = {}
    for run in runs:
        seen[run.label] = seen.get(run.label, 0) + 1
    for i, run in enumerate(runs):
        if seen[run.label] > 1:
            run.label = f"{run.label}#{i}"


def devices(run: Run) -> list[str]:
    return sorted({str(d) for d in run.rows["device"].dropna()})


def _check_comparable(base: Run, new: Run) -> None:
    base_suites, new_suites = set(base.rows["suite"]), set(new.rows["suite"])
    if not base_suites & new_suites:
        raise UserError(
            f"runs of different suites: {base.path} has {sorted(base_suites)}, "
            f"{new.path} has {sorted(new_suites)}"
        )
    keys = base.rows[list(KEY)].merge(new.rows[list(KEY)], on=list(KEY))
    if keys.empty:
        raise UserError(
            f"no (suite, workload, provider, dtype, batch) in common between "
            f"{base.path} and {new.path}"
        )


def _verdict(row: pd.Series) -> str:
    if pd.isna(row["base_p50"]):
        return "only in NEW"
    if pd.isna(row["new_p50"]):
        return "only in BASE"
    overlap = row["new_p20"] <= row["base_p80"] and row["base_p20"] <= row["new_p80"]
    if overlap:
        return "within noise"
    return "slower" if row["new_p50"] > row["base_p50"] else "faster"


def compare_pair(base: Run, new: Run) -> pd.DataFrame:
    """One row per key of either run: both runs' percentiles, ratio NEW/BASE, change, verdict."""
    rename = {"latency_ms_p20": "p20", "latency_ms_p50": "p50", "latency_ms_p80": "p80"}
    b = base.rows[[*KEY, *LATENCY]].rename(columns={k: f"base_{v}" for k, v in rename.items()})
    n = new.rows[[*KEY, *LATENCY]].rename(columns={k: f"new_{v}" for k, v in rename.items()})
    table = b.merge(n, on=list(KEY), how="outer")
    table.insert(0, "run", new.label)
    table.insert(1, "base", base.label)
    table["ratio"] = table["new_p50"] / table["base_p50"]
    table["change_pct"] = (table["ratio"] - 1) * 100
    table["verdict"] = table.apply(_verdict, axis=1)
    return table


def compare_runs(paths: list[str]) -> tuple[list[Run], pd.DataFrame]:
    """Load BASE and every NEW, check they compare, and the long comparison table."""
    runs = [load_run(p) for p in paths]
    _labels(runs)
    base, news = runs[0], runs[1:]
    for new in news:
        _check_comparable(base, new)
    table = pd.concat([compare_pair(base, new) for new in news], ignore_index=True)
    return runs, table


def is_device_comparison(runs: list[Run]) -> bool:
    return len({tuple(devices(r)) for r in runs}) > 1


def regressions(table: pd.DataFrame, fail_above: float | None) -> pd.DataFrame:
    """Matched rows slower than BASE by more than ``fail_above`` percent and outside noise."""
    if fail_above is None:
        return table.iloc[0:0]
    return table[(table["verdict"] == "slower") & (table["change_pct"] > fail_above)]


def geomean_ratios(table: pd.DataFrame) -> pd.DataFrame:
    """Geometric-mean ratio NEW/BASE per run, suite and provider over the matched rows."""
    matched = table.dropna(subset=["ratio"])
    grouped = matched.groupby(["run", "suite", "provider"])["ratio"]
    out = grouped.apply(lambda r: float(np.exp(np.log(r).mean()))).rename("geomean_ratio")
    return pd.concat([out, grouped.size().rename("rows")], axis=1).reset_index()


def row_label(row: pd.Series) -> str:
    return f"{row['workload']} / {row['provider']} / {row['dtype']} / N{row['batch']}"


def _run_table(runs: list[Run]) -> pd.DataFrame:
    rows = []
    for i, run in enumerate(runs):
        info = {
            c: ", ".join(sorted({str(v) for v in run.rows[c].dropna()})) or "unknown"
            for c in PROVENANCE
        }
        rows.append(
            {
                "role": "BASE" if i == 0 else "NEW",
                "run": run.label,
                "path": str(run.path),
                **info,
                "timed rows": len(run.rows),
            }
        )
    return pd.DataFrame(rows)


def _fmt(table: pd.DataFrame) -> pd.DataFrame:
    shown = table.copy()
    for col in shown.columns:
        if col.endswith(("_p20", "_p50", "_p80")):
            shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{v:.4g}")
    shown["ratio"] = shown["ratio"].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    shown["change_pct"] = shown["change_pct"].map(lambda v: "" if pd.isna(v) else f"{v:+.1f}%")
    return shown


def write_markdown(
    runs: list[Run], table: pd.DataFrame, fail_above: float | None, path: Path, top: int = 40
) -> None:
    lines = ["# sepbench compare", ""]
    if is_device_comparison(runs):
        names = " vs ".join(", ".join(devices(r)) or "unknown" for r in runs)
        lines += [
            f"**Device comparison** ({names}): the ratios compare hardware, not code changes.",
            "",
        ]
    lines += [_run_table(runs).to_markdown(index=False), ""]
    counts = table.groupby(["run", "verdict"]).size().unstack(fill_value=0)
    lines += [
        "Ratio = NEW p50 / BASE p50 (below 1: NEW is faster). A change counts only when "
        "the p20-p80 intervals do not overlap.",
        "",
        counts.reset_index().to_markdown(index=False),
        "",
    ]
    if fail_above is not None:
        bad = regressions(table, fail_above)
        lines += [f"Regressions beyond {fail_above:g}% outside the noise: {len(bad)}", ""]
    lines += [
        "## Geometric-mean ratio per suite and provider",
        "",
        geomean_ratios(table).to_markdown(index=False, floatfmt=".3f"),
        "",
    ]
    matched = table.dropna(subset=["ratio"])
    order = matched["ratio"].map(lambda r: abs(math.log(r)) if r > 0 else 0).sort_values()
    largest = matched.loc[order.index[::-1][:top]]
    cols = ["run", *KEY, "base_p50", "new_p50", "ratio", "change_pct", "verdict"]
    lines += [
        f"## Largest changes (top {min(top, len(largest))} of {len(matched)} matched rows; "
        "all rows in compare.csv)",
        "",
        _fmt(largest[cols]).to_markdown(index=False),
        "",
    ]
    path.write_text("\n".join(lines))


_COLORS = {"faster": "tab:green", "slower": "tab:red", "within noise": "tab:gray"}


def plot(table: pd.DataFrame, fail_above: float | None, path: Path) -> None:
    """Ratio per matched row on a log axis; the bar is the noise band (NEW p20/BASE p80 to NEW
    p80/BASE p20); the shading marks +-fail_above."""
    matched = table.dropna(subset=["ratio"]).sort_values(["suite", "workload", "provider"])
    runs = list(dict.fromkeys(matched["run"]))
    labels = list(dict.fromkeys(matched.apply(row_label, axis=1)))
    y_of = {lab: i for i, lab in enumerate(labels)}
    fig, ax = plt.subplots(figsize=(10, max(3.0, 0.22 * len(labels) + 1.5)))
    for k, run in enumerate(runs):
        part = matched[matched["run"] == run]
        offset = (k - (len(runs) - 1) / 2) * 0.25
        ys = np.array([y_of[row_label(r)] for _, r in part.iterrows()]) + offset
        low = part["new_p20"] / part["base_p80"]
        high = part["new_p80"] / part["base_p20"]
        ax.hlines(
            ys,
            low,
            high,
            color="0.75",
            lw=3,
            zorder=1,
            label="noise band (p20-p80 of both)" if k == 0 else None,
        )
        for verdict, color in _COLORS.items():
            sel = (part["verdict"] == verdict).to_numpy()
            if sel.any():
                ax.scatter(
                    part["ratio"][sel],
                    ys[sel],
                    color=color,
                    s=18,
                    zorder=2,
                    marker="os^D"[k % 4],
                    label=f"{run}: {verdict}" if len(runs) > 1 else verdict,
                )
    ax.axvline(1.0, color="black", lw=0.8)
    if fail_above is not None:
        ax.axvspan(
            1.0,
            1 + fail_above / 100,
            color="tab:orange",
            alpha=0.12,
            label=f"within +{fail_above:g}% (no failure)",
        )
    ax.set_xscale("log")
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_ylim(len(labels) - 0.5, -0.5)  # first row on top, no empty margin
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.2g"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%.2g"))
    ax.set_xlabel("latency ratio NEW / BASE (p50, log scale; < 1 is faster)")
    ax.grid(axis="x", which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right", framealpha=0.9)
    ax.set_title("sepbench compare: " + ", ".join(runs) + f" vs {table['base'].iloc[0]}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(
    runs: list[Run], table: pd.DataFrame, fail_above: float | None, out: Path
) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "compare.csv", out / "compare.md", out / "compare.png"]
    table.to_csv(paths[0], index=False)
    write_markdown(runs, table, fail_above, paths[1])
    plot(table, fail_above, paths[2])
    return paths
