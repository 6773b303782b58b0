"""`sepbench` / `python -m bench`: count, claims, report, plot, train, compare-training.

Each subcommand's work lives in its own module; handlers are imported only when called so that
`sepbench count` does not pay for Triton or matplotlib imports.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from bench.errors import UserError

# subcommand -> "module:function"; each function takes the parsed args and returns an exit code.
_HANDLERS = {
    "count": "bench.counting:cli_count",
    "claims": "bench.claims:cli_claims",
    "report": "bench.runner:cli_report",
    "plot": "bench.report:cli_plot",
    "train": "bench.train:cli_train",
    "compare-training": "bench.train:cli_compare_training",
}


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dataset",
        choices=["mnist", "cifar10", "digits", "synthetic"],
        default=None,
        help="default: the model's document dataset, digits when it is absent; "
        "synthetic = random images (throughput only)",
    )
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--optimizer", choices=["sgd", "adam"], default=None)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--backend", choices=["torch", "triton"], default="torch")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--out", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument(
        "--limit-train",
        type=int,
        default=None,
        help="use only the first N training images (quick checks)",
    )
    p.add_argument(
        "--no-download",
        dest="download",
        action="store_false",
        help="never try to download a missing dataset; fail with where to put it",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sepbench",
        description="Depthwise-separable convolutions and LeNet-5's RBF layer: formulas vs "
        "counters vs measured latency.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("count", help="per-layer params / MACs / FLOPs / connections of a model")
    p.add_argument("model", help="a registered model name (an unknown name lists them)")
    p.add_argument("--csv", default=None, help="also write the rows to this CSV file")
    p.add_argument("--batch", type=int, default=1, help="batch size of the counted input")

    p = sub.add_parser("claims", help="every quantitative claim of the documents, with a verdict")
    p.add_argument("--csv", default=None, help="also write the table to this CSV file")
    p.add_argument(
        "--results",
        default=None,
        help="a report folder whose results.csv supplies measured latencies",
    )
    p.add_argument(
        "--training",
        default=None,
        help="a compare-training folder whose comparison.csv supplies accuracies",
    )

    p = sub.add_parser("report", help="measure every provider on the built-in workloads")
    p.add_argument(
        "--suite",
        action="append",
        default=None,
        help="documents, mobilenet, lenet, rbf, models (repeatable; default all)",
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="size", action="store_const", const="quick")
    size.add_argument("--full", dest="size", action="store_const", const="full")
    p.set_defaults(size="quick")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--out", default=None, help="default reports/<device-name>/")
    p.add_argument("--fresh", action="store_true", help="redo rows already measured")
    p.add_argument(
        "--from-pytest-benchmark",
        dest="from_pytest_benchmark",
        default=None,
        metavar="FILE.json",
        help="convert a --benchmark-json file instead of measuring",
    )

    p = sub.add_parser("plot", help="redraw the plots and summary of a report folder from its CSV")
    p.add_argument("dir")

    p = sub.add_parser("train", help="train one of the documents' models")
    p.add_argument("--model", required=True)
    _add_train_args(p)

    p = sub.add_parser("compare-training", help="train a standard/depthwise pair and compare")
    p.add_argument("--pair", choices=["lenet5", "lenet5_paper", "cifar_cnn"], default="lenet5")
    _add_train_args(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module, func = _HANDLERS[args.command].split(":")
    try:
        return int(getattr(importlib.import_module(module), func)(args) or 0)
    except UserError as err:
        print(f"sepbench {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
