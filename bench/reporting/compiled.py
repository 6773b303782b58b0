"""compiled.md: what the GPU would execute, from a compiled.csv (`sepbench inspect`): per kernel,
arch, dtype and layout, the spills, registers, best occupancy, load widths and tensor cores."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

OCCUPANCY_GOAL = 0.25  # 16 of 64 warps per SM: issue 12's floor for a memory-bound kernel


def compiled_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (kernel, arch, dtype, layout) over its workloads and the configs the size
    pruning keeps; occupancy over those the GPU pruning keeps too (no spills, shared memory
    within the block limit: the `fits` column)."""
    ok = df[df["status"] == "ok"]
    rows = []
    for (kernel, arch, dtype, layout), g in ok.groupby(["kernel", "arch", "dtype", "layout"]):
        fits = g[g["fits"].astype(bool)]
        # per workload, the best occupancy a kept config reaches; then the worst workload
        best = fits.groupby("workload")["occupancy"].max().reindex(g["workload"].unique())
        best = best.fillna(0.0)
        narrow = int(g[["ldg_8", "ldg_16"]].to_numpy().sum())
        rows.append(
            {
                "kernel": kernel,
                "arch": arch,
                "dtype": dtype,
                "layout": layout,
                "workloads": g["workload"].nunique(),
                "configs": len(g),
                "spilling (dropped on the GPU)": int((g["spill_bytes"] > 0).sum()),
                "over shared limit": int((g["shared_bytes"] > g["shared_limit"]).sum()),
                "registers (max)": int(g["registers"].max()),
                "occupancy, worst workload's best kept config": f"{best.min():.0%}",
                "workloads under 25%": int((best < OCCUPANCY_GOAL).sum()),
                "8/16-bit loads": narrow,
                "loads 32/64/128-bit": f"{int(g['ldg_32'].sum())}/{int(g['ldg_64'].sum())}/"
                f"{int(g['ldg_128'].sum())}",
                "tensor cores": ", ".join(
                    sorted(
                        {k.split(".")[0] for s in g["mma_kinds"].dropna() for k in str(s).split()}
                    )
                )
                or "none",
            }
        )
    return pd.DataFrame(rows)


FLOOR_GOAL = 0.8  # issue 17: the best kept config's lower bound within 80% of the floor


def floor_table(df: pd.DataFrame, gpu: str = "h200") -> pd.DataFrame:
    """Per (kernel, arch, workload, batch, dtype, layout), the floor fraction ideal_us / bound_us
    on ``gpu`` of the best config the GPU pruning keeps (`sepbench inspect --traffic` rows),
    with its config, what bounds it, requested / ideal bytes and the depthwise recompute."""
    if "bound_us_" + gpu not in df or df["bound_us_" + gpu].isna().all():
        return pd.DataFrame()
    ok = df[(df["status"] == "ok") & df["fits"].astype(bool) & df["bound_us_" + gpu].notna()]
    ok = ok.assign(floor=ok["ideal_us_" + gpu] / ok["bound_us_" + gpu])
    keys = ["kernel", "arch", "workload", "batch", "dtype", "layout"]
    best = ok.loc[ok.groupby(keys)["floor"].idxmax()]
    return pd.DataFrame(
        {
            **{k: best[k] for k in keys},
            "best config": best["config"],
            f"floor fraction ({gpu})": best["floor"].map(lambda v: f"{v:.0%}"),
            f"bound_us_{gpu}": best["bound_us_" + gpu].map(lambda v: f"{v:.3g}"),
            f"ideal_us_{gpu}": best["ideal_us_" + gpu].map(lambda v: f"{v:.3g}"),
            "bound_by": best["bound_by"],
            "requested / ideal bytes": (best["requested_bytes"] / best["ideal_bytes"]).map(
                lambda v: f"{v:.2f}"
            ),
            "dw_recompute": best["dw_recompute"].map(lambda v: "" if pd.isna(v) else f"{v:.2f}"),
        }
    )


def floor_section(df: pd.DataFrame) -> list[str]:
    """Markdown lines: the floor table, when the rows carry traffic columns."""
    table = floor_table(df)
    if not len(table):
        return []
    under = int((table["floor fraction (h200)"].str.rstrip("%").astype(float) < 80).sum())
    return [
        "## Traffic and the memory floor (`--traffic`)",
        "",
        "Bytes counted under the Triton interpreter (sampled programs scaled to the grid; "
        "bench/measuring/inspect_traffic.py states the L2 model and the peaks' sources). Floor "
        "fraction = ideal_us / bound_us: 100% is a launch whose lower bound is one read of each "
        f"input and one write of each output at copy bandwidth. {under} of {len(table)} "
        f"(workload, dtype, layout, arch) rows are under the {FLOOR_GOAL:.0%} goal.",
        "",
        table.to_markdown(index=False),
        "",
    ]


SUITES_SCOPE = "per workload of the suites' GPU sizes"
REPORT_SCOPE = (
    "for one workload of this report per kernel, as its fused provider runs it (float32, "
    "channels_last for dw-sep); `sepbench inspect` has the full matrix"
)


def compiled_section(df: pd.DataFrame, scope: str = SUITES_SCOPE) -> list[str]:
    """Markdown lines: the table, and the rows that failed to compile."""
    errors = df[df["status"] != "ok"]
    versions = ", ".join(sorted(df["triton_version"].dropna().astype(str).unique()))
    lines = [
        f"Compiled here with Triton {versions} for each target (no GPU: the cubins are read with "
        f"the cuobjdump and nvdisasm of the triton wheel); every config the size pruning keeps, "
        f"{scope}. A config that spills or asks for more shared "
        "memory than a block may have is counted, then dropped by the autotuner's pruning on a "
        "GPU of that arch (kernels/_autotune.py), so occupancy is judged over the rest. Load and "
        "store counts are SASS instructions per program, summed over the rows. Occupancy is "
        "theoretical (registers, shared memory, warps; per-arch limits in kernels/_compiled.py).",
        "",
        compiled_table(df).to_markdown(index=False) if len(df) else "(no rows)",
        "",
    ]
    if len(errors):
        cols = ["kernel", "arch", "workload", "dtype", "layout", "config", "message"]
        lines += ["Configs that failed to compile:", "", errors[cols].to_markdown(index=False), ""]
    return lines


def write_compiled_summary(df: pd.DataFrame, path: Path) -> Path:
    title = "# What the GPU would execute (`sepbench inspect`)"
    lines = [title, "", *compiled_section(df), "![compiled](compiled.png)", "", *floor_section(df)]
    path.write_text("\n".join(lines))
    return path
