"""The handlers of `sepbench`'s subcommands: each takes the parsed arguments, calls the library
and prints; it returns the exit status. Heavy modules are imported inside each handler, so
`sepbench count` does not pay for Triton or matplotlib."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from bench.errors import UserError


def write_csv(df: pd.DataFrame, path: str) -> None:
    """Write a table to ``path``, turning an unwritable path into a clear UserError."""
    try:
        df.to_csv(path, index=False)
    except OSError as err:
        raise UserError(f"cannot write CSV to {path!r}: {err.strerror or err}") from None


def count(args: argparse.Namespace) -> int:
    from bench.counting import count_registered, format_table

    if args.batch <= 0:
        raise UserError(f"--batch must be a positive integer, got {args.batch}")
    df = count_registered(args.model, batch=args.batch)
    print(f"{args.model}: per-layer counts for a batch of {args.batch}")
    print(
        "MACs = multiply-accumulates (fvcore's unit); flops_torch = 2 per MAC; "
        "connections = the 1998 paper's unit"
    )
    print(format_table(df))
    if args.csv:
        write_csv(df, args.csv)
        print(f"wrote {args.csv}")
    return 0


def claims(args: argparse.Namespace) -> int:
    from bench.checking.claims import (
        default_training_folder,
        evaluate_claims,
        load_results,
        load_training,
        load_training_epochs,
    )

    results = load_results(args.results) if args.results else None
    folder = args.training or default_training_folder()
    training = load_training(folder) if folder else None
    epochs = load_training_epochs(folder) if folder else None
    if folder:
        print(f"training results from {folder}\n")
    df = evaluate_claims(results, training, epochs)
    print(df[["claim_id", "verdict", "claimed", "measured"]].to_string(index=False) + "\n")
    print("\n".join(f"{r.claim_id} [{r.verdict}]: {r.note}" for r in df.itertuples() if r.note))
    counts = df["verdict"].value_counts()
    print("\n" + ", ".join(f"{counts.get(v, 0)} {v}" for v in ("holds", "refuted", "untested")))
    if args.csv:
        write_csv(df, args.csv)
        print(f"wrote {args.csv}")
    return 0


def report(args: argparse.Namespace) -> int:
    """Measure the suites (or convert a pytest-benchmark file), then plots and summary.md."""
    from bench.measuring import provenance, runner
    from bench.measuring.pytest_benchmark import rows_from_pytest_benchmark
    from bench.measuring.results import PEAKS_SUITE, write_csv_atomic
    from bench.measuring.suites import SUITES, build_suites
    from bench.reporting.summary import write_report

    size = args.size or "quick"
    if args.from_pytest_benchmark:
        df = rows_from_pytest_benchmark(Path(args.from_pytest_benchmark))
        devices = df["device"].dropna().unique()
        name = str(devices[0]) if len(devices) else "unknown"
        is_cpu = not name.lower().startswith("nvidia")
        slug = provenance.device_slug("cpu" if is_cpu else "cuda", name)
        out = Path(args.out) if args.out else provenance.REPO_ROOT / "reports" / slug
        write_csv_atomic(df, out / "results.csv")
    else:
        suites = args.suite or list(SUITES)
        unknown = [s for s in suites if s not in SUITES]
        if unknown:
            raise UserError(f"unknown suite(s) {unknown}; choose from {', '.join(SUITES)}")
        device = provenance.resolve_device(args.device)
        out = Path(args.out) if args.out else provenance.default_out(device)
        workloads = build_suites(suites, size, device)
        df = runner.run(
            workloads,
            out,
            device,
            fresh=args.fresh,
            size=size,
            min_run_time=0.1 if size != "full" else 0.3,
        )
    paths = write_report(out)
    counts = df[df["suite"] != PEAKS_SUITE]["status"].value_counts().to_dict()
    print(f"{len(df)} rows in {out / 'results.csv'} ({counts})")
    for p in paths:
        print(f"wrote {p}")
    return 0


def plot(args: argparse.Namespace) -> int:
    """Redraw the plots and summary of a report folder from its results.csv."""
    from bench.reporting.summary import write_report

    out_dir = Path(args.dir)
    if not out_dir.is_dir():
        raise UserError(f"{out_dir} is not a directory; give a report folder like reports/cpu")
    for path in write_report(out_dir):
        print(f"wrote {path}")
    return 0


def train(args: argparse.Namespace) -> int:
    from bench.experiments import train as tr

    cfg = tr.make_config(args, args.model)
    try:
        result = tr.train(cfg)
    finally:
        tr.finish_distributed()
    acc = result.test_accuracy
    if tr.is_main_process():
        print(
            f"final test accuracy: {acc:.4f} ({100 * acc:.2f}%) after epoch "
            f"{int(result.metrics['epoch'].iloc[-1])}; metrics in {result.out / 'metrics.csv'}"
        )
    return 0


def compare_training(args: argparse.Namespace) -> int:
    from bench.experiments import train as tr

    done = tr.compare_pair(args)
    if done is not None:
        table, out = done
        print(table.to_string(index=False))
        print(f"wrote {out / 'comparison.csv'}, {out / 'comparison.md'}, {out / 'comparison.png'}")
    return 0


def data(args: argparse.Namespace) -> int:
    """Make a dataset present and verified; exit 2 with the ways to get it when no route works."""
    from bench.experiments.data import prepare

    prepared = prepare(args.dataset, args.data_dir)
    where = f"{args.dataset}: {prepared.folder} ({prepared.route})"
    print(f"{where}; every file matches the {prepared.checked}")
    return 0


def experiments(args: argparse.Namespace) -> int:
    """The seeded training set, then comparison.md and its plots."""
    from bench.experiments import seeded_runs
    from bench.measuring.provenance import REPO_ROOT
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
    table = seeded_runs.run_set(opts)
    failed = table[table["status"] != "ok"]
    for path in write_experiments_report(out):
        print(f"wrote {path}")
    print(f"{len(table) - len(failed)} of {len(table)} runs finished; {out / 'comparison.csv'}")
    return 1 if len(failed) else 0
