"""results.csv -> plots (matplotlib) -> summary.md. Everything here reads the CSV alone, so
`sepbench plot DIR` redraws a report without measuring anything."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt
import pandas as pd

from bench.errors import UserError
from bench.runner import PEAKS_SUITE, load_results, peaks_of
from bench.suites import HEADLINE_ID

SEPARABLE = ("eager_nchw", "eager_channels_last", "eager_folded", "compile_default", "triton_fused")
# Providers that compute something else (or time differently): never "the fastest alternative".
NOT_ALTERNATIVES = (
    "naive_host_clock",
    "mm_same_size",
    "standard_conv",
    "depthwise_only",
    "pointwise_only",
)
PLOTS = {
    "ratio_gap.png": "operation ratio (formulas) vs measured latency ratio, standard / separable",
    "speedup.png": "speedup of each provider over its workload's baseline",
    "roofline.png": "achieved TFLOP/s vs arithmetic intensity under the measured roofs",
    "rbf_throughput.png": "RBF distance and loss throughput vs problem size",
    "models.png": "whole-model latency (p50, bars p20-p80)",
}


def _ok(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df["status"] == "ok") & (df["suite"] != PEAKS_SUITE)]


def separable_ratios(df: pd.DataFrame) -> pd.DataFrame:
    """Per separable workload/dtype/batch/provider: formula MAC ratio and latency ratio, both
    standard_conv over the separable provider (>1 means the separable form is cheaper/faster)."""
    ok = _ok(df)
    dw = ok[ok["workload"].str.startswith("dwsep_")]
    key = ["suite", "workload", "dtype", "batch"]
    std = dw[dw["provider"] == "standard_conv"].set_index(key)[["macs", "latency_ms_p50"]]
    std = std[~std.index.duplicated(keep="last")]
    sep = dw[dw["provider"].isin(SEPARABLE)]
    joined = sep.join(std.rename(columns=lambda c: "std_" + c), on=key, how="inner")
    joined["op_ratio"] = joined["std_macs"] / joined["macs"]
    joined["latency_ratio"] = joined["std_latency_ms_p50"] / joined["latency_ms_p50"]
    return joined[[*key, "provider", "op_ratio", "latency_ratio"]].reset_index(drop=True)


def provider_family(provider: str) -> str:
    """Coarse groups for charts with many providers."""
    if provider in ("standard_conv", "depthwise_only", "pointwise_only"):
        return "eager conv parts / standard conv"
    if provider.startswith("compile"):
        return "torch.compile"
    if provider in ("triton_fused", "triton", "fused"):
        return "Triton fused"
    if provider == "mm_same_size":
        return "torch.mm (same operands)"
    return "eager PyTorch"


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
    ok = _ok(df).dropna(subset=["speedup_vs_baseline"])
    ok = ok[(ok["provider"] != ok["baseline"]) & ~ok["provider"].isin(NOT_ALTERNATIVES)]
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
    ok = _ok(df).dropna(subset=["tflops", "macs", "bytes"])
    ok = ok[(ok["bytes"] > 0) & (ok["macs"] > 0)]
    if ok.empty:
        _empty(ax, "timed")
        return _save(fig, path)
    ok = ok[ok["provider"] != "naive_host_clock"]
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
    ok = _ok(df)
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
    ok = _ok(df)
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


# ---------------------------------------------------------------------------------------------
# summary.md


def _fmt(value: object, digits: int = 3) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:.{digits}g}"
    return str(value)


def _table(df: pd.DataFrame) -> str:
    if df.empty:
        return "(none)"
    return df.map(_fmt).to_markdown(index=False)


def headline_table(df: pd.DataFrame) -> pd.DataFrame:
    """Document 001's 8.7x example: the formula's ratio beside the measured ones."""
    rows = []
    head = df[(df["workload"] == HEADLINE_ID) & (df["suite"] == "documents")]
    for (dtype, batch), g in head.groupby(["dtype", "batch"]):
        by = g.set_index("provider")

        def latency(provider: str, by: pd.DataFrame = by) -> float:
            if provider in by.index and by.loc[provider, "status"] == "ok":
                return float(by.loc[provider, "latency_ms_p50"])
            return math.nan

        def ratio(provider: str, by: pd.DataFrame = by) -> str:
            if provider in by.index and by.loc[provider, "status"] == "interpreter":
                return "not measured on CPU (interpreter)"
            if provider not in by.index or by.loc[provider, "status"] != "ok":
                return "not measured"
            return f"{latency('standard_conv') / latency(provider):.3g}x"

        op = by.loc["standard_conv", "macs"] / by.loc["eager_nchw", "macs"] if {
            "standard_conv", "eager_nchw"} <= set(by.index) else math.nan  # fmt: skip
        rows.append({
            "dtype": dtype, "batch": batch,
            "operation ratio (formulas)": f"{op:.3g}x" if not math.isnan(op) else "",
            "standard conv p50 ms": _fmt(latency("standard_conv")),
            "eager latency ratio": ratio("eager_nchw"),
            "compile latency ratio": ratio("compile_default"),
            "fused latency ratio": ratio("triton_fused"),
        })  # fmt: skip
    return pd.DataFrame(rows)


def methodology_table(df: pd.DataFrame) -> pd.DataFrame:
    """Document 001's host-clock method beside the honest timer on the same function."""
    rows = []
    naive = df[(df["provider"] == "naive_host_clock") & (df["status"] == "ok")]
    for _, r in naive.iterrows():
        honest_name = "torch" if r["suite"] == "models" else "eager_nchw"
        honest = df[(df["suite"] == r["suite"]) & (df["workload"] == r["workload"])
                    & (df["dtype"] == r["dtype"]) & (df["batch"] == r["batch"])
                    & (df["provider"] == honest_name) & (df["status"] == "ok")]  # fmt: skip
        if honest.empty:
            continue
        h = honest.iloc[-1]
        rows.append({
            "workload": r["workload"], "batch": r["batch"], "dtype": r["dtype"],
            "same function as": honest_name, "naive ms/call": r["latency_ms_p50"],
            "honest p50 ms": h["latency_ms_p50"],
            "naive / honest": r["latency_ms_p50"] / h["latency_ms_p50"],
        })  # fmt: skip
    return pd.DataFrame(rows)


def fused_losses(df: pd.DataFrame) -> pd.DataFrame:
    """Workloads where a timed fused kernel is slower than the fastest other provider."""
    ok = _ok(df)
    rows = []
    fused_names = ("triton_fused", "triton", "fused")
    for key, g in ok.groupby(["suite", "workload", "dtype", "batch"]):
        fused = g[g["provider"].isin(fused_names)]
        others = g[~g["provider"].isin((*fused_names, *NOT_ALTERNATIVES))]
        if fused.empty or others.empty:
            continue
        best = others.loc[others["latency_ms_p50"].idxmin()]
        for _, f in fused.iterrows():
            if f["latency_ms_p50"] > best["latency_ms_p50"]:
                rows.append({
                    "suite": key[0], "workload": key[1], "dtype": key[2], "batch": key[3],
                    "fused": f["provider"], "fused p50 ms": f["latency_ms_p50"],
                    "fastest other": best["provider"], "its p50 ms": best["latency_ms_p50"],
                    "fused / fastest": f["latency_ms_p50"] / best["latency_ms_p50"],
                })  # fmt: skip
    return pd.DataFrame(rows)


def claims_table(df: pd.DataFrame) -> tuple[pd.DataFrame | None, str]:
    try:
        from bench.claims import evaluate_claims

        return evaluate_claims(results=df), ""
    except Exception as err:  # the summary still gets written; it says why the table is missing
        return None, f"{type(err).__name__}: {err}"


def write_summary(df: pd.DataFrame, out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    work = df[df["suite"] != PEAKS_SUITE]
    first = df.iloc[0] if len(df) else pd.Series(dtype=object)
    copy_gbps, mm_tflops = peaks_of(df)
    status = work["status"].value_counts().to_dict()
    sizes = ", ".join(str(s) for s in work["size"].dropna().unique()) or "unrecorded"
    lines = [
        f"# sepbench report: {first.get('device', 'unknown device')}",
        "",
        "Generated from `results.csv` alone (`sepbench plot DIR` redraws it). "
        "Latencies are medians with p20/p80 in the CSV; ratios compare providers measured in "
        "one run on one machine.",
        "",
        "| | |",
        "|---|---|",
        f"| device | {first.get('device', '')} |",
        f"| threads | {_fmt(first.get('threads', ''))} |",
        f"| torch | {first.get('torch_version', '')} |",
        f"| triton | {first.get('triton_version', '')} |",
        f"| git | {first.get('git_sha', '')} |",
        f"| measured | {work['timestamp'].min()} .. {work['timestamp'].max()} |",
        f"| suites (size) | {', '.join(dict.fromkeys(work['suite']))} ({sizes}) |",
        f"| rows | {len(work)}: {', '.join(f'{k} {v}' for k, v in status.items())} |",
        f"| copy bandwidth (measured) | {_fmt(copy_gbps)} GB/s |",
        f"| compute rate (faster of torch.mm and a 3x3 conv) | {_fmt(mm_tflops)} TFLOP/s |",
        "",
    ]
    cpu = "interpreter" in set(work["status"])
    if cpu:
        lines += [
            "On this device the Triton kernels run under the Triton interpreter: their rows "
            "(status `interpreter`) carry a correctness check on a reduced shape (see each row's "
            "note) and no latency. torch.compile builds C++ per shape on CPU (about 15-20 s "
            "each), so the CPU quick suite compiles only the 8.7x workload, the first RBF size "
            "and lenet5_dw; elsewhere compile rows are absent, not failed.",
            "",
        ]
    lines += ["## The 8.7x example (document 001, 128 -> 256 channels at 32x32)", ""]
    lines += [
        "Ratios are standard conv over the separable provider (bigger is faster separable).",
        "",
        _table(headline_table(df)),
        "",
    ]
    lines += ["## Document 001's timing method vs an honest timer", ""]
    lines += [
        "`naive_host_clock` reruns document 001's snippet (host clock around 100 calls, no "
        "warm-up, no synchronization) on the same function the honest timer measures.",
        "",
        _table(methodology_table(df)),
        "",
    ]
    claims, why = claims_table(df)
    lines += ["## Claims of the documents, checked", ""]
    if claims is None:
        lines += [f"Claims table unavailable: {why}", ""]
    else:
        cols = [c for c in ("claim_id", "document", "claimed", "measured", "verdict", "note")
                if c in claims.columns]  # fmt: skip
        lines += [_table(claims[cols]), ""]
    lines += ["## Plots", ""]
    lines += [f"- [{desc}]({name})" for name, desc in PLOTS.items()]
    lines += ["", "## Where the fused kernels lose", ""]
    losses = fused_losses(df)
    fused_timed = _ok(df)["provider"].isin(("triton_fused", "triton", "fused")).any()
    if not fused_timed:
        lines += ["No fused-kernel latency was measured on this device, so nothing to report "
                  "here; see a GPU report (e.g. reports/h200/).", ""]  # fmt: skip
    elif losses.empty:
        lines += ["In this run every timed fused kernel beat every other non-baseline provider "
                  "of its workload.", ""]  # fmt: skip
    else:
        lines += [_table(losses), ""]
    errs = work[work["provider"].notna()].copy()
    errs = errs.groupby("provider")["max_rel_err"].max().dropna().reset_index()
    lines += ["## Correctness: largest max_rel_err per provider", ""]
    lines += [
        "max |out - ref| / max |ref| against a float64 reference of the same operation.",
        "",
        _table(errs),
        "",
    ]
    failed = work[work["status"].isin(("error", "unavailable"))]
    lines += ["## Rows that did not run", ""]
    lines += [_table(failed[["suite", "workload", "provider", "dtype", "batch", "status",
                             "message"]]), ""]  # fmt: skip
    path = out_dir / "summary.md"
    path.write_text("\n".join(lines))
    return path


def write_report(out_dir: Path) -> list[Path]:
    """Plots and summary.md for the results.csv in ``out_dir``."""
    out_dir = Path(out_dir)
    df = load_results(out_dir / "results.csv")
    return [*write_plots(df, out_dir), write_summary(df, out_dir)]


def cli_plot(args) -> int:
    """`sepbench plot DIR`: redraw plots and summary from DIR/results.csv."""
    out_dir = Path(args.dir)
    if not out_dir.is_dir():
        raise UserError(f"{out_dir} is not a directory; give a report folder like reports/cpu")
    for path in write_report(out_dir):
        print(f"wrote {path}")
    return 0
