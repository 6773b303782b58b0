"""The report job, in one pass down: measure the suites on a device (the resumable runner), the
compiled sm_90 figures of the kernels that ran (on a CPU, where the kernels were only
interpreted; no GPU needed), then plots and summary.md, drawn from the CSV alone.

``make_report`` is what `sepbench report` calls; ``convert_pytest_benchmark`` turns a
pytest-benchmark JSON file into the same folder of results.csv, plots and summary.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench import provenance
from bench.errors import UserError
from bench.files import check_out_dir, move_aside, write_csv_atomic
from bench.measuring import runner, slowdown
from bench.measuring.results import RESULTS_CSV
from bench.measuring.suites import ALL_SUITES, SIZES, SUITES, Workload, build_suites
from bench.reporting.summary import write_report

# What sepbench writes into a report folder (bench.files.check_out_dir: a non-empty folder
# holding none of these was not made by sepbench, and is refused).
REPORT_OURS = (RESULTS_CSV, "shards/rank-*.csv")


@dataclass(frozen=True)
class ReportOptions:
    """What to measure, where, and into which folder (None: runs/report-<device>/)."""

    suites: tuple[str, ...] = SUITES
    size: str = "quick"
    device: str = "auto"
    out: Path | None = None
    fresh: bool = False
    progress: bool = True
    providers: tuple[str, ...] = ()  # names or families to measure (all when empty)
    skip_providers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = [s for s in self.suites if s not in ALL_SUITES]
        if unknown:
            raise UserError(f"unknown suite(s) {unknown}; choose from {', '.join(ALL_SUITES)}")
        if self.size not in SIZES:
            raise UserError(f"unknown size {self.size!r}; choose from {', '.join(SIZES)}")
        slowdown.factors()  # a malformed SEPBENCH_TEST_SLOWDOWN is refused before measuring


@dataclass
class Report:
    """A finished report: its folder, its rows and the files written."""

    out: Path
    results: pd.DataFrame
    paths: list[Path]
    seconds: float


def make_report(opts: ReportOptions, say: Callable[[str], None] = print) -> Report:
    """Measure ``opts.suites`` into OUT/results.csv, add the compiled figures (CPU), then the
    plots and summary.md; returns what was written."""
    started = time.perf_counter()
    ctx = provenance.dist_from_env()  # under torchrun: one rank per GPU, rank 0 merges
    device = provenance.resolve_device(opts.device)
    out = Path(opts.out or provenance.default_out(device))
    if ctx.main:
        out = check_out_dir(out, REPORT_OURS)
    workloads = build_suites(list(opts.suites), opts.size, device)
    min_run_time, budget_s = runner.TIMER_SETTINGS[opts.size]
    df = runner.run(
        workloads,
        out,
        device,
        fresh=opts.fresh,
        size=opts.size,
        min_run_time=min_run_time,
        budget_s=budget_s,
        progress=opts.progress,
        providers=opts.providers,
        skip_providers=opts.skip_providers,
        ctx=ctx,
    )
    if not ctx.main:  # rank 0 draws the report once, from the merged file
        return Report(out, df, [], time.perf_counter() - started)
    paths = [out / RESULTS_CSV]
    if device == "cpu":  # what a GPU would execute, compiled here for sm_90
        paths += compiled_figures(workloads, out, say)
    paths += write_report(out, started=started)
    return Report(out, df, paths, time.perf_counter() - started)


def compiled_figures(workloads: list[Workload], out: Path, say: Callable[[str], None]) -> list:
    """compiled.csv and compiled.png of the report's kernels for sm_90 (kernels compiled here,
    cubins read here: no GPU involved); the summary gets a section from them."""
    from bench.measuring import inspect_cache
    from bench.measuring.inspect import inspect_targets, report_targets
    from bench.reporting.plots import plot_compiled

    start = time.perf_counter()
    targets = report_targets(workloads)
    key = inspect_cache.key_of(targets)
    df = inspect_cache.load(key)
    how = "from the cache (same launches, kernels and Triton)"
    if df is None:
        df = inspect_targets(targets, workers=2)
        inspect_cache.store(key, df)
        how = "compiled or read from the per-config cache"
    csv = write_csv_atomic(df, out / "compiled.csv")
    png = plot_compiled(df, out / "compiled.png")
    say(
        f"sm_90 figures of {df['kernel'].nunique()} kernels ({len(df)} configs) {how} in "
        f"{time.perf_counter() - start:.0f} s"
    )
    return [csv, png]


def convert_pytest_benchmark(
    json_path: Path, out: Path | None = None, say: Callable[[str], None] = print
) -> Report:
    """Rows of a --benchmark-json file into OUT/results.csv (default runs/pytest-benchmark-
    <device>/), then plots and summary; a results.csv already there is moved aside."""
    from bench.measuring.pytest_benchmark import rows_from_pytest_benchmark

    started = time.perf_counter()
    df = rows_from_pytest_benchmark(Path(json_path))
    devices = df["device"].dropna().unique()
    name = str(devices[0]) if len(devices) else "unknown"
    kind = "cuda" if name.lower().startswith("nvidia") else "cpu"
    slug = provenance.device_slug(kind, name)
    out = check_out_dir(out or Path("runs") / f"pytest-benchmark-{slug}", REPORT_OURS)
    csv = out / RESULTS_CSV
    if csv.exists():
        say(f"{csv} moved to {move_aside(csv).name}")
    write_csv_atomic(df, csv)
    paths = [csv, *write_report(out, started=started)]
    return Report(out, df, paths, time.perf_counter() - started)


def redraw(folder: Path, say: Callable[[str], None] = print) -> list[Path]:
    """Plots and summary.md of a report folder again, from its results.csv; a row cut off
    mid-line (a writer killed while writing) is dropped and said so, never silently."""
    from bench.measuring.results import load_results

    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder} is not a directory; give a report folder like reports/cpu")
    check_out_dir(folder, REPORT_OURS, flag="report folder")
    dropped = load_results(folder / RESULTS_CSV).attrs.get("dropped", 0)
    if dropped:
        say(
            f"dropped {dropped} incomplete row(s) at the end of {folder / RESULTS_CSV} (cut off "
            "mid-line, a writer killed while writing); plots and summary from the rest"
        )
    return write_report(folder)
