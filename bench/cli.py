"""`sepbench` / `python -m bench`: the argument parser and the dispatch to bench.commands.

Bad input ends with exit status 2 and one line naming what was wrong (UserError, or an unknown
model name from the registry); argparse's own errors exit 2 as well. Ctrl-C ends with one line
saying what was saved (Interrupted's message) and exit status 130, as a shell reports SIGINT.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from bench import commands
from bench.errors import Interrupted, UserError
from models.registry import UnknownModelError


def _count(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("count", help="per-layer params / MACs / FLOPs / connections of a model")
    p.add_argument(
        "model",
        nargs="?",
        help="a registered model name (an unknown name lists them), torchvision:NAME or "
        "package.module:callable",
    )
    p.add_argument("--csv", default=None, help="also write the rows to this CSV file")
    p.add_argument("--batch", type=int, default=None, help="batch size of the counted input")
    p.add_argument(
        "--input",
        default=None,
        metavar="NxCxHxW",
        help="input shape, batch first (required for package.module:callable; default: the "
        "registry's shape, or the torchvision weights' crop)",
    )
    p.add_argument(
        "--zoo",
        choices=["torchvision"],
        default=None,
        help="count every torchvision classification model against its documented "
        "num_params and _ops (CSV, markdown and plot; resumes)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="--zoo: folder for the table and plot (default runs/counting; --out "
        "reports/counting refreshes the committed one)",
    )
    p.add_argument("--fresh", action="store_true", help="--zoo: recount rows already in the CSV")


def _claims(sub: argparse._SubParsersAction) -> None:
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
        help="a folder whose comparison.csv supplies training results "
        "(default reports/experiments/ when it has one)",
    )


def _report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="measure every provider on the built-in workloads")
    p.add_argument(
        "--suite",
        action="append",
        default=None,
        help="documents, mobilenet, lenet, rbf, models (repeatable; default all of these), "
        "kernelbench (KernelBench level 1 #82-#87, only when named)",
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="size", action="store_const", const="quick")
    size.add_argument("--full", dest="size", action="store_const", const="full")
    size.add_argument(
        "--smoke",
        dest="size",
        action="store_const",
        const="smoke",
        help="one tiny workload per suite: every provider checked in a minute or two",
    )
    p.set_defaults(size="quick")
    p.add_argument(
        "--providers",
        nargs="+",
        action="extend",
        default=None,
        metavar="P",
        help="measure only these providers or families (e.g. fused eager standard_conv)",
    )
    p.add_argument(
        "--skip-providers",
        nargs="+",
        action="extend",
        default=None,
        metavar="P",
        help="leave out these providers or families (e.g. compile)",
    )
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument(
        "--out",
        default=None,
        help="default runs/report-<device>/; --out reports/<device> refreshes the committed one",
    )
    p.add_argument(
        "--fresh", action="store_true", help="move the folder's results.csv aside and measure anew"
    )
    p.add_argument(
        "--from-pytest-benchmark",
        dest="from_pytest_benchmark",
        default=None,
        metavar="FILE.json",
        help="convert a --benchmark-json file instead of measuring",
    )

    p = sub.add_parser("plot", help="redraw the plots and summary of a report folder from its CSV")
    p.add_argument("dir")

    p = sub.add_parser(
        "gpu-check",
        help="a new GPU checked in ~10 minutes: versions, smoke report with peaks, GPU tests, "
        "autotuned configs beside their compiled figures (at most 8 files)",
    )
    p.add_argument("--out", default="runs/gpu-check", help="folder for the files")


def _inspect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect", help="compile every Triton kernel for sm_80/sm_90 (no GPU) and read the cubins"
    )
    p.add_argument(
        "--kernel",
        nargs="+",
        action="extend",
        default=None,
        metavar="K",
        help="dwsep, rbf_distance, rbf_loss_fwd, rbf_loss_grad_x, rbf_loss_grad_c (default all)",
    )
    p.add_argument(
        "--suite",
        nargs="+",
        action="extend",
        default=None,
        metavar="S",
        help="suites whose GPU workloads are compiled (default documents mobilenet rbf; "
        "also lenet, models, kernelbench)",
    )
    p.add_argument(
        "--arch",
        nargs="+",
        action="extend",
        default=None,
        metavar="A",
        help="sm_80 (A100) and/or sm_90 (H100/H200); default both",
    )
    p.add_argument(
        "--dtype",
        nargs="+",
        action="extend",
        default=None,
        choices=["float32", "float16", "bfloat16"],
        help="default all three",
    )
    p.add_argument(
        "--full",
        dest="size",
        action="store_const",
        const="full",
        default="quick",
        help="the suites' full GPU sizes (default quick)",
    )
    p.add_argument("--out", default="runs/inspect", help="folder for compiled.csv/.png/.md")
    p.add_argument(
        "--dump-cubin",
        default=None,
        metavar="DIR",
        help="also write every cubin there (names in the cubin column)",
    )
    p.add_argument("--workers", type=int, default=None, help="compile processes (default: cores)")
    p.add_argument(
        "--traffic",
        action="store_true",
        help="also count what each launch moves under the Triton interpreter (sampled "
        "programs): requested/ideal bytes, depthwise recompute, DRAM estimate, lower bounds",
    )


def _train_args(p: argparse.ArgumentParser) -> None:
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
        "--limit-test",
        type=int,
        default=None,
        help="evaluate on the first N test images only (--backend triton on CPU: the Triton "
        "interpreter takes seconds per image)",
    )
    p.add_argument(
        "--no-download",
        dest="download",
        action="store_false",
        help="never try to download a missing dataset; fail with where to put it",
    )


def _train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one of the documents' models")
    p.add_argument("--model", required=True)
    _train_args(p)
    p = sub.add_parser("compare-training", help="train a standard/depthwise pair and compare")
    p.add_argument("--pair", choices=["lenet5", "lenet5_paper", "cifar_cnn"], default="lenet5")
    _train_args(p)


def _data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="make MNIST or CIFAR-10 present and checksum-verified")
    p.add_argument("dataset", choices=["mnist", "cifar10"])
    p.add_argument("--data-dir", default="data", help="torchvision's root folder (default data)")


def _experiments(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "experiments", help="the documents' training runs over seeds -> reports/experiments/"
    )
    p.add_argument("--out", default=None, help="default reports/experiments/")
    p.add_argument("--data-dir", default="data")
    p.add_argument(
        "--group",
        action="append",
        default=None,
        help="lenet, lenet_paper, cifar_steps, cifar10 (repeatable; default the first three)",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--jobs", type=int, default=None, help="runs at a time (default: cores)")
    p.add_argument("--threads", type=int, default=None, help="threads per run (default 1 on CPU)")
    p.add_argument("--fresh", action="store_true", help="redo runs already finished")
    p.add_argument("--epochs", type=int, default=None, help="override the recipes' epochs")
    p.add_argument("--limit-train", type=int, default=None, help="first N training images")
    p.add_argument(
        "--mnist-dataset",
        choices=["mnist", "digits"],
        default="mnist",
        help="digits: train the LeNet groups offline (quick checks)",
    )
    p.add_argument("--cifar-epochs", type=int, default=None, help="cifar_steps epochs")
    p.add_argument("--cifar-steps", type=int, default=None, help="cifar_steps steps per epoch")


# subcommand -> handler; each takes the parsed arguments and returns an exit status.
HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "count": commands.count,
    "claims": commands.claims,
    "report": commands.report,
    "plot": commands.plot,
    "gpu-check": commands.gpu_check,
    "inspect": commands.inspect,
    "train": commands.train,
    "compare-training": commands.compare_training,
    "compare": commands.compare,
    "data": commands.data,
    "experiments": commands.experiments,
}


def _compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="runs side by side: ratio, noise and regressions")
    p.add_argument("base", help="BASE: a report folder, a results.csv or a pytest-benchmark JSON")
    p.add_argument("new", nargs="+", help="NEW run(s), each compared with BASE")
    p.add_argument(
        "--fail-above",
        dest="fail_above",
        type=float,
        default=None,
        metavar="PCT",
        help="exit 1 when a row or a provider is called slower than BASE by more than PCT%% "
        "(default 10 for runs on one device; a device comparison fails only when asked)",
    )
    p.add_argument(
        "--latency",
        action="store_true",
        help="judge plain latency even when the runs' peaks rows show a host that was not quiet "
        "(default there: each row relative to the rows measured next to it, which cancels drift)",
    )
    p.add_argument("--out", default="compare", help="folder for compare.csv|md|png")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sepbench",
        description="Depthwise-separable convolutions and LeNet-5's RBF layer: formulas vs "
        "counters vs measured latency.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_count, _claims, _report, _inspect, _train, _compare, _data, _experiments):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(HANDLERS[args.command](args) or 0)
    except (UserError, UnknownModelError) as err:
        print(f"sepbench {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        said = str(err) if isinstance(err, Interrupted) else "interrupted"
        print(f"sepbench {args.command}: {said}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
