"""Plots of a results.csv (matplotlib, files only): the formulas' promise against measured
latency, speed-ups, the roofline, RBF throughput and whole models. Drawn from the CSV alone."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from bench.measuring.operators import (
    COMPUTES_WORKLOAD,
    DWSEP,
    FAMILIES,
    MODEL,
    OPERATORS,
    RBF,
    RBF_LOSS,
    family_of,
)
from bench.measuring.operators.dwsep import RUNTIME_PAIRS
from bench.measuring.results import ok_rows, peaks_of
from bench.measuring.suites import HEADLINE_ID
from models import registry

PLOTS = {
    "ratio_gap.png": "operation ratio (formulas) vs measured latency ratio, standard / separable",
    "speedup.png": "speedup of each provider over its workload's baseline",
    "roofline.png": "achieved TFLOP/s vs arithmetic intensity under the measured roofs",
    "rbf_throughput.png": "RBF distance and loss throughput vs problem size",
    "models.png": "whole-model latency (p50, bars p20-p80)",
    "rbf_accuracy.png": "RBF distance error vs distance from the origin, per provider",
}
# Coarse legend groups for charts with many providers.
FAMILY_LABELS = {
    "standard": "eager conv parts / standard conv",
    "part": "eager conv parts / standard conv",
    "eager": "eager PyTorch",
    "compile": "torch.compile",
    "fused": "Triton fused",
    "peer": "other runtimes (ONNX Runtime, OpenVINO, KeOps, faiss)",
    "roofline": "torch.mm (same operands)",
    "methodology": FAMILIES["methodology"],
}


def alternatives(df: pd.DataFrame) -> pd.Series:
    """Rows of providers that compute their workload's own operation (eager, compile, fused)."""
    return df["provider"].map(family_of).isin(COMPUTES_WORKLOAD)


def separable_ratios(df: pd.DataFrame) -> pd.DataFrame:
    """Per separable workload/dtype/batch/provider: formula MAC ratio and latency ratio, each
    runtime's standard conv over its separable provider (>1 means the separable form is
    cheaper/faster): PyTorch's providers over standard_conv, each peer runtime's block over its
    own standard conv (dwsep.RUNTIME_PAIRS). ``runtime`` names the runtime."""
    ok = ok_rows(df)
    dw = ok[ok["workload"].str.startswith("dwsep_")]
    key = ["suite", "workload", "dtype", "batch"]
    peer_names = set(DWSEP.names("peer"))
    parts = []
    for runtime, (standard, separable) in RUNTIME_PAIRS.items():
        std = dw[dw["provider"] == standard].set_index(key)[["macs", "latency_ms_p50"]]
        std = std[~std.index.duplicated(keep="last")]
        if runtime == "pytorch":
            names = [n for n in DWSEP.names(*COMPUTES_WORKLOAD) if n not in peer_names]
        else:
            names = [separable]
        sep = dw[dw["provider"].isin(names)]
        joined = sep.join(std.rename(columns=lambda c: "std_" + c), on=key, how="inner")
        parts.append(joined.assign(runtime=runtime))
    cols = [*key, "runtime", "provider", "op_ratio", "latency_ratio"]
    if not parts or all(p.empty for p in parts):
        return pd.DataFrame(columns=cols)
    joined = pd.concat([p for p in parts if not p.empty], ignore_index=True)
    joined["op_ratio"] = joined["std_macs"] / joined["macs"]
    joined["latency_ratio"] = joined["std_latency_ms_p50"] / joined["latency_ms_p50"]
    return joined[cols].reset_index(drop=True)


def provider_family(provider: str) -> str:
    """The legend group of a provider (its family, in words)."""
    return FAMILY_LABELS.get(family_of(provider), "eager PyTorch")


def _save(fig: plt.Figure, path: Path) -> Path:
    if fig.get_layout_engine() is None:  # constrained-layout figures place their own legends
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
    # one series per runtime (its documents'-way block over its own standard conv); PyTorch's
    # other providers (channels_last, folded, compiled, fused) as small hollow markers
    main = {r: pair[1] for r, pair in RUNTIME_PAIRS.items()}
    for i, runtime in enumerate(RUNTIME_PAIRS):
        group = ratios[(ratios["runtime"] == runtime) & (ratios["provider"] == main[runtime])]
        if not group.empty:
            label = f"{runtime} ({main[runtime]} / {RUNTIME_PAIRS[runtime][0]})"
            ax.scatter(group["op_ratio"], group["latency_ratio"], label=label, s=36, color=f"C{i}")
    others = ratios[(ratios["runtime"] == "pytorch") & (ratios["provider"] != main["pytorch"])]
    for j, (provider, group) in enumerate(others.groupby("provider")):
        ax.scatter(
            group["op_ratio"],
            group["latency_ratio"],
            label=f"pytorch: {provider}",
            s=16,
            facecolors="none",
            edgecolors=f"C{len(RUNTIME_PAIRS) + j}",
            alpha=0.8,
        )
    lo = min(ratios["op_ratio"].min(), ratios["latency_ratio"].min(), 0.5)
    hi = max(ratios["op_ratio"].max(), ratios["latency_ratio"].max(), 2.0)
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="latency ratio = operation ratio")
    ax.axhline(1.0, color="grey", lw=0.8)
    head = ratios[ratios["workload"] == HEADLINE_ID]
    if not head.empty:
        top = head.loc[head["latency_ratio"].idxmax()]
        ax.annotate(
            "document 001's 8.7x example",
            (top["op_ratio"], top["latency_ratio"]),
            xytext=(-150, 10),
            textcoords="offset points",
            fontsize=7,
            arrowprops={"arrowstyle": "->", "lw": 0.6},
        )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="operation ratio: standard MACs / separable MACs (formulas)",
        ylabel="latency ratio: standard / separable (measured)",
        title="Formulas promise vs hardware delivers",
    )
    ax.legend(fontsize=7)
    return _save(fig, path)


def speedup_panels(df: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """(suite, operator kind, rows) per panel of speedup.png: the timed alternatives of one
    suite against one operator's baseline, so no panel mixes baselines (the lenet suite holds
    three)."""
    ok = ok_rows(df).dropna(subset=["speedup_vs_baseline"])
    ok = ok[(ok["provider"] != ok["baseline"]) & alternatives(ok)].copy()
    many_dtypes = ok["dtype"].nunique() > 1
    ok["label"] = ok["workload"] + " N" + ok["batch"].astype(str)
    if many_dtypes:
        ok["label"] += " " + ok["dtype"]
    return [
        (suite, kind, part) for (suite, kind), part in ok.groupby(["suite", "kind"], sort=False)
    ]


def _times_axis(ax: plt.Axes, values: pd.Series) -> None:
    """A log x axis through 1x whose ticks read 0.5x, 1x, 2x (not 5x10^-1), as dense as the
    range allows without labels running into each other."""
    lo, hi = min(values.min(), 1.0), max(values.max(), 1.0)
    ax.set_xscale("log")
    ax.set_xlim(lo / 1.3, hi * 1.3)
    decades = math.log10(hi * 1.3 / (lo / 1.3))
    subs = (1.0, 2.0, 5.0) if decades > 1.5 else (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)
    if decades < 0.5:
        subs = (1.0, 1.1, 1.2, 1.3, 1.5, 1.7, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)
    ax.xaxis.set_major_locator(LogLocator(subs=subs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_speedup(df: pd.DataFrame, path: Path) -> Path:
    panels = speedup_panels(df)
    if not panels:
        fig, ax = plt.subplots(figsize=(7, 3))
        _empty(ax, "timed non-baseline")
        return _save(fig, path)
    heights = [0.9 + 0.16 * len(part) for *_, part in panels]
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(10, sum(heights) + 0.4),
        squeeze=False,
        height_ratios=heights,
        layout="constrained",
    )
    for ax, (suite, kind, part) in zip(axes[:, 0], panels, strict=True):
        labels = list(dict.fromkeys(part["label"]))
        providers = list(dict.fromkeys(part["provider"]))
        step = min(0.8 / len(providers), 0.3)
        for j, provider in enumerate(providers):
            rows = part[part["provider"] == provider].drop_duplicates("label", keep="last")
            ys = [
                labels.index(lab) + (j - (len(providers) - 1) / 2) * step for lab in rows["label"]
            ]
            # bars grow from 1x: right of the line is faster than the baseline, left is slower
            ax.barh(
                ys,
                rows["speedup_vs_baseline"] - 1,
                left=1,
                height=step,
                color=f"C{j}",
                label=provider,
            )
        ax.axvline(1.0, color="k", lw=0.8)
        _times_axis(ax, part["speedup_vs_baseline"])
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.invert_yaxis()
        op = OPERATORS[kind]
        ax.set_title(f"{suite} suite, {op.title}: speedup over {op.baseline.name}", fontsize=9)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    axes[-1, 0].set_xlabel("speedup over the baseline (log; right of 1x = faster)")
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
    copy_gbps, roofs = peaks_of(df)
    if roofs and not math.isnan(copy_gbps):
        top = max(roofs.values())
        xs = [intensity.min() / 2, max(intensity.max() * 2, top * 1e3 / copy_gbps * 4)]
        grid = [xs[0] * (xs[1] / xs[0]) ** (i / 100) for i in range(101)]
        styles = iter(["-", "--", "-.", ":"])
        for precision, tflops in sorted(roofs.items(), key=lambda kv: -kv[1]):
            roof = [min(tflops, copy_gbps * x / 1e3) for x in grid]
            label = f"{precision} roof: {copy_gbps:.3g} GB/s copy, {tflops:.3g} TFLOP/s"
            ax.plot(grid, roof, color="k", ls=next(styles, "-"), lw=1.2, label=label)
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
    for ax, op in ((axes[0], RBF), (axes[1], RBF_LOSS)):
        part = ok[ok["baseline"] == op.baseline.name].dropna(subset=["tflops"])
        if part.empty:
            _empty(ax, op.title)
            continue
        for i, ((provider, dtype), g) in enumerate(part.groupby(["provider", "dtype"])):
            g = g.sort_values("macs")
            # a marker per provider: single-size providers (compile) may sit on another's point
            ax.plot(
                g["macs"],
                g["tflops"] * 1e3,
                marker="os^Dv<>Px*"[i % 10],
                ms=6,
                alpha=0.85,
                label=f"{provider} {dtype}",
            )
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="MACs (B x K x D per product)",
            ylabel="achieved GFLOP/s",
            title=op.title,
        )
        ax.legend(fontsize=6)
    return _save(fig, path)


# Bar colour and legend text per model role in models.png.
MODEL_ROLES = {
    "standard": ("C0", "standard model (first in the panel title)"),
    "twin": ("C1", "its depthwise-separable twin"),
    "single": ("C2", "model without a twin (named in the title)"),
}


def model_groups(df: pd.DataFrame) -> list[list[str]]:
    """[standard model, its depthwise twin] per pair measured; a model without a pair
    (MobileNetV2) is a group of its own."""
    names = list(dict.fromkeys(df.loc[df["suite"] == "models", "workload"]))
    groups: dict[str, list[str]] = {}
    for name in names:
        head = _pair_of(name) or name
        groups.setdefault(head, [])
        groups[head].insert(0 if name == head else len(groups[head]), name)
    return list(groups.values())


def _pair_of(name: str) -> str | None:
    try:
        return registry.get(name).pair
    except registry.UnknownModelError:
        return None


def plot_models(df: pd.DataFrame, path: Path) -> Path:
    """One panel per (standard model, batch, dtype): each backend's bar for the standard model
    beside its depthwise twin; document 001's host clock marked on the eager bar it times."""
    part = ok_rows(df)
    part = part[part["suite"] == "models"]
    groups = model_groups(part)
    settings = list(dict.fromkeys(zip(part["batch"], part["dtype"], strict=True)))
    if not groups:
        fig, ax = plt.subplots(figsize=(9, 4.8))
        _empty(ax, "whole-model")
        return _save(fig, path)
    size = (3.2 * len(groups) + 0.4, 2.9 * len(settings) + 0.8)
    fig, axes = plt.subplots(
        len(settings), len(groups), squeeze=False, figsize=size, layout="constrained"
    )
    for row, (batch, dtype) in enumerate(settings):
        for col, names in enumerate(groups):
            here = part[(part["batch"] == batch) & (part["dtype"] == dtype)]
            _model_panel(axes[row, col], here[here["workload"].isin(names)], names)
            axes[row, col].set_title(f"{' vs '.join(names)}, N{batch} {dtype}", fontsize=8)
        axes[row, 0].set_ylabel("latency, ms (p50; whiskers p20-p80)", fontsize=8)
    handles = [Patch(color=color, label=text) for color, text in MODEL_ROLES.values()]
    handles.append(Line2D([], [], color="k", marker="x", ls="", label=_NAIVE_LABEL))
    fig.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=7, frameon=False)
    fig.suptitle(
        "Whole models: standard vs depthwise-separable twin, per backend (rows "
        "without a latency, e.g. Triton under the interpreter, are left out)",
        fontsize=9,
    )
    return _save(fig, path)


_NAIVE_LABEL = "document 001's host clock of the same eager model (a method, not a backend)"


def _model_panel(ax: plt.Axes, rows: pd.DataFrame, names: list[str]) -> None:
    naive = rows[rows["provider"].map(family_of) == "methodology"]
    timed = rows[rows["provider"].map(family_of) != "methodology"]
    backends = [p for p in MODEL.names() if p in set(timed["provider"])]
    if not backends:
        _empty(ax, "timed")
        return
    step = 0.35
    for j, name in enumerate(names):
        role = "single" if len(names) == 1 else ("standard" if j == 0 else "twin")
        mine = timed[timed["workload"] == name].drop_duplicates("provider", keep="last")
        mine = mine.set_index("provider").reindex(backends)
        xs = [i + (j - (len(names) - 1) / 2) * step for i in range(len(backends))]
        p50 = mine["latency_ms_p50"]
        err = [(p50 - mine["latency_ms_p20"]).fillna(0), (mine["latency_ms_p80"] - p50).fillna(0)]
        ax.bar(xs, p50, width=step, yerr=err, capsize=2, color=MODEL_ROLES[role][0])
        for _, r in naive[naive["workload"] == name].iterrows():
            wraps = MODEL.get(r["provider"]).wraps  # the eager bar whose function it times
            if wraps in backends:
                ax.plot(xs[backends.index(wraps)], r["latency_ms_p50"], "kx", ms=7)
    ax.set_xticks(range(len(backends)), backends, fontsize=7)
    ax.set_xlim(-0.6, len(backends) - 0.4)
    ax.set_ylim(bottom=0)
    ax.tick_params(axis="y", labelsize=7)


def rbf_accuracy(df: pd.DataFrame) -> pd.DataFrame:
    """The RBF distance rows of the accuracy workloads (the same B, D, K with the data moved
    away from the origin, suites.ACCURACY_OFFSETS) and their offset-0 twin: base workload,
    offset, provider, dtype, max_rel_err. Only the providers that compute the distances."""
    rows = df[df["status"].isin(["ok", "interpreter"]) & df["workload"].str.startswith("rbf_")]
    rows = rows[alternatives(rows)].dropna(subset=["max_rel_err"])
    far = rows["workload"].str.extract(r"^(?P<base>.+?)(?:_off(?P<offset>[0-9.e+]+))?$")
    rows = rows.assign(base=far["base"], offset=far["offset"].astype(float).fillna(0.0))
    bases = set(rows.loc[rows["offset"] > 0, "base"])
    rows = rows[rows["base"].isin(bases)]
    return rows[["base", "offset", "provider", "dtype", "max_rel_err"]].reset_index(drop=True)


def plot_rbf_accuracy(df: pd.DataFrame, path: Path) -> Path:
    acc = rbf_accuracy(df)
    acc = acc[acc["dtype"] == "float32"] if (acc["dtype"] == "float32").any() else acc
    fig, ax = plt.subplots(figsize=(7, 4.8))
    if acc.empty:
        _empty(ax, "RBF far-from-origin accuracy")
        return _save(fig, path)
    offsets = sorted(set(acc["offset"]))
    for i, (provider, group) in enumerate(acc.groupby("provider", sort=False)):
        group = group.drop_duplicates("offset", keep="last").sort_values("offset")
        xs = [offsets.index(o) for o in group["offset"]]
        peer = family_of(provider) == "peer"
        ax.plot(
            xs,
            group["max_rel_err"].clip(lower=1e-17),
            marker="s" if peer else "o",
            ls="--" if peer else "-",
            color=f"C{i}",
            label=f"{provider} ({provider_family(provider)})",
        )
    ax.axhline(2.0**-24, color="grey", lw=0.8, ls=":", label="float32 rounding (2^-24)")
    ax.set_xticks(range(len(offsets)), [f"{o:g}" for o in offsets])
    base = ", ".join(sorted(set(acc["base"])))
    ax.set(
        yscale="log",
        xlabel="offset of x and the centers from the origin (each coordinate)",
        ylabel="max relative error vs float64",
        title=f"RBF distances far from the origin ({base}, {acc['dtype'].iloc[0]})",
    )
    ax.legend(fontsize=7)
    return _save(fig, path)


_DRAW = {
    "ratio_gap.png": plot_ratio_gap,
    "speedup.png": plot_speedup,
    "roofline.png": plot_roofline,
    "rbf_throughput.png": plot_rbf,
    "models.png": plot_models,
    "rbf_accuracy.png": plot_rbf_accuracy,
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
            ax.scatter(
                g.loc[~bad, "registers"],
                100 * g.loc[~bad, "occupancy"],
                s=22,
                alpha=0.7,
                marker=markers.get(layout, "o"),
                label=f"{dtype} {layout}",
            )
            ax.scatter(
                g.loc[bad, "registers"],
                100 * g.loc[bad, "occupancy"],
                s=60,
                marker="x",
                color="red",
            )
        spills = int((part["spill_bytes"] > 0).sum())
        over = int((~part["fits"].astype(bool) & (part["spill_bytes"] == 0)).sum())
        ax.axhline(25, color="grey", ls="--", lw=0.8)
        ax.axvline(255, color="grey", ls=":", lw=0.8)
        ax.set(
            xlim=(0, 265),
            ylim=(0, 105),
            xlabel="registers per thread",
            ylabel="theoretical occupancy, %",
            title=f"{kernel} on {arch}: {len(part)} rows, {spills} spill, "
            f"{over} over the shared-memory limit (red x)",
        )
        ax.title.set_fontsize(8)
        ax.legend(fontsize=6, loc="upper right")
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_axis_off()
    return _save(fig, path)
