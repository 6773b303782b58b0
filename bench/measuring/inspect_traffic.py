"""What a kernel launch moves, measured without a GPU (`sepbench inspect --traffic`).

A launch runs under the Triton interpreter with its memory builders instrumented: every
``tl.load`` / ``tl.store`` (plain, masked, block-pointer and tensor-descriptor: the interpreter
lowers all of them to ``create_masked_load`` / ``create_masked_store``) is attributed, lane by
lane, to the kernel argument whose storage holds the address, and only mask-true lanes count.
``tl.dot`` calls count their multiply-adds (2 FLOPs each, at the tile's padded size).

Big grids run a sample of programs: along each grid axis the first and the last program (the
borders) and a stratified random sample of the interior, one program per stratum, each weighted
by its stratum's size; the totals are the weighted sums (exact when every program runs:
``tests/test_traffic.py`` checks the scaling against a full count). TRITON_INTERPRET=1 must be
set before the kernels are decorated: `inspect` counts in spawned worker processes that set it
(this module imports no kernel at import time).

Figures per launch (each a column of compiled.csv):

- ``requested_bytes``: bytes the loads and stores ask for (mask-true lanes x element size).
- ``ideal_bytes``: each distinct tensor argument once (inputs read once, outputs written once,
  weights once): the floor the issue's product question is about.
- ``dw_recompute`` (dw-sep only): x elements the depthwise loads request / the x elements one
  computation of every depthwise output needs (C x the in-bounds taps of every output pixel):
  1 when each depthwise output is computed once, the number of output-channel tiles for v2.
- ``dram_bytes_est``, under this L2 model: programs run in launch order (grid axis 0 fastest);
  a tensor whose addresses are requested again by programs that differ only along grid axis 1
  is re-read at a reuse distance of one sweep of axis 0, and comes from DRAM once per axis-1
  index when that sweep's footprint (the tensors it shares, whole, plus 1/grid[1] of the others)
  exceeds the L2 capacity, once in all otherwise; halo re-reads between programs adjacent in
  launch order hit L2; 32-byte sector rounding is ignored.
- L2 -> SM bytes: each program's *distinct* addresses per tensor (a program's re-reads of its
  own addresses, such as overlapping depthwise taps, hit L1).
- ``bound_us_<gpu>`` = max(DRAM bytes / copy bandwidth, L2 bytes / L2 bandwidth, dot FLOPs /
  tensor-core (or FFMA) peak, depthwise issue time), ``bound_by`` names H200's largest term;
  ``ideal_us_<gpu>`` = ideal bytes / copy bandwidth. The issue term (dw-sep) is the depthwise
  multiply-add lanes the launch issues (every lane of the x loads, masked or not) x the SASS
  instructions per multiply-add of the innermost loop (read from the cubin) / (SMs x 4
  schedulers x 32 lanes x clock).
"""

from __future__ import annotations

import inspect as pyinspect
import itertools
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

TRAFFIC_COLUMNS = [
    "requested_bytes",
    "ideal_bytes",
    "dw_recompute",
    "dram_bytes_est",
    "ideal_us_h100",
    "ideal_us_h200",
    "ideal_us_a100",
    "bound_us_h100",
    "bound_us_h200",
    "bound_us_a100",
    "bound_by",
]
# Programs a sampled count runs at most (the interpreter runs ~10-500 ms per program).
SAMPLE_PROGRAMS = 24


@dataclass(frozen=True)
class Peaks:
    """One GPU's peaks for the lower bound. Bandwidths in bytes/s, FLOP rates in FLOP/s."""

    name: str
    copy_bandwidth: float  # DRAM, achievable by a copy: the floor's bandwidth
    l2_bandwidth: float  # L2 -> SM
    l2_bytes: int
    mma_flops: dict[str, float]  # "16bit", "tf32", "ieee" (fp32 dots run on FFMA)
    sms: int
    clock_hz: float  # boost clock: issue time = instructions / (SMs x 4 x clock)


# Sources. Datasheets: NVIDIA H100 Tensor Core GPU datasheet (SXM5: 3.35 TB/s HBM3, 989.4 TFLOPS
# dense BF16/FP16, 494.7 TF32, 66.9 FP32, 1,980 MHz boost, 132 SMs), NVIDIA H200 datasheet
# (4.8 TB/s HBM3e; the same GH100 SXM compute), NVIDIA A100 datasheet (SXM4 80 GB: 2,039 GB/s
# HBM2e, 312 TFLOPS BF16/FP16, 156 TF32, 19.5 FP32; 1,410 MHz boost, 108 SMs). L2 capacity:
# the Hopper and Ampere whitepapers (H100 SXM5 50 MB of the die's 60 MB; A100 40 MB).
# Copy bandwidth: H200 ~4.3 TB/s as measured by others (kernels/NOTES.md), i.e. ~90% of the
# spec; H100 and A100 are given the same 90% of their spec (not measured here: no GPU).
# L2 bandwidth: the A100 whitepaper's 5,120 bytes/clk at 1.41 GHz = 7.2 TB/s; NVIDIA publishes
# no Hopper figure: assumed the same 5,120 bytes/clk at 1.98 GHz = 10.1 TB/s (issue 17 assumed
# 10 TB/s; Chips and Cheese measured less on the 114-SM H100 PCIe at lower clocks).
GPUS: dict[str, Peaks] = {
    "h100": Peaks(
        "H100 SXM", 0.9 * 3.35e12, 5120 * 1.98e9, 50 * 2**20,
        {"16bit": 989.4e12, "tf32": 494.7e12, "ieee": 66.9e12}, 132, 1.98e9,
    ),
    "h200": Peaks(
        "H200 SXM", 4.3e12, 5120 * 1.98e9, 50 * 2**20,
        {"16bit": 989.4e12, "tf32": 494.7e12, "ieee": 66.9e12}, 132, 1.98e9,
    ),
    "a100": Peaks(
        "A100 SXM4 80GB", 0.9 * 2.039e12, 5120 * 1.41e9, 40 * 2**20,
        {"16bit": 312e12, "tf32": 156e12, "ieee": 19.5e12}, 108, 1.41e9,
    ),
}  # fmt: skip
BOUND_GPU = "h200"  # whose largest term bound_by names


# ------------------------------------------------------------------ sampling the grid


def _axis_sample(size: int, strata: int, rng: np.random.Generator) -> list[tuple[int, float]]:
    """(index, weight) along one grid axis: every index when ``size <= strata + 2``, else the
    first and last (weight 1) and one random index per stratum of the interior."""
    if size <= strata + 2:
        return [(i, 1.0) for i in range(size)]
    out = [(0, 1.0), (size - 1, 1.0)]
    edges = np.linspace(1, size - 1, strata + 1).round().astype(int)
    for lo, hi in itertools.pairwise(edges):
        if hi > lo:
            out.append((int(rng.integers(lo, hi)), float(hi - lo)))
    return out


def sample_programs(
    grid: tuple[int, ...], budget: int | None = SAMPLE_PROGRAMS, seed: int = 0
) -> list[tuple[tuple[int, int, int], float]]:
    """((pid0, pid1, pid2), weight) of the programs to run: all (weight 1) when the grid has at
    most ``budget`` programs or budget is None. Else the later axes are sampled to first, last
    and at most 2 interior strata (L combinations); the first and last pid0 run with all L, and
    for each combination the interior of axis 0 gets its own stratified sample (its first and
    last, one random pid0 per stratum, weighted by the stratum's size x the combination's
    weight). The weights sum to the grid's size exactly."""
    grid = tuple(grid) + (1,) * (3 - len(grid))
    if budget is None or math.prod(grid) <= budget:
        return [((x, y, z), 1.0) for x, y, z in itertools.product(*map(range, grid))]
    rng = np.random.default_rng(seed)
    rest = [
        ((y, z), wy * wz)
        for y, wy in _axis_sample(grid[1], 2, rng)
        for z, wz in _axis_sample(grid[2], 2, rng)
    ]
    n = len(rest)
    picks = [((x, *yz), w) for x in sorted({0, grid[0] - 1}) for yz, w in rest]
    interior = grid[0] - 2
    if interior <= 0:
        return picks
    if interior * n <= max(budget - len(picks), 0):
        return picks + [((x, *yz), w) for x in range(1, grid[0] - 1) for yz, w in rest]
    # per combination, its own stratified sample of the interior (weights sum exactly)
    per = max(1, (budget - len(picks)) // n)
    for yz, w in rest:
        for x, wx in _axis_sample(interior, max(1, per - 2), rng) if per < interior else []:
            picks.append(((x + 1, *yz), wx * w))
        if per >= interior:
            picks += [((x, *yz), w) for x in range(1, grid[0] - 1)]
    return picks


# ----------------------------------------------------------- counting under the interpreter


@dataclass
class Count:
    """What the sampled (weighted) programs of one launch asked for, per kernel argument name.
    Elements, not bytes: the parent scales by each argument's element size in the target."""

    grid: tuple[int, ...]
    programs_run: int
    requested: dict[str, float] = field(default_factory=dict)  # mask-true lanes
    lanes: dict[str, float] = field(default_factory=dict)  # all lanes, masked or not
    distinct: dict[str, float] = field(default_factory=dict)  # distinct per program, summed
    shared_axis1: dict[str, bool] = field(default_factory=dict)  # re-read along grid axis 1
    dot_flops: float = 0.0


class _Recorder:
    """Patches the interpreter builder's memory and dot ops while one launch runs."""

    def __init__(self, spans: list[tuple[int, int, str, int]]):
        spans = sorted(spans)
        self.starts = np.array([s[0] for s in spans], dtype=np.uint64)
        self.ends = np.array([s[1] for s in spans], dtype=np.uint64)
        self.names = [s[2] for s in spans]
        self.sizes = [s[3] for s in spans]
        self.weight = 1.0
        self.addrs: dict[str, list[np.ndarray]] = defaultdict(list)
        self.requested: dict[str, float] = defaultdict(float)
        self.lanes: dict[str, float] = defaultdict(float)
        self.dot_flops = 0.0

    def _which(self, addrs: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(self.starts, addrs, side="right").astype(np.int64) - 1
        ok = (idx >= 0) & (addrs < self.ends[np.clip(idx, 0, None)])
        return np.where(ok, idx, -1)

    def access(self, ptrs: Any, mask: Any) -> None:
        addrs = np.asarray(ptrs.data, dtype=np.uint64).ravel()
        m = np.broadcast_to(np.asarray(mask.data, dtype=bool), np.shape(ptrs.data)).ravel()
        live = addrs[m]
        which = self._which(live)
        owner = self._which(addrs[:1])[0] if not len(live) else np.bincount(which + 1).argmax() - 1
        owner_name = self.names[owner] if owner >= 0 else "?"
        self.lanes[owner_name] += self.weight * addrs.size
        for i in np.unique(which):
            name = self.names[i] if i >= 0 else "?"
            sel = live[which == i]
            self.requested[name] += self.weight * sel.size
            self.addrs[name].append(sel)

    def dot(self, a: Any, b: Any) -> None:
        m, k = np.shape(a.data)[-2:]
        n = np.shape(b.data)[-1]
        self.dot_flops += self.weight * 2.0 * m * n * k

    def end_program(self) -> dict[str, np.ndarray]:
        out = {name: np.unique(np.concatenate(parts)) for name, parts in self.addrs.items()}
        self.addrs = defaultdict(list)
        return out


def _spans(args: dict) -> list[tuple[int, int, str, int]]:
    """(first byte, end byte, argument name, element size) of every tensor argument's storage;
    an argument that shares another's storage is counted under the first name."""
    import torch

    seen: dict[int, str] = {}
    spans = []
    for name, arg in args.items():
        if not isinstance(arg, torch.Tensor):
            continue
        storage = arg.untyped_storage()
        start = storage.data_ptr()
        if start in seen or storage.nbytes() == 0:
            continue
        seen[start] = name
        spans.append((start, start + storage.nbytes(), name, arg.element_size()))
    return spans


def count_launch(
    kernel: Any, args: tuple, kwargs: dict, grid: Any, *, budget: int | None = SAMPLE_PROGRAMS
) -> Count:
    """Run ``kernel[grid](*args, **kwargs)`` under the Triton interpreter (this process must have
    decorated the kernel with TRITON_INTERPRET=1) on a sample of its programs, counting.
    ``kwargs`` holds the constexprs and the config's tiles; compile options are ignored."""
    from triton.runtime import interpreter as ti

    if not isinstance(kernel, ti.InterpretedFunction):
        raise TypeError(
            f"{kernel!r} was not decorated under TRITON_INTERPRET=1: count in a process that "
            "set it before importing the kernels"
        )
    fn = kernel.rewrite()
    names = pyinspect.getfullargspec(fn).args
    kwargs = {k: v for k, v in kwargs.items() if k in names}
    executor = ti.GridExecutor(fn, kernel.arg_names, grid)
    args_hst, kwargs_hst = executor._init_args_hst(args, kwargs)
    call = pyinspect.getcallargs(fn, *args_hst, **kwargs_hst)
    rec = _Recorder(_spans(call))
    shape = grid(call) if callable(grid) else grid
    shape = tuple(int(g) for g in shape) + (1,) * (3 - len(shape))
    picks = sample_programs(shape, budget)

    builder = ti.interpreter_builder
    load, store, dot = builder.create_masked_load, builder.create_masked_store, builder.create_dot

    def masked_load(ptrs, mask, other, *a, **k):
        rec.access(ptrs, mask)
        return load(ptrs, mask, other, *a, **k)

    def masked_store(ptrs, value, mask, *a, **k):
        rec.access(ptrs, mask)
        return store(ptrs, value, mask, *a, **k)

    def counted_dot(a, b, d, *rest, **k):
        rec.dot(a, b)
        return dot(a, b, d, *rest, **k)

    distinct: dict[str, float] = defaultdict(float)
    by_pid0: dict[int, dict[int, dict[str, np.ndarray]]] = defaultdict(dict)
    scope = ti._patch_lang(fn)
    builder.create_masked_load, builder.create_masked_store = masked_load, masked_store
    builder.create_dot = counted_dot
    try:
        bound = {n: a if n in executor.constexprs else ti._implicit_cvt(a) for n, a in call.items()}
        builder.set_grid_dim(*shape)
        for (x, y, z), weight in picks:
            rec.weight = weight
            builder.set_grid_idx(x, y, z)
            fn(**bound)
            seen = rec.end_program()
            for name, a in seen.items():
                distinct[name] += weight * a.size
            if shape[1] > 1 and len(by_pid0[x]) < 2:
                by_pid0[x][y] = seen
    finally:
        del builder.create_masked_load, builder.create_masked_store, builder.create_dot
        scope.restore()
    shared = defaultdict(bool)
    for per_y in by_pid0.values():
        if len(per_y) == 2:
            a, b = per_y.values()
            for name in set(a) & set(b):
                shared[name] |= bool(np.intersect1d(a[name], b[name]).size)
    sizes = dict(zip(rec.names, rec.sizes, strict=True))

    def elements(counts: dict[str, float]) -> dict[str, float]:
        return {n: v for n, v in counts.items() if n in sizes}

    return Count(
        grid=shape,
        programs_run=len(picks),
        requested=elements(rec.requested),
        lanes=elements(rec.lanes),
        distinct=elements(distinct),
        shared_axis1={n: shared[n] for n in sizes},
        dot_flops=rec.dot_flops,
    )


# ------------------------------------------------------------------- the derived figures


def dwsep_tap_elements(n: int, c: int, h: int, w: int, k: int, stride: int, pad: int) -> int:
    """x elements one computation of every depthwise output reads: C x the in-bounds taps of
    every output pixel (the depthwise taps with recompute 1)."""

    def per_axis(size: int) -> int:
        out = (size + 2 * pad - k) // stride + 1
        o = np.arange(out)[:, None] * stride - pad + np.arange(k)[None, :]
        return int(((o >= 0) & (o < size)).sum())

    return n * c * per_axis(h) * per_axis(w)


def figures(
    count: Count,
    itemsize: dict[str, int],
    numel: dict[str, int],
    aliases: dict[str, str],
    mma_class: str,
    *,
    dw_taps: int | None = None,
    dw_arg: str = "x_ptr",
    sass_per_tap: float | None = None,
) -> dict[str, Any]:
    """The TRAFFIC_COLUMNS of one counted launch in the target's dtypes.

    itemsize / numel: element size and element count of every tensor argument of the target
    launch; aliases: argument name -> the name its storage is counted under (arguments that
    share a tensor); mma_class: the peak the dots run at ("16bit", "tf32", "ieee")."""

    def canon(name: str) -> str:
        return aliases.get(name, name)

    distinct_names = {canon(n) for n in numel}
    ideal = {n: numel[n] * itemsize[n] for n in distinct_names}
    requested = sum(v * itemsize[canon(n)] for n, v in count.requested.items())
    l2 = sum(v * itemsize[canon(n)] for n, v in count.distinct.items())
    grid1 = count.grid[1]
    shared = {canon(n): s for n, s in count.shared_axis1.items()}
    footprint = sum(b if shared.get(n) else b / grid1 for n, b in ideal.items())
    row: dict[str, Any] = {
        "requested_bytes": requested,
        "ideal_bytes": float(sum(ideal.values())),
        "dw_recompute": float("nan"),
    }
    if dw_taps:
        row["dw_recompute"] = count.requested.get(dw_arg, 0.0) / dw_taps
    terms_by_gpu = {}
    for key, peaks in GPUS.items():
        far = footprint > peaks.l2_bytes
        dram = sum(b * (grid1 if far and shared.get(n) else 1) for n, b in ideal.items())
        terms = {
            "dram": dram / peaks.copy_bandwidth,
            "l2": l2 / peaks.l2_bandwidth,
            "mma": count.dot_flops / peaks.mma_flops[mma_class],
        }
        if sass_per_tap and dw_taps:
            lanes = count.lanes.get(dw_arg, 0.0)
            terms["issue"] = lanes * sass_per_tap / (peaks.sms * 4 * 32 * peaks.clock_hz)
        terms_by_gpu[key] = terms
        if key == BOUND_GPU:
            row["dram_bytes_est"] = float(dram)
        row[f"ideal_us_{key}"] = 1e6 * row["ideal_bytes"] / peaks.copy_bandwidth
        row[f"bound_us_{key}"] = 1e6 * max(terms.values())
    row["bound_by"] = max(terms_by_gpu[BOUND_GPU].items(), key=lambda kv: kv[1])[0]
    return row


# ---------------------------------------------------- SASS of the innermost loop (issue term)

_ADDR = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(?:@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_.]*)(.*)")
_LABEL = re.compile(r"^\.(L_x_\d+):")
_TARGET = re.compile(r"`\(\.(L_x_\d+)\)")


def innermost_loop(sass: str, op: str = "FFMA") -> tuple[int, int]:
    """(instructions, ``op`` instructions) of the innermost loop richest in ``op``: a backward
    branch's body that contains no other backward branch. (0, 0) when there is none."""
    labels: dict[str, int] = {}
    instrs: list[tuple[int, str, str]] = []
    for line in sass.splitlines():
        line = line.strip()
        m = _LABEL.match(line)
        if m:
            labels[m.group(1)] = len(instrs)
            continue
        m = _ADDR.search(line)
        if m:
            instrs.append((int(m.group(1), 16), m.group(2), m.group(3)))
    loops = []
    for i, (_, opcode, rest) in enumerate(instrs):
        t = _TARGET.search(rest)
        if opcode.startswith("BRA") and t and labels.get(t.group(1), i + 1) <= i:
            loops.append((labels[t.group(1)], i))
    inner = [
        (lo, hi)
        for lo, hi in loops
        if not any((a, b) != (lo, hi) and lo <= a and b <= hi for a, b in loops)
    ]
    best = (0, 0)
    for lo, hi in inner:
        body = instrs[lo : hi + 1]
        n_op = sum(1 for _, o, _ in body if o.split(".")[0] == op)
        if n_op > best[1]:
            best = (len(body), n_op)
    return best
