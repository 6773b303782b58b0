"""The handlers of `sepbench`'s subcommands: each takes the parsed arguments, calls the library
and prints; it returns the exit status. Heavy modules are imported inside each handler, so
`sepbench count` does not pay for Triton or matplotlib."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench.errors import Interrupted, UserError
from bench.files import check_data_dir, check_out_dir, write_csv_atomic
from bench.progress import progress as progress_bar

if TYPE_CHECKING:
    from bench.experiments.recipes import TrainFlags

# What sepbench writes into each command's folder (bench.files.check_out_dir: a non-empty folder
# holding none of these was not made by sepbench, and is refused).
TRAIN_OURS = ("metrics.csv", "checkpoint.pt")
COMPARE_OURS = ("comparison.csv", "*/metrics.csv")
EXPERIMENTS_OURS = ("comparison.csv", "runs/*.csv", "work/*")
ZOO_OURS = ("zoo_torchvision.*",)


def count(args: argparse.Namespace) -> int:
    from bench.counting import count_model, format_table
    from bench.counting.sources import resolve

    if args.zoo:
        if args.model or args.input or args.batch is not None:
            given = args.model or ("--input" if args.input else "--batch")
            raise UserError(
                f"--zoo {args.zoo} counts the whole zoo; it takes no MODEL, --input or --batch "
                f"(got {given}): give either MODEL or --zoo"
            )
        return count_zoo(args)
    if args.out or args.fresh:
        raise UserError(
            f"{'--out' if args.out else '--fresh'} applies to --zoo only; one MODEL's table goes "
            "to the screen and to --csv PATH"
        )
    if not args.model:
        raise UserError(
            "give a MODEL (registered name, torchvision:NAME or "
            "package.module:callable) or --zoo torchvision"
        )
    source = resolve(args.model, args.input, args.batch)
    df = count_model(source.model, source.input_shape, source.batch)
    shape = "x".join(map(str, (source.batch, *source.input_shape)))
    print(f"{source.label}: per-layer counts for an input of {shape}")
    print(
        "MACs = multiply-accumulates (fvcore's unit); flops_torch = 2 per MAC; "
        "connections = the 1998 paper's unit; '-' = counter not run"
    )
    print(format_table(df))
    if args.csv:
        write_csv_atomic(df, args.csv, make_parents=False)
        print(f"wrote {args.csv}")
    return 0


def count_zoo(args: argparse.Namespace) -> int:
    """Every torchvision classification model against its documented num_params and _ops."""
    from bench.counting.zoo import run_zoo, summary_line
    from bench.provenance import REPO_ROOT
    from bench.reporting.zoo import write_zoo_report

    # Like the report's: runs/ by default, the committed reports/counting only when named.
    out = check_out_dir(args.out or REPO_ROOT / "runs" / "counting", ZOO_OURS)
    csv = Path(args.csv) if args.csv else out / "zoo_torchvision.csv"
    start = time.perf_counter()
    df = run_zoo(
        csv,
        write_csv_atomic,
        fresh=args.fresh,
        progress=lambda items, total: progress_bar(
            items, total=total, desc="torchvision zoo", unit="model"
        ),
        workers=os.cpu_count() or 1,
    )
    seconds = time.perf_counter() - start
    paths = write_zoo_report(df, out)
    print(summary_line(df) + f"; {seconds:.0f} s wall this run")
    for p in (csv, *paths):
        print(f"wrote {p}")
    return 0


def compare(args: argparse.Namespace) -> int:
    """BASE vs each NEW: compare.csv|md|png; exit 1 on a regression beyond --fail-above."""
    import math
    import sys

    from bench.reporting import compare as cmp

    if args.fail_above is not None and not (
        math.isfinite(args.fail_above) and args.fail_above >= 0
    ):
        raise UserError(
            f"--fail-above {args.fail_above:g}: give a slowdown in percent, 0 or more "
            "(e.g. --fail-above 10)"
        )
    out = check_out_dir(args.out, cmp.COMPARE_OURS)
    done = cmp.compare_runs([args.base, *args.new], latency=args.latency)
    fail_above = args.fail_above
    if fail_above is None and not done.device_comparison:
        fail_above = cmp.DEFAULT_FAIL_PCT
    paths = cmp.write_outputs(done, fail_above, out)
    kind = "device comparison" if done.device_comparison else "comparison"
    print(f"{kind} of {len(done.runs) - 1} run(s) with {done.runs[0].label}:")
    for info in done.pairs:
        counts = done.table.loc[done.table["run"] == info.run, "verdict"].value_counts()
        print(f"  {info.run}: {info.metric} metric ({info.why}); {counts.to_dict()}")
    for p in paths:
        print(f"wrote {p}")
    bad = cmp.regressions(done.table, fail_above)
    for _, row in bad.iterrows():
        print(
            f"slower by {row['change_pct']:.1f}% (> {fail_above:g}%) in {row['run']}: "
            f"{row['suite']} / {cmp.row_label(row)} [{row['metric']}, {row['test']}]",
            file=sys.stderr,
        )
    groups = cmp.regressions(done.providers, fail_above)
    for _, row in groups.iterrows():
        print(
            f"slower by {row['change_pct']:.1f}% (> {fail_above:g}%) in {row['run']}: "
            f"provider {cmp.group_label(row)} over {row['rows']} rows "
            f"[{row['metric']}, z = {row['z']:.1f}]",
            file=sys.stderr,
        )
    return 1 if len(bad) or len(groups) else 0


def claims(args: argparse.Namespace) -> int:
    from bench.checking.claims import evaluate_claims, runtime_verdicts
    from bench.checking.sources import (
        default_training_folder,
        results_of,
        training_epochs_of,
        training_of,
    )

    results = results_of(args.results) if args.results else None
    folder = args.training or default_training_folder()
    training = training_of(folder) if folder else None
    epochs = training_epochs_of(folder) if folder else None
    if folder:
        print(f"training results from {folder}\n")
    df = evaluate_claims(results, training, epochs)
    print(df[["claim_id", "verdict", "claimed", "measured"]].to_string(index=False) + "\n")
    print("\n".join(f"{r.claim_id} [{r.verdict}]: {r.note}" for r in df.itertuples() if r.note))
    per_runtime = runtime_verdicts(df)
    print("\nspeed claims per runtime (measured ratio, the formula's in brackets):")
    print(per_runtime.fillna("").to_string(index=False))
    counts = df["verdict"].value_counts()
    print("\n" + ", ".join(f"{counts.get(v, 0)} {v}" for v in ("holds", "refuted", "untested")))
    if args.csv:
        write_csv_atomic(df, args.csv, make_parents=False)
        print(f"wrote {args.csv}")
    return 0


def report(args: argparse.Namespace) -> int:
    """Measure the suites (or convert a pytest-benchmark file), then plots and summary.md."""
    from bench.measuring.results import work_rows
    from bench.measuring.suites import SUITES
    from bench.reporting import pipeline

    out = Path(args.out) if args.out else None
    if args.from_pytest_benchmark:
        done = pipeline.convert_pytest_benchmark(Path(args.from_pytest_benchmark), out)
    else:
        opts = pipeline.ReportOptions(
            suites=tuple(args.suite or SUITES),
            size=args.size or "quick",
            device=args.device,
            out=out,
            fresh=args.fresh,
            providers=tuple(args.providers or ()),
            skip_providers=tuple(args.skip_providers or ()),
        )
        done = pipeline.make_report(opts)
    df = done.results
    if not done.paths:  # a torchrun rank other than 0: its rows are in rank 0's merge
        return 0
    work = work_rows(df)
    counts = ", ".join(f"{k} {v}" for k, v in work["status"].value_counts().items())
    print(
        f"{len(work)} rows ({counts}) and {len(df) - len(work)} peak rows in "
        f"{done.out / pipeline.REPORT_OURS[0]}"
    )
    for p in done.paths:
        print(f"wrote {p}")
    print(f"report took {done.seconds:.0f} s")
    return 0


def plot(args: argparse.Namespace) -> int:
    """Redraw the plots and summary of a report folder from its results.csv."""
    from bench.reporting.pipeline import redraw

    for path in redraw(Path(args.dir)):
        print(f"wrote {path}")
    return 0


def gpu_check(args: argparse.Namespace) -> int:
    """`make gpu-check`: the first check of a new GPU (bench.reporting.gpu_check)."""
    from bench.reporting.gpu_check import run_gpu_check

    path = run_gpu_check(Path(args.out))
    print(f"wrote {path.parent}/ (check.md last)")
    return 0


def inspect(args: argparse.Namespace) -> int:
    """Compile the kernels for GPU targets here and write compiled.csv / .png / .md."""
    from bench.measuring.inspect import DEFAULT_SUITES, DTYPES, KERNELS, inspect_kernels
    from bench.measuring.inspect_scope import check_scope
    from bench.reporting.compiled import write_compiled_summary
    from bench.reporting.plots import plot_compiled

    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be a positive integer, got {args.workers}")
    check_scope(tuple(args.kernel or KERNELS), tuple(args.suite or DEFAULT_SUITES), args.size)
    out = check_out_dir(args.out, ("compiled.csv",))
    if args.dump_cubin:
        check_out_dir(args.dump_cubin, ("*.cubin",), flag="--dump-cubin")
    df = inspect_kernels(
        tuple(args.kernel or KERNELS),
        tuple(args.suite or DEFAULT_SUITES),
        tuple(args.arch or ("sm_80", "sm_90")),
        dtypes=tuple(args.dtype or DTYPES),
        size=args.size,
        workers=args.workers,
        dump_cubin=Path(args.dump_cubin) if args.dump_cubin else None,
        traffic=args.traffic,
    )
    write_csv_atomic(df, out / "compiled.csv")
    paths = [out / "compiled.csv", plot_compiled(df, out / "compiled.png")]
    paths.append(write_compiled_summary(df, out / "compiled.md"))
    status = df["status"].value_counts().to_dict()
    print(f"{len(df)} compiled configs ({status}); {int((df['spill_bytes'] > 0).sum())} spill")
    for p in paths:
        print(f"wrote {p}")
    return 0


def train_flags(args: argparse.Namespace) -> TrainFlags:
    """The train / compare-training flags as the library's typed request."""
    from bench.experiments.recipes import TrainFlags

    return TrainFlags(
        dataset=args.dataset,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        optimizer=args.optimizer,
        seed=args.seed,
        device=args.device,
        backend=args.backend,
        data_dir=args.data_dir,
        out=args.out,
        resume=args.resume,
        limit_train=args.limit_train,
        limit_test=args.limit_test,
        download=args.download,
    )


def train(args: argparse.Namespace) -> int:
    from bench.experiments import distributed
    from bench.experiments import train as tr
    from bench.experiments.recipes import make_config

    check_data_dir(args.data_dir)
    cfg = make_config(train_flags(args), args.model)
    check_out_dir(cfg.out, TRAIN_OURS)
    try:
        result = tr.train(cfg)
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted; finished epochs are saved in {cfg.out}; rerun with --resume to go on"
        ) from None
    finally:
        distributed.finish_distributed()
    acc = result.test_accuracy
    if distributed.is_main_process():
        print(
            f"final test accuracy: {acc:.4f} ({100 * acc:.2f}%) after epoch "
            f"{int(result.metrics['epoch'].iloc[-1])}; metrics in {result.out / 'metrics.csv'}"
        )
    return 0


def compare_training(args: argparse.Namespace) -> int:
    from bench.experiments import pairs

    check_data_dir(args.data_dir)
    if args.out:  # the default, runs/compare-<pair>-<dataset>, is always a folder of ours
        check_out_dir(args.out, COMPARE_OURS)
    try:
        done = pairs.compare_pair(args.pair, train_flags(args))
    except KeyboardInterrupt:
        raise Interrupted(
            "interrupted; each model's finished epochs are saved in its folder; rerun with "
            "--resume to go on"
        ) from None
    if done is not None:
        table, out = done
        print(table.to_string(index=False))
        print(f"wrote {out / 'comparison.csv'}, {out / 'comparison.md'}, {out / 'comparison.png'}")
    return 0


def data(args: argparse.Namespace) -> int:
    """Make a dataset present and verified; exit 2 with the ways to get it when no route works."""
    from bench.experiments.data import prepare

    prepared = prepare(args.dataset, check_data_dir(args.data_dir))
    where = f"{args.dataset}: {prepared.folder} ({prepared.route})"
    print(f"{where}; every file matches the {prepared.checked}")
    return 0


def experiments(args: argparse.Namespace) -> int:
    """The seeded training set, then comparison.md and its plots."""
    from bench.experiments import seeded_runs
    from bench.provenance import REPO_ROOT
    from bench.reporting.experiments import write_experiments_report

    out = Path(args.out) if args.out else REPO_ROOT / "reports" / "experiments"
    opts = seeded_runs.Options(
        out=out,
        data_dir=Path(args.data_dir),
        groups=tuple(args.group or seeded_runs.DEFAULT_GROUPS),
        seeds=tuple(args.seeds) if args.seeds else seeded_runs.DEFAULT_SEEDS,
        device=args.device,
        mnist_dataset=args.mnist_dataset,
        epochs=args.epochs,
        limit_train=args.limit_train,
        cifar_epochs=args.cifar_epochs,
        cifar_steps=args.cifar_steps,
        jobs=args.jobs,
        threads=args.threads,
        fresh=args.fresh,
    )
    check_out_dir(out, EXPERIMENTS_OURS)  # after the flags' own checks: a refusal creates nothing
    check_data_dir(opts.data_dir)
    table = seeded_runs.run_set(opts)
    failed = table[table["status"] != "ok"]
    for path in write_experiments_report(out):
        print(f"wrote {path}")
    print(f"{len(table) - len(failed)} of {len(table)} runs finished; {out / 'comparison.csv'}")
    return 1 if len(failed) else 0
