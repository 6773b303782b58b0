"""`sepbench inspect --traffic` (bench.measuring.inspect_traffic): the bytes a launch requests,
counted under the Triton interpreter, and the figures derived from them. Small shapes only: every
program of a launch runs in the interpreter (~0.05-1 s each)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from bench.measuring import inspect_traffic as tr
from bench.measuring.inspect import COLUMNS
from bench.measuring.suites import KERNELBENCH, KERNELBENCH_NOT_APPLICABLE, build_suite
from bench.reporting.compiled import floor_table
from kernels import _runtime, dwsep

pytestmark = pytest.mark.skipif(not _runtime.INTERPRET, reason="counts under the interpreter")


def _launch(n, c, cout, h, w, *, stride=1, layout=torch.channels_last, cfg):
    x = torch.randn(n, c, h, w).contiguous(memory_format=layout)
    ho, wo = (h + 2 - 3) // stride + 1, (w + 2 - 3) // stride + 1
    out = torch.empty(n, cout, ho, wo).contiguous(memory_format=layout)
    a, b = torch.ones(c), torch.ones(cout)
    args, kwargs, grid = dwsep.launch_args(
        x,
        torch.randn(c, 1, 3, 3),
        torch.randn(cout, c, 1, 1),
        out,
        stride=stride,
        pad=1,
        dw_scale=a,
        dw_shift=a,
        activation="relu",
        pw_scale=b,
        pw_shift=b,
        pw_activation=None,
    )
    return dwsep.TUNABLE.kernel, args, {**kwargs, **cfg}, grid


def test_sampled_counts_scale_to_the_full_count() -> None:
    """A 9 x 3 grid counted in full and on 15 sampled programs: every tensor's requested
    elements within 4%, the dot FLOPs and the reuse flags equal."""
    cfg = {"BLOCK_P": 32, "BLOCK_C": 16, "BLOCK_CO": 32}
    launch = _launch(2, 20, 72, 11, 13, cfg=cfg)
    full = tr.count_launch(*launch, budget=None)
    sampled = tr.count_launch(*launch, budget=12)
    assert full.programs_run == math.prod(full.grid) == 27 and sampled.programs_run <= 15
    for name, v in full.requested.items():
        assert sampled.requested[name] == pytest.approx(v, rel=0.04), name
    assert sampled.dot_flops == pytest.approx(full.dot_flops, rel=0.04)
    assert sampled.shared_axis1 == full.shared_axis1
    assert full.shared_axis1["x_ptr"] and not full.shared_axis1["out_ptr"]


def test_requested_bytes_are_the_mask_true_lanes() -> None:
    """x: C x the in-bounds taps of every output pixel, once per output-channel tile (v2's grid
    recomputes the depthwise per tile); the output written once; the pw weights once per pixel
    tile."""
    n, c, cout, h, w = 1, 24, 40, 7, 9
    cfg = {"BLOCK_P": 32, "BLOCK_C": 16, "BLOCK_CO": 16}
    count = tr.count_launch(*_launch(n, c, cout, h, w, cfg=cfg), budget=None)
    taps = tr.dwsep_tap_elements(n, c, h, w, 3, 1, 1)
    co_tiles = math.ceil(cout / 16)
    assert count.requested["x_ptr"] == taps * co_tiles
    assert count.requested["out_ptr"] == n * cout * h * w
    assert count.requested["pw_w_ptr"] == c * cout * math.ceil(n * h * w / 32)
    assert count.lanes["x_ptr"] > count.requested["x_ptr"]  # padding lanes are masked off


def test_sample_weights_sum_to_the_grid() -> None:
    for grid in [(2048, 8, 1), (100, 3, 1), (7, 9, 1), (40, 1, 1), (3, 700, 1)]:
        picks = tr.sample_programs(grid, 24)
        assert len(picks) <= 24 + 8
        assert sum(w for _, w in picks) == pytest.approx(math.prod(grid))
        assert len({p for p, _ in picks}) == len(picks)


def test_figures_ideal_floor_and_bound() -> None:
    count = tr.Count(
        grid=(10, 4, 1),
        programs_run=40,
        requested={"x": 4e6, "out": 1e6},
        lanes={"x": 5e6, "out": 1e6},
        distinct={"x": 2e6, "out": 1e6},
        shared_axis1={"x": True, "out": False},
        dot_flops=1e9,
    )
    row = tr.figures(
        count,
        {"x": 2, "out": 2},
        {"x": 1_000_000, "out": 1_000_000},
        {},
        "16bit",
        dw_taps=1_000_000,
        dw_arg="x",
    )
    assert set(row) == set(tr.TRAFFIC_COLUMNS)
    assert row["ideal_bytes"] == 4e6 and row["requested_bytes"] == 10e6
    assert row["dw_recompute"] == 4.0
    assert row["dram_bytes_est"] == 4e6  # a 4 MB sweep fits in L2: x comes from DRAM once
    h200 = tr.GPUS["h200"]
    assert row["ideal_us_h200"] == pytest.approx(1e6 * 4e6 / h200.copy_bandwidth)
    assert row["bound_us_h200"] >= row["ideal_us_h200"]
    assert row["bound_by"] in ("dram", "l2", "mma", "issue")


def test_innermost_loop_of_sass() -> None:
    sass = """
        /*0000*/                   MOV R1, c[0x0][0x28] ;
.L_x_0:
        /*0010*/                   LDG.E.128 R4, desc[UR4][R2.64] ;
.L_x_1:
        /*0020*/                   FFMA R8, R4, R5, R8 ;
        /*0030*/                   FFMA R9, R4, R6, R9 ;
        /*0040*/                   PRMT R4, R4, 0x7632, R4 ;
        /*0050*/               @P0 BRA `(.L_x_1) ;
        /*0060*/                   HMMA.16816.F32.BF16 R12, R4, R8, R12 ;
        /*0070*/               @P1 BRA `(.L_x_0) ;
        /*0080*/                   EXIT ;
"""
    assert tr.innermost_loop(sass) == (4, 2)


def test_compiled_csv_has_the_traffic_columns_and_md_the_floor() -> None:
    assert COLUMNS[-len(tr.TRAFFIC_COLUMNS) :] == tr.TRAFFIC_COLUMNS
    rows = pd.DataFrame(
        {
            "kernel": ["dwsep"] * 2,
            "arch": ["sm_90"] * 2,
            "workload": ["w"] * 2,
            "batch": [16] * 2,
            "dtype": ["bfloat16"] * 2,
            "layout": ["nhwc"] * 2,
            "config": ["a", "b"],
            "status": ["ok"] * 2,
            "fits": [True, True],
            "requested_bytes": [2e6, 4e6],
            "ideal_bytes": [1e6] * 2,
            "dw_recompute": [1.0, 2.0],
            "ideal_us_h200": [1.0] * 2,
            "bound_us_h200": [1.25, 2.0],
            "bound_by": ["l2", "issue"],
        }
    )
    table = floor_table(rows)
    assert table["best config"].tolist() == ["a"]
    assert table["floor fraction (h200)"].tolist() == ["80%"]


def test_kernelbench_suite_shapes() -> None:
    gpu = {w.tags[0]: w for w in build_suite("kernelbench", "quick", "cuda")}
    w86 = gpu["kernelbench:86"]
    s = w86.shape
    got = (w86.batch, s.in_ch, s.out_ch, s.h, s.w, s.kernel, s.pad)
    assert got == (16, 64, 128, 512, 512, 3, 1)
    assert s.activation is None and s.pw_activation is None
    assert {n for n, _, _ in KERNELBENCH} | set(KERNELBENCH_NOT_APPLICABLE) == set(range(82, 88))
    assert all(w.batch == 1 for w in build_suite("kernelbench", "quick", "cpu"))


@pytest.mark.parametrize(
    "c, cout, h, w, stride",
    [(40, 72, 9, 11, 1), (70, 24, 13, 7, 2)],  # CO_LOOP (C <= 64 here); C-loop, Cout <= 32
)
def test_v3_computes_each_depthwise_output_once(c, cout, h, w, stride) -> None:
    """The config the pruning keeps (the interpreter's) computes every depthwise output once:
    x requested = C x the in-bounds taps, counted in full."""
    named = {"P": 2 * h * w, "C": c, "COUT": cout}
    (cfg,) = dwsep.TUNABLE.fit(dwsep.dwsep_configs(), named)
    launch = _launch(2, c, cout, h, w, stride=stride, cfg=cfg.kwargs)
    count = tr.count_launch(*launch, budget=None)
    assert count.requested["x_ptr"] == tr.dwsep_tap_elements(2, c, h, w, 3, stride, 1)
    assert dwsep.dw_recompute(cfg, c, cout) == 1


def test_v3_pruning_keeps_only_recompute_free_configs() -> None:
    import triton

    cfgs = [
        triton.Config({"BLOCK_P": 64, "BLOCK_C": 64, "BLOCK_CO": 64, "CO_LOOP": True}),
        triton.Config({"BLOCK_P": 64, "BLOCK_C": 32, "BLOCK_CO": 64, "CO_LOOP": False}),
        triton.Config({"BLOCK_P": 64, "BLOCK_C": 32, "BLOCK_CO": 256, "CO_LOOP": False}),
    ]
    kept = dwsep.keep_recompute_free(cfgs, {"C": 100, "COUT": 200})
    assert [c.kwargs["BLOCK_CO"] for c in kept] == [256][: len(kept)]  # CO_LOOP needs C <= 64
    everything_recomputes = dwsep.keep_recompute_free(cfgs[:2], {"C": 1000, "COUT": 1000})
    assert [c.kwargs["CO_LOOP"] for c in everything_recomputes] == [False]


def test_autotune_key_buckets_the_pixel_count() -> None:
    assert "P" not in dwsep.TUNABLE.key and "P_BUCKET" in dwsep.TUNABLE.key
    buckets = set()
    for n in (15, 16, 17, 31, 32):
        x = torch.empty(n, 8, 7, 7).contiguous(memory_format=torch.channels_last)
        out = torch.empty(n, 8, 7, 7).contiguous(memory_format=torch.channels_last)
        args, _, _ = dwsep.launch_args(
            x,
            torch.empty(8, 1, 3, 3),
            torch.empty(8, 8, 1, 1),
            out,
            stride=1,
            pad=1,
            dw_scale=None,
            dw_shift=None,
            activation=None,
            pw_scale=None,
            pw_shift=None,
            pw_activation=None,
        )
        named = dict(zip(dwsep.TUNABLE.kernel.arg_names, args, strict=False))
        assert named["P_BUCKET"] == 1 << (named["P"] - 1).bit_length()
        buckets.add(named["P_BUCKET"])
    assert buckets == {1024, 2048}


def test_gpu_pruning_warns_once_when_it_cannot_judge(monkeypatch) -> None:
    import triton

    from kernels import _autotune, _compiled

    def broken(*a, **k):
        raise RuntimeError("no ptxas")

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda: (9, 0))
    monkeypatch.setattr(_compiled, "analyze", broken)
    monkeypatch.setattr(_autotune, "_WARNED", set())
    configs = [triton.Config({"BLOCK_P": p}) for p in (16, 32)]
    with pytest.warns(RuntimeWarning, match="could not read the compiled figures"):
        assert _autotune.drop_hopeless(object(), configs, {"x": None}, {}) == configs
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _autotune.drop_hopeless(object(), configs, {"x": None}, {}) == configs
