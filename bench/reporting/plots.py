"""Plots of a results.csv (matplotlib, files only): the formulas' promise against measured
latency, speed-ups, the roofline, RBF throughput and whole models. Drawn from the CSV alone."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt
import pandas as pd

from bench.measuring.operators import COMPUTES_WORKLOAD, DWSEP, FAMILIES, family_of
from bench.measuring.results import ok_rows, peaks_of
from bench.measuring.suites import HEADLINE_ID

PLOTS = {
    "ratio_gap.png": "operation ratio (formulas) vs measured latency ratio, standard / separable",
    "speedup.png": "speedup of each provider over its workload's baseline",
    "roofline.png": "achieved TFLOP/s vs arithmetic intensity under the measured roofs",
    "rbf_throughput.png": "RBF distance and loss throughput vs problem size",
    "models.png": "whole-model latency (p50, bars p20-p80)",
}
# Coarse legend groups for charts with many providers.
FAMILY_LABELS = {
    "standard": "eager conv parts / standard conv",
    "part": "eager conv parts / standard conv",
    "eager": "eager PyTorch",
    "compile": "torch.compile",
    "fused": "Triton fused",
    "roofline": "torch.mm (same operands)",
    "methodology": FAMILIES["methodology"],
}


def alternatives(df: pd.DataFrame) -> pd.Series:
    """Rows of providers that compute their workload's own operation (eager, compile, fused)."""
    return df["provider"].map(family_of).isin(COMPUTES_WORKLOAD)


def separable_ratios(df: pd.DataFrame) -> pd.DataFrame:
    """Per separable workload/dtype/batch/provider: formula MAC ratio and latency ratio, both
    standard_conv over the separable provider (>1 means the separable form is cheaper/faster)."""
    ok = ok_rows(df)
    dw = ok[ok["workload"].str.startswith("dwsep_")]
    key = ["suite", "workload", "dtype", "batch"]
    std = dw[dw["provider"] == DWSEP.baseline.name].set_index(key)[["macs", "latency_ms_p50"]]
    std = std[~std.index.duplicated(keep="last")]
    sep = dw[dw["provider"].isin(DWSEP.names(*COMPUTES_WORKLOAD))]
    joined = sep.join(std.rename(columns=lambda c: "std_" + c), on=key, how="inner")
    joined["op_ratio"] = joined["std_macs"] / joined["macs"]
    joined["latency_ratio"] = joined["std_latency_ms_p50"] / joined["latency_ms_p50"]
    return joined[[*key, "provider", "op_ratio", "latency_ratio"]].reset_index(drop=True)


def provider_family(provider: str) -> str:
    """The legend group of a provider (its family, in words)."""
    return FAMILY_LABELS.get(family_of(provider), "eager PyTorch")


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _empty(ax: plt.Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} rows in this results.csv", ha="center", va="center")
    ax.set_axis_off()


def plot_ratio_gap(df: pd.DataFrame, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 5.5))
    ratios = separable_ratios(df)
    if ratios.empty:
        _empty(ax, "separable-vs-standard")
        return _save(fig, path)
    for provider, group in ratios.groupby("provider"):
        ax.scatter(group["op_ratio"], group["latency_ratio"], label=provider, alpha=0.8, s=28)
    lo = min(ratios["op_ratio"].min(), ratios["latency_ratio"].min(), 0.5)
    hi = max(ratios["op_ratio"].max(), ratios["latency_ratio"].max(), 2.0)
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="latency ratio = operation ratio")
    ax.axhline(1.0, color="grey", lw=0.8)
    head = ratios[ratios["workload"] == HEADLINE_ID]
    if not head.empty:
        top = head.loc[head["latency_ratio"].idxmax()]
        ax.annotate("document 001's 8.7x example", (top["op_ratio"], top["latency_ratio"]),
                    xytext=(-150, 10), textcoords="offset points", fontsize=7,
                    arrowprops={"arrowstyle": "->", "lw": 0.6})  # fmt: skip
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="operation ratio: standard MACs / separable MACs (formulas)",
        ylabel="latency ratio: standard / separable (measured)",
        title="Formulas promise vs hardware delivers",
    )
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_speedup(df: pd.DataFrame, path: Path) -> Path:
    ok = ok_rows(df).dropna(subset=["speedup_vs_baseline"])
    ok = ok[(ok["provider"] != ok["baseline"]) & alternatives(ok)]
    suites = list(dict.fromkeys(ok["suite"]))
    heights = []
    for suite in suites:
        part = ok[ok["suite"] == suite]
        bars = part[["workload", "batch", "dtype"]].drop_duplicates().shape[0]
        heights.append(max(1.5, 0.18 * bars * part["provider"].nunique() ** 0.5))
    if not suites:
        fig, ax = plt.subplots(figsize=(7, 3))
        _empty(ax, "timed non-baseline")
        return _save(fig, path)
    fig, axes = plt.subplots(len(suites), 1, figsize=(9, sum(heights) + 1), squeeze=False,
                             gridspec_kw={"height_ratios": heights})  # fmt: skip
    for ax, suite in zip(axes[:, 0], suites, strict=True):
        part = ok[ok["suite"] == suite].copy()
        part["label"] = part["workload"] + " N" + part["batch"].astype(str) + " " + part["dtype"]
        table = part.pivot_table(index="label", columns="provider", values="speedup_vs_baseline")
        table.plot.barh(ax=ax, width=0.85, legend=True)
        ax.axvline(1.0, color="k", lw=0.8)
        ax.set_xscale("log")
        base = ", ".join(sorted(set(part["baseline"].dropna())))
        ax.set(title=f"{suite}: speedup over {base}", xlabel="speedup (log)", ylabel="")
        ax.tick_params(axis="y", labelsize=6)
        ax.legend(fontsize=6, loc="lower right")
    return _save(fig, path)


def plot_roofline(df: pd.DataFrame, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 5.5))
    ok = ok_rows(df).dropna(subset=["tflops", "macs", "bytes"])
    ok = ok[(ok["bytes"] > 0) & (ok["macs"] > 0)]
    if ok.empty:
        _empty(ax, "timed")
        return _save(fig, path)
    ok = ok[ok["provider"].map(family_of) != "methodology"]
    intensity = 2 * ok["macs"] / ok["bytes"]
    for family, idx in ok.groupby(ok["provider"].map(provider_family)).groups.items():
        ax.scatter(intensity[idx], ok.loc[idx, "tflops"], s=16, alpha=0.75, label=family)
    copy_gbps, mm_tflops = peaks_of(df)
    if not (math.isnan(copy_gbps) or math.isnan(mm_tflops)):
        xs = [intensity.min() / 2, max(intensity.max() * 2, mm_tflops * 1e3 / copy_gbps * 4)]
        grid = [xs[0] * (xs[1] / xs[0]) ** (i / 100) for i in range(101)]
        roof = [min(mm_tflops, copy_gbps * x / 1e3) for x in grid]
        label = f"roof: {copy_gbps:.3g} GB/s copy, {mm_tflops:.3g} TFLOP/s compute"
        ax.plot(grid, roof, "k-", lw=1.5, label=label)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="arithmetic intensity (FLOPs per minimal byte)",
        ylabel="achieved TFLOP/s",
        title="Roofline (peaks measured in the same run)",
    )
    ax.legend(fontsize=6, ncol=2)
    return _save(fig, path)


def plot_rbf(df: pd.DataFrame, path: Path) -> Path:
    ok = ok_rows(df)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, prefix, title in ((axes[0], "rbf_", "distance"), (axes[1], "rbfloss_", "loss fwd+bwd")):
        part = ok[ok["workload"].str.startswith(prefix)].dropna(subset=["tflops"])
        if part.empty:
            _empty(ax, f"RBF {title}")
            continue
        for (provider, dtype), g in part.groupby(["provider", "dtype"]):
            g = g.sort_values("macs")
            ax.plot(g["macs"], g["tflops"] * 1e3, marker="o", label=f"{provider} {dtype}")
        ax.set(xscale="log", yscale="log", xlabel="MACs (B x K x D per product)",
               ylabel="achieved GFLOP/s", title=f"RBF {title}")  # fmt: skip
        ax.legend(fontsize=6)
    return _save(fig, path)


def plot_models(df: pd.DataFrame, path: Path) -> Path:
    ok = ok_rows(df)
    part = ok[ok["suite"] == "models"].copy()
    fig, ax = plt.subplots(figsize=(9, 4.8))
    if part.empty:
        _empty(ax, "whole-model")
        return _save(fig, path)
    part["label"] = part["workload"] + " N" + part["batch"].astype(str) + " " + part["dtype"]
    p50 = part.pivot_table(index="label", columns="provider", values="latency_ms_p50")
    lo = p50 - part.pivot_table(index="label", columns="provider", values="latency_ms_p20")
    hi = part.pivot_table(index="label", columns="provider", values="latency_ms_p80") - p50
    errors = [[lo[c].fillna(0).values, hi[c].fillna(0).values] for c in p50.columns]
    p50.plot.bar(ax=ax, yerr=errors, capsize=2, width=0.8)
    ax.set(yscale="log", ylabel="latency, ms (p50; bars p20-p80)", xlabel="",
           title="Whole models: standard vs depthwise-separable, per backend")  # fmt: skip
    ax.tick_params(axis="x", labelsize=7, labelrotation=30)
    ax.legend(fontsize=7)
    return _save(fig, path)


_DRAW = {
    "ratio_gap.png": plot_ratio_gap,
    "speedup.png": plot_speedup,
    "roofline.png": plot_roofline,
    "rbf_throughput.png": plot_rbf,
    "models.png": plot_models,
}


def write_plots(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [draw(df, out_dir / name) for name, draw in _DRAW.items()]


def plot_compiled(df: pd.DataFrame, path: Path) -> Path:
    """compiled.csv as one panel per (kernel, arch): registers per thread against theoretical
    occupancy for every config, spilling configs and configs over the shared-memory limit marked,
    with the 25% occupancy goal and the 255-register cap drawn."""
    ok = df[df["status"] == "ok"]
    panels = list(dict.fromkeys(zip(ok["kernel"], ok["arch"], strict=True)))
    if not panels:
        fig, ax = plt.subplots(figsize=(7, 3))
        _empty(ax, "compiled")
        return _save(fig, path)
    cols = min(2, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 3.8 * rows), squeeze=False)
    markers = {"nchw": "s", "nhwc": "o", "row-major": "D"}
    for ax, (kernel, arch) in zip(axes.flat, panels, strict=False):
        part = ok[(ok["kernel"] == kernel) & (ok["arch"] == arch)]
        for (dtype, layout), g in part.groupby(["dtype", "layout"]):
            bad = (g["spill_bytes"] > 0) | ~g["fits"].astype(bool)
            ax.scatter(g.loc[~bad, "registers"], 100 * g.loc[~bad, "occupancy"], s=22, alpha=0.7,
                       marker=markers.get(layout, "o"), label=f"{dtype} {layout}")  # fmt: skip
            ax.scatter(g.loc[bad, "registers"], 100 * g.loc[bad, "occupancy"], s=60,
                       marker="x", color="red")  # fmt: skip
        spills = int((part["spill_bytes"] > 0).sum())
        over = int((~part["fits"].astype(bool) & (part["spill_bytes"] == 0)).sum())
        ax.axhline(25, color="grey", ls="--", lw=0.8)
        ax.axvline(255, color="grey", ls=":", lw=0.8)
        ax.set(xlim=(0, 265), ylim=(0, 105), xlabel="registers per thread",
               ylabel="theoretical occupancy, %",
               title=f"{kernel} on {arch}: {len(part)} rows, {spills} spill, "
               f"{over} over the shared-memory limit (red x)")  # fmt: skip
        ax.title.set_fontsize(8)
        ax.legend(fontsize=6, loc="upper right")
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_axis_off()
    return _save(fig, path)
