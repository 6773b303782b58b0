"""`sepbench compare BASE NEW [NEW ...]`: runs side by side (report folders, results.csv files or
pytest-benchmark JSON), matched on (suite, workload, provider, dtype, batch); compare.csv,
compare_providers.csv, compare.md and compare.png, and what regressed beyond a threshold.

A shared host drifts by 2x between runs (DESIGN.md: the machines are noisy), so each verdict
says which metric it used and is made by bench.reporting.compare_stats: each row's change
relative to the rows measured next to it in the same runs (latency itself only on a quiet host,
for device comparisons, or with --latency), a Mann-Whitney U test over the raw samples, the
noise between the two runs, a minimum effect, and each provider judged over all its rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.errors import UserError
from bench.files import read_csv
from bench.measuring import samples
from bench.measuring.pytest_benchmark import rows_from_pytest_benchmark
from bench.measuring.results import KEY, PEAKS_SUITE, fill_kinds, peaks_of, work_rows
from bench.reporting import compare_stats as cs

LATENCY = ("latency_ms_p20", "latency_ms_p50", "latency_ms_p80")
PROVENANCE = ("device", "torch_version", "triton_version", "git_sha")
# Same-device comparisons fail on a slowdown beyond this many percent unless --fail-above says
# otherwise; a device comparison fails only when --fail-above is given.
DEFAULT_FAIL_PCT = 10.0
# What compare writes into its --out folder (bench.files.check_out_dir).
COMPARE_OURS = ("compare.csv", "compare.md")


@dataclass
class Run:
    label: str
    path: Path
    rows: pd.DataFrame  # timed rows, in the file's (measurement) order: KEY, kind, latencies,
    # provenance and the raw samples (a tuple per row, empty where the file has none)
    peaks: cs.Peaks = field(default_factory=cs.Peaks)


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
    peaks = _peaks(df)
    df = work_rows(df).copy()
    if "status" in df.columns:
        df = df[df["status"].fillna("ok") == "ok"]
    for col in LATENCY:
        df[col] = pd.to_numeric(df[col], errors="coerce")
    df = df.dropna(subset=list(LATENCY))
    df = df[(df[list(LATENCY)] > 0).all(axis=1)]  # a ratio needs a positive latency
    df["batch"] = pd.to_numeric(df["batch"], errors="coerce").astype("Int64")
    for col in ("suite", "workload", "provider", "dtype"):
        df[col] = df[col].astype(str)
    for col in (*PROVENANCE, "kind", samples.COLUMN):
        if col not in df.columns:
            df[col] = None
    df = fill_kinds(df.assign(kind=df["kind"].astype("object")))
    df["kind"] = df["kind"].fillna("").astype(str)
    df["samples"] = df[samples.COLUMN].map(samples.decode)
    df = df.drop_duplicates(subset=list(KEY), keep="last")
    if df.empty:
        raise UserError(f"{path}: no timed rows (status ok with latencies)")
    label = path.parent.name if path.name == "results.csv" else path.name
    columns = [*KEY, "kind", *LATENCY, *PROVENANCE, "samples"]
    return Run(label, path, df[columns].reset_index(drop=True), peaks)


def _peaks(df: pd.DataFrame) -> cs.Peaks:
    if "suite" not in df.columns or not (df["suite"] == PEAKS_SUITE).any():
        return cs.Peaks()
    for col in ("gbps", "tflops"):
        if col not in df.columns:
            return cs.Peaks()
    numeric = df.assign(
        gbps=pd.to_numeric(df["gbps"], errors="coerce"),
        tflops=pd.to_numeric(df["tflops"], errors="coerce"),
    )
    return cs.Peaks(*peaks_of(numeric))


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


@dataclass(frozen=True)
class PairInfo:
    """How one NEW run was judged against BASE: the metric, why, and the noise between them."""

    run: str
    metric: str
    why: str
    sigma: float  # robust sigma of the rows' log changes (NaN: not estimated)
    noise_pct: float  # the band a row's change must leave, in percent
    matched: int


@dataclass
class Comparison:
    runs: list[Run]
    table: pd.DataFrame  # one row per key of either run of each pair
    providers: pd.DataFrame  # one row per (run, kind, provider, dtype)
    pairs: list[PairInfo]
    device_comparison: bool


def _metric(base: Run, new: Run, matched: int, device: bool, latency: bool) -> tuple[str, str]:
    if device:
        return cs.LATENCY, "a device comparison: the ratios compare hardware"
    if latency:
        return cs.LATENCY, "asked (--latency)"
    copy, matmul = cs.peaks_change_pct(base.peaks, new.peaks)
    peaks = f"copy {copy:+.1f}%, matmul {matmul:+.1f}% between the runs' peaks rows"
    if not all(math.isfinite(c) for c in (copy, matmul)):
        peaks = "a run without peaks rows (copy, matmul): the host's state is unknown"
    if cs.quiet_host(base.peaks, new.peaks):
        return cs.LATENCY, f"a quiet host ({peaks}, within {cs.QUIET_PEAKS_PCT:g}%)"
    if matched < cs.MIN_ROWS:
        return cs.LATENCY, f"{peaks}, but {matched} matched rows are too few to cancel the drift"
    return cs.RELATIVE, f"the host was not quiet ({peaks})"


def compare_pair(base: Run, new: Run, *, device: bool = False, latency: bool = False):
    """One row per key of either run (BASE's order, then NEW-only rows): both runs' percentiles,
    ratio, drift, change, metric, test and verdict; and how the pair was judged."""
    rename = {"latency_ms_p20": "p20", "latency_ms_p50": "p50", "latency_ms_p80": "p80"}
    cols = [*KEY, "kind", *LATENCY, "samples"]
    b = base.rows[cols].rename(columns={k: f"base_{v}" for k, v in rename.items()})
    n = new.rows[cols].rename(columns={k: f"new_{v}" for k, v in rename.items()})
    b = b.rename(columns={"samples": "base_samples"})
    n = n.rename(columns={"samples": "new_samples", "kind": "new_kind"})
    # BASE's rows in BASE's (measurement) order, then NEW's own: an outer merge would sort the
    # keys, and the drift reference is the rows measured next to each row.
    table = b.merge(n, on=list(KEY), how="left")
    only_new = n.merge(b[list(KEY)], on=list(KEY), how="left", indicator=True)
    only_new = only_new[only_new.pop("_merge") == "left_only"]
    table = pd.concat([table, only_new], ignore_index=True)
    table["kind"] = table["kind"].fillna(table.pop("new_kind"))
    for col in ("base_samples", "new_samples"):
        table[col] = table[col].map(lambda s: s if isinstance(s, tuple) else ())
    table.insert(0, "run", new.label)
    table.insert(1, "base", base.label)
    matched = int((table["base_p50"].notna() & table["new_p50"].notna()).sum())
    metric, why = _metric(base, new, matched, device, latency)
    table, sigma = cs.judge_rows(table, metric, noise=not device)
    band = float(table["noise_pct"].dropna().iloc[0]) if matched else math.nan
    return table, PairInfo(new.label, metric, why, sigma, band, matched)


def compare_runs(paths: list[str], *, latency: bool = False) -> Comparison:
    """Load BASE and every NEW, check they compare, and judge each NEW against BASE."""
    runs = [load_run(p) for p in paths]
    _labels(runs)
    base, news = runs[0], runs[1:]
    for new in news:
        _check_comparable(base, new)
    device = is_device_comparison(runs)
    parts = [compare_pair(base, new, device=device, latency=latency) for new in news]
    table = pd.concat([t for t, _ in parts], ignore_index=True)
    pairs = [info for _, info in parts]
    providers = cs.judge_providers(table, {p.run: p.sigma for p in pairs})
    return Comparison(runs, table, providers, pairs, device)


def is_device_comparison(runs: list[Run]) -> bool:
    return len({tuple(devices(r)) for r in runs}) > 1


def regressions(table: pd.DataFrame, fail_above: float | None) -> pd.DataFrame:
    """Rows (or provider groups) called slower, by more than ``fail_above`` percent."""
    if fail_above is None:
        return table.iloc[0:0]
    return table[(table["verdict"] == "slower") & (table["change_pct"] > fail_above)]


def row_label(row: pd.Series) -> str:
    return f"{row['workload']} / {row['provider']} / {row['dtype']} / N{row['batch']}"


def group_label(row: pd.Series) -> str:
    return f"{row['provider']} ({row['kind']}, {row['dtype']})"


def _run_table(runs: list[Run]) -> pd.DataFrame:
    rows = []
    for i, run in enumerate(runs):
        info = {
            c: ", ".join(sorted({str(v) for v in run.rows[c].dropna()})) or "unknown"
            for c in PROVENANCE
        }
        with_samples = int(run.rows["samples"].map(bool).sum())
        rows.append(
            {
                "role": "BASE" if i == 0 else "NEW",
                "run": run.label,
                "path": str(run.path),
                **info,
                "timed rows": len(run.rows),
                "with samples": with_samples,
                "copy GB/s": f"{run.peaks.copy_gbps:.3g}",
                "matmul TFLOP/s": run.peaks.matmul_text(),
            }
        )
    return pd.DataFrame(rows)


def _fmt(table: pd.DataFrame) -> pd.DataFrame:
    shown = table.copy()
    for col in shown.columns:
        if col.endswith(("_p20", "_p50", "_p80")):
            shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{v:.4g}")
    for col in ("ratio", "drift"):
        if col in shown:
            shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    shown["change_pct"] = shown["change_pct"].map(lambda v: "" if pd.isna(v) else f"{v:+.1f}%")
    for col in ("p_value", "z"):
        if col in shown:
            shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{v:.3g}")
    return shown


def _pair_lines(done: Comparison) -> list[str]:
    lines = []
    for p in done.pairs:
        noise = (
            f"the noise between the runs: a robust sigma of {p.sigma:.3f} in log over "
            f"{p.matched} matched rows, so a row must move beyond +-{p.noise_pct:.0f}% "
            "(Bonferroni over the rows)"
            if math.isfinite(p.sigma)
            else "the noise between the runs not estimated (a device comparison, or fewer than "
            f"{cs.MIN_ROWS} matched rows)"
        )
        lines.append(f"- **{p.run}**: {cs.METRIC_TEXT[p.metric]}; chosen because {p.why}; {noise}.")
    return lines


def write_markdown(done: Comparison, fail_above: float | None, path: Path, top: int = 40) -> None:
    runs, table = done.runs, done.table
    lines = ["# sepbench compare", ""]
    if done.device_comparison:
        names = " vs ".join(", ".join(devices(r)) or "unknown" for r in runs)
        lines += [
            f"**Device comparison** ({names}): the ratios compare hardware, not code changes.",
            "",
        ]
    lines += [_run_table(runs).to_markdown(index=False), ""]
    lines += ["## How each run was judged", "", *_pair_lines(done), ""]
    lines += [
        "A row is called slower or faster only when a Mann-Whitney U test over the two runs' "
        f"raw samples gives p < {cs.ALPHA:g} (p20-p80 intervals that do not overlap where a "
        "file has no samples; 'not judged' where the samples are too few for any test), its "
        "change leaves the noise band between the runs, and it is at least "
        f"{cs.MIN_EFFECT_PCT:g}%. Each provider is also judged over all its rows (z-test of "
        "their mean log change against the same noise, Bonferroni over the providers). In the "
        "relative metric a change shared by every row of a stretch (a new torch slowing every "
        "convolution) cancels like the host's drift: only a quiet host (or --latency) shows it.",
        "",
    ]
    counts = table.groupby(["run", "verdict"]).size().unstack(fill_value=0)
    lines += [counts.reset_index().to_markdown(index=False), ""]
    if fail_above is not None:
        bad = regressions(table, fail_above)
        bad_groups = regressions(done.providers, fail_above)
        lines += [
            f"Regressions beyond {fail_above:g}%: {len(bad)} rows, {len(bad_groups)} providers.",
            "",
        ]
    lines += [
        f"## Providers over their rows ({cs.MIN_GROUP_ROWS} or more matched rows are judged)",
        "",
        _fmt(done.providers).to_markdown(index=False),
        "",
    ]
    matched = table.dropna(subset=["change_pct"])
    order = matched["change_pct"].map(lambda c: abs(math.log1p(c / 100))).sort_values()
    largest = matched.loc[order.index[::-1][:top]]
    cols = ["run", *KEY, "base_p50", "new_p50", "ratio", "drift", "change_pct", "p_value"]
    lines += [
        f"## Largest changes (top {min(top, len(largest))} of {len(matched)} matched rows; "
        "all rows in compare.csv)",
        "",
        _fmt(largest[[*cols, "verdict"]]).to_markdown(index=False),
        "",
    ]
    path.write_text("\n".join(lines))


def csv_table(table: pd.DataFrame) -> pd.DataFrame:
    """compare.csv's rows: the samples as their counts (the samples stay in the runs' files)."""
    out = table.copy()
    for col in ("base_samples", "new_samples"):
        out[col] = out[col].map(len)
    return out


def write_outputs(done: Comparison, fail_above: float | None, out: Path) -> list[Path]:
    from bench.files import write_csv_atomic
    from bench.reporting.compare_plot import plot

    paths = [out / "compare.csv", out / "compare_providers.csv", out / "compare.md"]
    write_csv_atomic(csv_table(done.table), paths[0])
    write_csv_atomic(done.providers, paths[1])
    write_markdown(done, fail_above, paths[2])
    paths.append(plot(done.table, done.pairs, fail_above, out / "compare.png", done.providers))
    return paths
