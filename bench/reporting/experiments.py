"""comparison.md and the plots of a `sepbench experiments` folder, drawn from its CSVs alone
(runs/*.csv per epoch, comparison.csv per model and seed): mean and spread over seeds, the pairs'
differences against the seed-to-seed noise, and the training claims' verdicts."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator

from bench.experiments.seed_stats import difference, spread
from bench.experiments.seeded_runs import COMPARISON, GROUPS, load_runs
from bench.reporting.plots import _save

PLOTS = {
    "curves.png": "test accuracy and loss per epoch: mean over seeds, band = seed min-max",
    "accuracy_vs_macs.png": "final test accuracy (mean, bars = sd over seeds) vs MACs per image",
    "cifar_steps.png": "document 001's CNNs: time per training step and peak memory",
}


def write_experiments_report(out: Path) -> list[Path]:
    """comparison.md and the plots of folder ``out``; returns the paths written."""
    out = Path(out)
    table = pd.read_csv(out / COMPARISON)
    ok = table[table["status"] == "ok"]
    epochs = load_runs(out)
    paths = [
        plot_curves(epochs, out / "curves.png"),
        plot_accuracy_vs_macs(ok, out / "accuracy_vs_macs.png"),
        plot_cifar_steps(ok, out / "cifar_steps.png"),
    ]
    md = out / "comparison.md"
    md.write_text("\n".join(comparison_markdown(table, epochs)) + "\n")
    return [md, *paths]


# ------------------------------------------------------------------------------- tables


def _accuracy_groups(ok: pd.DataFrame) -> pd.DataFrame:
    """Rows whose accuracy means something: real data (not the synthetic timing runs)."""
    return ok[ok["dataset"] != "synthetic"]


def model_table(ok: pd.DataFrame) -> pd.DataFrame:
    """Per model and dataset: mean +- sd (seed min-max) of the measured quantities."""
    rows = []
    for (model, dataset), g in ok.groupby(["model", "dataset"], sort=False):
        row = {
            "model": model,
            "dataset": dataset,
            "seeds": len(g),
            "epochs": int(g["epochs"].max()),
            "params": int(g["params"].iloc[0]),
            "MACs": int(g["macs"].iloc[0]),
        }
        if dataset != "synthetic":
            row["test accuracy %"] = spread(g["test_accuracy"]).text(100, count=False)
            row["test error %"] = spread(g["test_error"]).text(100, count=False)
        else:
            row["test accuracy %"] = row["test error %"] = "(random labels)"
        row["s / epoch"] = spread(g["time_per_epoch_s"]).text(digits=2, count=False)
        row["ms / step"] = spread(g["time_per_step_s"] * 1e3).text(digits=1, count=False)
        row["images/s"] = spread(g["images_per_s"]).text(digits=0, count=False)
        row["peak memory MiB"] = spread(g["peak_memory_mb"]).text(digits=0, count=False)
        rows.append(row)
    return pd.DataFrame(rows)


def pair_table(ok: pd.DataFrame) -> pd.DataFrame:
    """Each group's depthwise-separable model against its standard one, seed spreads compared."""
    rows = []
    for group in GROUPS.values():
        std, dw = (ok[(ok["group"] == group.name) & (ok["model"] == m)] for m in group.models)
        if std.empty or dw.empty:
            continue
        row = {
            "pair": f"{group.models[1]} vs {group.models[0]}",
            "dataset": std["dataset"].iloc[0],
            "documents": group.documents,
        }
        row["test accuracy, points"] = (
            difference(dw["test_accuracy"], std["test_accuracy"]).text(100)
            if group.dataset != "synthetic"
            else "(random labels)"
        )
        t_std = spread(std["time_per_step_s"]).mean
        row["time per step"] = (
            f"{spread(dw['time_per_step_s']).mean / t_std:.2f}x the standard's; "
            + difference(dw["time_per_step_s"], std["time_per_step_s"]).text(1e3, " ms", 1)
        )
        row["peak memory"] = difference(dw["peak_memory_mb"], std["peak_memory_mb"]).text(
            unit=" MiB", digits=0
        )
        rows.append(row)
    return pd.DataFrame(rows)


def _conditions(table: pd.DataFrame, epochs: pd.DataFrame) -> list[str]:
    ok = table[table["status"] == "ok"]
    if ok.empty:
        return ["No run has finished yet."]
    start = pd.to_datetime(ok["started"])
    end = start + pd.to_timedelta(ok["wall_s"], unit="s")
    loads = epochs[["load_avg_start", "load_avg_end"]].stack()
    return [
        f"- Hardware: {', '.join(map(str, ok['device'].unique()))}; "
        f"{', '.join(map(str, ok['threads'].unique()))} thread(s) per run, "
        f"{', '.join(map(str, ok['concurrent_runs'].unique()))} run(s) at a time, each in its "
        f"own process; torch {', '.join(map(str, epochs['torch_version'].unique()))}, "
        f"git {', '.join(str(s)[:12] for s in epochs['git_sha'].unique())}. "
        f"1-minute load average of the machine while the runs ran: {loads.min():.1f}-"
        f"{loads.max():.1f} (it is shared).",
        f"- Wall clock from the first run's start to the last run's end: "
        f"{(end.max() - start.min()).total_seconds() / 60:.1f} min ({start.min():%Y-%m-%d %H:%M} "
        f"UTC; a pause between resumed invocations counts too); the runs' own wall times sum to "
        f"{ok['wall_s'].sum() / 60:.1f} min.",
        f"- Peak memory: {'; '.join(ok['memory_measure'].unique())}.",
    ]


def comparison_markdown(table: pd.DataFrame, epochs: pd.DataFrame) -> list[str]:
    ok = table[table["status"] == "ok"]
    lines = ["# Training experiments (`make experiments`)", "", *_conditions(table, epochs), ""]
    lines += [
        "Each value is mean +- sample sd over seeds (seed min-max). Rates (s / epoch, ms / step, "
        "images/s) are means over the epochs after the first, which pays one-off warm-up. A pair's "
        "difference is 'inside the noise' when Welch's t-test over the seeds gives p >= 0.05. "
        "Timings come from separate processes, each seed at another moment: on a shared "
        "machine their spread includes the machine's changing load.",
        "",
        "## Per model",
        "",
        model_table(ok).to_markdown(index=False) if not ok.empty else "(no finished run)",
        "",
        "## Depthwise-separable vs standard",
        "",
        pair_table(ok).to_markdown(index=False) if not ok.empty else "(no finished pair)",
        "",
        "The cifar_cnn pair trains on CIFAR-shaped synthetic batches (uniform noise, random "
        "labels) with document 001's recipe: its time per step and memory are those of real "
        "CIFAR-10 batches of the same shape; its accuracy is chance and is not reported.",
        "",
    ]
    failed = table[table["status"] != "ok"]
    if not failed.empty:
        failures = failed[["model", "dataset", "seed", "error"]].to_markdown(index=False)
        lines += ["## Runs that did not finish", "", failures, ""]
    lines += _claims_section(ok, epochs)
    lines += [f"![{name}]({name})  \n{what}\n" for name, what in PLOTS.items()]
    return lines


def _claims_section(ok: pd.DataFrame, epochs: pd.DataFrame) -> list[str]:
    from bench.checking.claims import TRAINING_CLAIMS, evaluate_claims

    verdicts = evaluate_claims(training=ok, training_epochs=epochs, claim_ids=TRAINING_CLAIMS)
    shown = verdicts[["claim_id", "claimed", "measured", "verdict"]]
    return [
        "## The documents' training claims (`sepbench claims`)",
        "",
        shown.to_markdown(index=False),
        "",
    ]


# -------------------------------------------------------------------------------- plots


def plot_curves(epochs: pd.DataFrame, path: Path) -> Path:
    """Per MNIST group: test accuracy and loss per epoch, mean line and seed min-max band."""
    real = epochs[epochs["dataset"] != "synthetic"]
    groups = list(dict.fromkeys(real["group"]))
    fig, axes = plt.subplots(
        max(1, len(groups)), 2, figsize=(11, 3.6 * max(1, len(groups))), squeeze=False
    )
    if not groups:
        for ax in axes[0]:
            ax.text(0.5, 0.5, "no finished run on real data", ha="center", va="center")
            ax.set_axis_off()
    for row, group in zip(axes, groups, strict=False):
        for i, (model, g) in enumerate(real[real["group"] == group].groupby("model", sort=False)):
            by = g.groupby("epoch")
            for ax, column in zip(row, ("test_acc", "test_loss"), strict=True):
                stats = by[column].agg(["mean", "min", "max"])
                ax.plot(
                    stats.index,
                    stats["mean"],
                    "-o",
                    ms=3,
                    color=f"C{i}",
                    label=f"{model} ({g['seed'].nunique()} seeds)",
                )
                ax.fill_between(stats.index, stats["min"], stats["max"], color=f"C{i}", alpha=0.25)
        row[0].set(ylabel="test accuracy (fraction)", title=f"{group}: test accuracy")
        row[1].set(ylabel="test loss", title=f"{group}: test loss (the model's own loss)")
        for ax in row:
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    return _save(fig, path)


def plot_accuracy_vs_macs(ok: pd.DataFrame, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.8))
    real = _accuracy_groups(ok)
    for i, ((model, dataset), g) in enumerate(real.groupby(["model", "dataset"], sort=False)):
        s = spread(g["test_accuracy"])
        sd = 0.0 if s.n < 2 else s.sd
        ax.errorbar(
            g["macs"].iloc[0],
            s.mean * 100,
            yerr=sd * 100,
            fmt="o",
            capsize=4,
            color=f"C{i}",
            label=f"{model} ({dataset}, {s.n} seeds)",
        )
    ax.set_xscale("log")
    ax.set(
        xlabel="MACs per image (fvcore)",
        ylabel="final test accuracy (%)",
        title="accuracy vs cost, mean +- sd over seeds",
    )
    ax.grid(alpha=0.3, which="both")
    if not real.empty:
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_cifar_steps(ok: pd.DataFrame, path: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    steps = ok[ok["group"] == "cifar_steps"]
    models = list(dict.fromkeys(steps["model"]))
    panels = (
        ("time_per_step_s", "s per training step (batch 128)"),
        ("peak_memory_mb", "peak memory (MiB)"),
    )
    for ax, (column, label) in zip(axes, panels, strict=True):
        if steps.empty:
            ax.text(0.5, 0.5, "no cifar_steps runs", ha="center", va="center")
            ax.set_axis_off()
            continue
        stats = [spread(steps[steps["model"] == m][column]) for m in models]
        ax.bar(
            models,
            [s.mean for s in stats],
            color=[f"C{i}" for i in range(len(models))],
            yerr=[0.0 if s.n < 2 else s.sd for s in stats],
            capsize=6,
        )
        ax.set(ylabel=label, title=label)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle("document 001's CNNs on CIFAR-shaped synthetic batches, mean +- sd over seeds")
    return _save(fig, path)
