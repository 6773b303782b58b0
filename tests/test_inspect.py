"""`sepbench inspect` and kernels._compiled: what the fused kernels compile to for sm_90, read here
without a GPU. The compile tests hold the kernels to issue 12's bar; each assertion fails on the
v1 dw-sep kernel (kernels/NOTES.md, v1 vs v2: 255 registers with 16-188 spill bytes, 72 LDG.E.U16
of bf16 channels_last input, 12.5% occupancy, 364 KB of shared memory at BLOCK 128/64/128).
"""

from __future__ import annotations

import pandas as pd
import pytest

from bench.cli import main
from bench.measuring.inspect import Target, inspect_targets
from bench.measuring.suites import DwsepShape, RbfShape, Workload
from kernels import _compiled

# --------------------------------------------------------------- the cubin readers (no compile)

SASS = """
        /*0000*/                   LDC R1, c[0x0][0x28] ;
        /*0010*/              @!P0 LDG.E.U16 R4, desc[UR4][R2.64] ;
        /*0020*/               @P1 LDG.E.128 R8, desc[UR4][R6.64] ;
        /*0030*/                   LDGSTS.E.BYPASS.LTC128B.128 [R5], desc[UR4][R2.64] ;
        /*0040*/                   LDG.E R9, desc[UR4][R2.64] ;
        /*0050*/                   LDG.E.64 R10, desc[UR4][R2.64] ;
        /*0060*/                   HMMA.16816.F32.BF16 R12, R4, R8, R12 ;
        /*0070*/                   HGMMA.64x128x16.F32.BF16 R24, gdesc[UR4], R24 ;
        /*0080*/                   STL.64 [R1], R2 ;
        /*0090*/                   STL [R1+0x8], R4 ;
        /*00a0*/              @!P2 STG.E.128 desc[UR4][R2.64], R8 ;
        /*00b0*/                   STG.E.U16 desc[UR4][R2.64], R8 ;
        /*00c0*/                   EXIT ;
"""


def test_sass_counts_loads_and_stores_by_width_and_tensor_core_instructions() -> None:
    ldg, stg, mma, total = _compiled.sass_counts(SASS)
    assert dict(ldg) == {16: 1, 128: 2, 32: 1, 64: 1}  # cp.async by its width, LTC128B a hint
    assert dict(stg) == {128: 1, 16: 1}
    assert sum(mma.values()) == 2 and total == 13
    assert _compiled._spill_bytes(SASS) == 12  # STL.64 + STL: ptxas's "spill stores"


@pytest.mark.parametrize(
    ("registers", "shared", "warps", "arch", "expected"),
    [
        (255, 27904, 4, 90, (0.125, 2)),  # v1's bf16 config: 2 blocks of 4 warps
        (128, 9216, 4, 90, (0.25, 4)),  # 128 x 32 x 16 warps = the whole register file
        (64, 5120, 4, 90, (0.5, 8)),
        (96, 100 * 1024, 4, 90, (0.125, 2)),  # shared memory binds: 228 KB / 101 KB
        (96, 100 * 1024, 4, 80, (0.0625, 1)),  # A100 holds one such block
        (72, 364288, 8, 90, (0.0, 0)),  # over 227 KB per block: cannot launch
        (33, 1024, 1, 90, (0.5, 32)),  # 32 blocks per SM at most
    ],
)
def test_occupancy_from_the_arch_limits(registers, shared, warps, arch, expected) -> None:
    occ, blocks = _compiled.occupancy(registers, shared, warps, arch)
    assert (pytest.approx(occ), blocks) == (pytest.approx(expected[0]), expected[1])


# ----------------------------------------------------------- compiles (sm_90, no GPU needed)

HEADLINE = Workload("documents", DwsepShape(128, 256, 3, 1, 32, 32), 64)
MOBILENET = Workload(
    "mobilenet", DwsepShape(960, 320, 3, 1, 7, 7, activation="relu6", pw_activation=None), 32
)
RBF = Workload("rbf", RbfShape(16384, 256, 1000), 16384)
CASES = {
    "128-256 bf16 channels_last": Target("dwsep", "sm_90", HEADLINE, "bfloat16", "nhwc"),
    "128-256 fp32 NCHW": Target("dwsep", "sm_90", HEADLINE, "float32", "nchw"),
    "MobileNetV2 960-320 bf16 channels_last": Target(
        "dwsep", "sm_90", MOBILENET, "bfloat16", "nhwc"
    ),
    "RBF distance bf16": Target("rbf_distance", "sm_90", RBF, "bfloat16", "row-major"),
}


@pytest.fixture(scope="module")
def compiled() -> pd.DataFrame:
    rows = inspect_targets(list(CASES.values()), workers=2)
    rows["case"] = [
        name
        for name, t in CASES.items()
        for _ in range(
            (
                (rows["kernel"] == t.kernel)
                & (rows["workload"] == t.workload.id)
                & (rows["dtype"] == t.dtype)
                & (rows["layout"] == t.layout)
            ).sum()
        )
    ]
    return rows


@pytest.mark.parametrize("case", list(CASES))
def test_every_kept_config_compiles_without_spills_within_shared_memory(compiled, case) -> None:
    rows = compiled[compiled["case"] == case]
    assert len(rows) >= 2 and (rows["status"] == "ok").all(), rows["message"].tolist()
    assert (rows["spill_bytes"] == 0).all(), rows[["config", "registers", "spill_bytes"]]
    assert (rows["shared_bytes"] <= rows["shared_limit"]).all()
    assert (rows["mma"] > 0).all()  # 16-bit dots, and fp32 with TF32 (torch's default)


@pytest.mark.parametrize("case", [c for c in CASES if c.startswith(("128", "Mobile"))])
def test_some_config_reaches_a_quarter_occupancy(compiled, case) -> None:
    rows = compiled[compiled["case"] == case]
    assert rows["occupancy"].max() >= 0.25, rows[["config", "registers", "occupancy"]]


@pytest.mark.parametrize("case", [c for c in CASES if "channels_last" in c])
def test_channels_last_input_is_read_with_wide_loads(compiled, case) -> None:
    """No 8/16-bit load at all, 32-bit ones only for the four per-channel BN vectors, and at
    least one 64/128-bit load per depthwise tap."""
    for _, row in compiled[compiled["case"] == case].iterrows():
        assert row["ldg_8"] == row["ldg_16"] == 0, row["config"]
        assert row["ldg_32"] <= 4, row["config"]
        assert row["ldg_64"] + row["ldg_128"] >= 9, row["config"]


def test_cli_writes_compiled_csv_plot_and_summary(tmp_path) -> None:
    out = tmp_path / "inspect"
    cubins = str(tmp_path / "cubins")
    argv = [
        "inspect",
        "--kernel",
        "rbf_distance",
        "--suite",
        "lenet",
        "--arch",
        "sm_90",
        "--dtype",
        "bfloat16",
        "--out",
        str(out),
        "--dump-cubin",
        cubins,
    ]
    assert main(argv) == 0
    df = pd.read_csv(out / "compiled.csv")
    contract = [
        "kernel",
        "arch",
        "workload",
        "dtype",
        "layout",
        "config",
        "num_warps",
        "num_stages",
        "registers",
        "spill_bytes",
        "shared_bytes",
        "occupancy",
        "ldg_32",
        "ldg_64",
        "ldg_128",
        "stg_32",
        "stg_64",
        "stg_128",
        "mma",
        "sass_instructions",
        "cubin",
        "triton_version",
        "status",
        "message",
    ]
    assert set(contract) <= set(df.columns) and len(df) > 0
    for name in df["cubin"]:
        assert (tmp_path / "cubins" / name).read_bytes()[:4] == b"\x7fELF"
    assert (out / "compiled.png").read_bytes()[:4] == b"\x89PNG"
    assert "| rbf_distance | sm_90" in (out / "compiled.md").read_text()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["inspect", "--kernel", "conv9"], "unknown kernel or arch"),
        (["inspect", "--arch", "sm_70"], "unknown kernel or arch"),
        (["inspect", "--suite", "nope"], "unknown suite"),
        (["inspect", "--workers", "0"], "--workers"),
        (["inspect", "--out", "/"], "filesystem root"),
    ],
)
def test_bad_input_exits_2(argv, message, capsys) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_gpu_pruning_drops_configs_that_spill_or_overflow_shared_memory(monkeypatch) -> None:
    """kernels._autotune.drop_hopeless on a pretend sm_90 with the compiled figures faked: the
    spilling and oversized configs go, and when every config fails the least bad one stays."""
    import torch
    import triton

    from kernels import _autotune

    limit = _compiled.ARCH_LIMITS[90].shared_per_block
    figures = {  # BLOCK_P -> (spill bytes, shared bytes)
        16: (0, 10_000),
        32: (24, 10_000),
        64: (0, limit + 1),
        128: (0, limit),
    }

    def fake_analyze(kernel, args, kwargs, arch):
        spill, shared = figures[kwargs["BLOCK_P"]]
        f = _compiled.Figures(128, spill, 0, shared, 4, 1, 0.25, 4, {}, {}, 0, 0, "", "")
        return f, "key"

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda: (9, 0))
    monkeypatch.setattr(_compiled, "analyze", fake_analyze)
    configs = [triton.Config({"BLOCK_P": p}) for p in figures]
    kept = _autotune.drop_hopeless(object(), configs, {"x": None}, {})
    assert [c.kwargs["BLOCK_P"] for c in kept] == [16, 128]
    figures.update({16: (8, 10_000), 128: (4, limit)})
    last = _autotune.drop_hopeless(object(), configs, {"x": None}, {})
    assert [c.kwargs["BLOCK_P"] for c in last] == [128]  # fewest spill bytes, fits in memory
