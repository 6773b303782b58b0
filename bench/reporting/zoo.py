"""The torchvision zoo check as a markdown table and a plot of documented vs counted figures,
drawn from the zoo CSV alone (`sepbench count --zoo torchvision`)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt
import pandas as pd


def write_markdown(df: pd.DataFrame, path: Path) -> None:
    ok = df[df["status"] == "ok"]
    counts = df["verdict"].value_counts().to_dict()
    lines = [
        "# torchvision classification zoo: documented vs counted",
        "",
        "One row per model and documented input size (weights sharing a size share a row). "
        "`doc_gflops` is the weights' meta `_ops`; torchvision counts multiply-adds of conv, "
        "matmul and attention (FlopCounterMode's FLOPs / 2), so `gmacs_torch` should equal it "
        "to the 3 decimals it is rounded to. The formulas also count reads (BN, LN, pooling, "
        "softmax: bench/formulas.py rules b and c), fvcore counts BN at 2/elem, LN at 5/elem "
        "and skips scaled-dot-product attention: `explanation` says which convention explains "
        "each difference.",
        "",
        f"Verdicts: {counts}.",
    ]
    lines.append(
        f"Counting the {len(df)} rows took {df['seconds'].sum():.0f} s in all (the sum "
        "of each row's own time: build, probe on the meta device, fvcore's traced run "
        "on 1 thread)."
    )
    shown = df.drop(columns=["weights", "status"]).copy()
    for col in ("gmacs_formula", "gmacs_fvcore", "gmacs_torch"):
        shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    lines += ["", shown.to_markdown(index=False), ""]
    if len(ok) < len(df):
        lines.append(f"{len(df) - len(ok)} rows failed; their explanation holds the error.")
    path.write_text("\n".join(lines))


def plot(df: pd.DataFrame, path: Path) -> None:
    """Counted / documented per model for MACs (each counter) and parameters, against the
    documented size: 1.0 is agreement; log x so 0.06 and 1017 GFLOPS both show."""
    ok = df[df["status"] == "ok"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 8.5))
    for col, label, marker in (
        ("gmacs_torch", "FlopCounterMode / 2", "o"),
        ("gmacs_formula", "formulas (bench/formulas.py)", "s"),
        ("gmacs_fvcore", "fvcore", "^"),
    ):
        top.scatter(
            ok["doc_gflops"],
            ok[col] / ok["doc_gflops"],
            label=label,
            marker=marker,
            s=22,
            alpha=0.8,
        )
    for _, r in ok[(ok["gmacs_fvcore"] / ok["doc_gflops"] < 0.97)].iterrows():
        top.annotate(
            f"{r['model']}@{r['input']}",
            (r["doc_gflops"], r["gmacs_fvcore"] / r["doc_gflops"]),
            fontsize=6,
            xytext=(3, -3),
            textcoords="offset points",
        )
    top.set_ylabel("counted MACs / documented _ops")
    top.set_title("torchvision classification zoo: counted vs documented (1.0 = agreement)")
    bottom.scatter(
        ok["doc_params"],
        ok["params"] / ok["doc_params"],
        s=22,
        color="tab:purple",
        label="parameters of the weights=None build",
    )
    for _, r in ok[ok["params"] != ok["doc_params"]].iterrows():
        bottom.annotate(
            r["model"],
            (r["doc_params"], r["params"] / r["doc_params"]),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    bottom.set_ylabel("counted / documented num_params")
    for ax, xlabel in ((top, "documented GFLOPS (_ops)"), (bottom, "documented num_params")):
        ax.set_xscale("log")
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_zoo_report(df: pd.DataFrame, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    md, png = out / "zoo_torchvision.md", out / "zoo_torchvision.png"
    write_markdown(df, md)
    plot(df, png)
    return [md, png]
