"""What a kernel launch compiles to on an NVIDIA GPU, read without one: registers, spills, shared
memory, theoretical occupancy and the SASS instruction mix.

A launch is compiled exactly as Triton's JIT would compile it: the argument specialization (value
1, divisibility by 16, pointer alignment) comes from Triton's own binder built for the target's
backend, and the options from the backend's own parser; only the target is chosen
(``GPUTarget("cuda", 90, 32)`` compiles for sm_90 on a machine with no GPU and no driver). The
figures are read from the cubin with the cuobjdump and nvdisasm that ship in the triton wheel,
and cached on disk by Triton's own hashes of the source, specialization, options and target.

The functions here need real JITFunctions: on a machine without CUDA the kernels modules must be
imported with TRITON_INTERPRET=0 (bench.measuring.inspect compiles in worker processes that set
it); the launchers' autotune pruning calls ``analyze`` on the GPU it runs on.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import re
import subprocess
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import triton


# Per-arch limits for theoretical occupancy. Source: NVIDIA CUDA C++ Programming Guide,
# "Technical Specifications per Compute Capability" (8.0 and 9.0), and the CUDA Occupancy
# Calculator's rules: registers are allocated per warp in units of 256, and every block reserves
# 1 KB of shared memory for the system.
@dataclass(frozen=True)
class ArchLimits:
    name: str
    registers_per_sm: int
    max_registers_per_thread: int
    register_unit_per_warp: int
    shared_per_sm: int  # bytes usable by blocks
    shared_per_block: int  # bytes a block may request (opt-in maximum)
    reserved_shared_per_block: int
    max_warps_per_sm: int
    max_blocks_per_sm: int
    sms: int  # multiprocessors of the GPU named (A100 SXM: 108; H100/H200 SXM: 132)


ARCH_LIMITS: dict[int, ArchLimits] = {
    80: ArchLimits("sm_80 (A100)", 65536, 255, 256, 164 * 1024, 163 * 1024, 1024, 64, 32, 108),
    90: ArchLimits("sm_90 (H100/H200)", 65536, 255, 256, 228 * 1024, 227 * 1024, 1024, 64, 32, 132),
}
ARCHS = {"sm_80": 80, "sm_90": 90}
CACHE_ENV = "SEPBENCH_COMPILED_CACHE"
# Bumped whenever read_cubin's figures change meaning, so no stale cache entry is read back.
FIGURES_VERSION = 1


@dataclass(frozen=True)
class Figures:
    """One compiled kernel, as the cubin says (per thread unless named otherwise)."""

    registers: int
    spill_bytes: int  # bytes of local-memory stores (STL) in the SASS: ptxas's "spill stores"
    stack_bytes: int
    shared_bytes: int  # dynamic (what Triton asks at launch) + static shared memory per block
    num_warps: int
    num_stages: int
    occupancy: float  # resident warps / max warps per SM, in [0, 1]
    blocks_per_sm: int
    ldg: dict[int, int]  # global load instructions by width in bits (cp.async and TMA included)
    stg: dict[int, int]  # global store instructions by width in bits
    mma: int  # tensor-core instructions (HMMA, HGMMA/WGMMA, IMMA)
    sass_instructions: int
    mma_kinds: str  # e.g. "HMMA.16816.F32.BF16"
    cubin_sha256: str

    def to_row(self) -> dict[str, Any]:
        row = asdict(self)
        for kind in ("ldg", "stg"):
            counts = row.pop(kind)
            for bits in (8, 16, 32, 64, 128):
                row[f"{kind}_{bits}"] = counts.get(bits, counts.get(str(bits), 0))
        return row


def occupancy(registers: int, shared_bytes: int, num_warps: int, arch: int) -> tuple[float, int]:
    """(theoretical occupancy, blocks per SM) from the per-arch limits; 0 when a block cannot
    launch at all (too much shared memory)."""
    lim = ARCH_LIMITS[arch]
    if shared_bytes > lim.shared_per_block:
        return 0.0, 0
    regs_per_warp = math.ceil(max(registers, 1) * 32 / lim.register_unit_per_warp)
    regs_per_warp *= lim.register_unit_per_warp
    by_regs = (lim.registers_per_sm // regs_per_warp) // num_warps
    by_shared = lim.shared_per_sm // (shared_bytes + lim.reserved_shared_per_block)
    by_warps = lim.max_warps_per_sm // num_warps
    blocks = min(by_regs, by_shared, by_warps, lim.max_blocks_per_sm)
    return blocks * num_warps / lim.max_warps_per_sm, blocks


# ------------------------------------------------------------------------------ compiling


def _target(arch: int) -> Any:
    from triton.backends.compiler import GPUTarget

    return GPUTarget("cuda", arch, 32)


@functools.cache
def _backend(arch: int) -> Any:
    from triton.compiler import make_backend

    return make_backend(_target(arch))


def launch_source(jit_fn: Any, args: tuple, kwargs: dict, arch: int) -> tuple[Any, Any]:
    """(ASTSource, parsed options) for ``jit_fn[grid](*args, **kwargs)`` on sm_<arch>, with the
    specialization Triton's JIT computes at launch (its binder, built for the target backend)."""
    from triton.compiler import ASTSource
    from triton.runtime.jit import create_function_from_signature

    if not hasattr(jit_fn, "params"):
        raise TypeError(
            f"{jit_fn!r} is not a JITFunction (under TRITON_INTERPRET=1 kernels cannot be "
            "compiled; import the kernels with TRITON_INTERPRET=0)"
        )
    backend = _backend(arch)
    binder = create_function_from_signature(jit_fn.signature, jit_fn.params, backend)
    bound, specialization, options = binder(*args, **kwargs)
    options, signature, constexprs, attrs = jit_fn._pack_args(
        backend, kwargs, bound, specialization, options
    )
    return ASTSource(jit_fn, signature, constexprs, attrs), options


def cache_key(src: Any, options: Any, arch: int) -> str:
    """Triton's own hashes of source + specialization, backend (arch, ptxas) and options."""
    text = (
        f"{src.hash()}-{_backend(arch).hash()}-{options.hash()}-{triton.__version__}-"
        f"{FIGURES_VERSION}"
    )
    return hashlib.sha256(text.encode()).hexdigest()


def cache_dir() -> Path:
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "sepbench" / "compiled"
    return Path(root)


def _entry(key: str) -> tuple[Path, Path]:
    folder = cache_dir()
    return folder / f"{key}.json", folder / f"{key}.cubin"


def is_cached(key: str) -> bool:
    return all(p.is_file() for p in _entry(key))


def cached_figures(key: str) -> Figures | None:
    """The figures cached under ``key``, or None (not compiled yet, or the compile failed)."""
    entry, _ = _entry(key)
    return Figures(**json.loads(entry.read_text())) if is_cached(key) else None


def copy_cubin(key: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_entry(key)[1].read_bytes())


def analyze(
    jit_fn: Any, args: tuple, kwargs: dict, arch: int, *, dump_cubin: Path | None = None
) -> tuple[Figures, str]:
    """Compile one launch for sm_<arch> (or take it from the cache) and read its figures.
    Returns (figures, cache key); ``dump_cubin`` also writes the cubin to that path."""
    src, options = launch_source(jit_fn, args, kwargs, arch)
    key = cache_key(src, options, arch)
    figures = cached_figures(key)
    if figures is None:
        kernel = triton.compile(src, target=_target(arch), options=options.__dict__)
        cubin = kernel.asm["cubin"]
        figures = read_cubin(
            cubin, arch, kernel.metadata.shared, options.num_warps, options.num_stages
        )
        entry, cubin_path = _entry(key)
        entry.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(cubin_path, cubin)
        _write_atomic(entry, json.dumps(asdict(figures)).encode())  # last: marks it complete
    if dump_cubin is not None:
        copy_cubin(key, dump_cubin)
    return figures, key


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# ------------------------------------------------------------------------- reading a cubin


def _tool(name: str) -> str:
    path = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / name
    if not path.is_file():
        raise FileNotFoundError(f"{name} is not in the triton wheel at {path}")
    return str(path)


_RES_USAGE = re.compile(r"REG:(\d+)\s+STACK:(\d+)\s+SHARED:(\d+)\s+LOCAL:(\d+)")
# "/*0090*/  @!P0 LDG.E.U16 R4, desc[UR4][R2.64] ;" -> "LDG.E.U16"
_SASS_LINE = re.compile(r"/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_.]*)")
_WIDTH_SUFFIX = {"U8": 8, "S8": 8, "U16": 16, "S16": 16, "64": 64, "128": 128}


def _width(opcode: str) -> int:
    """Bits moved per thread by a load/store opcode: LDG.E.U16 -> 16, LDG.E.128 -> 128,
    LDGSTS.E.BYPASS.LTC128B.128 -> 128 (LTC128B is a cache hint, not a width), LDG.E -> 32."""
    for part in reversed(opcode.split(".")[1:]):
        if part in _WIDTH_SUFFIX:
            return _WIDTH_SUFFIX[part]
    return 32


def sass_counts(sass: str) -> tuple[Counter, Counter, Counter, int]:
    """(global loads by width, global stores by width, MMA opcodes, instruction count)."""
    ldg, stg, mma = Counter(), Counter(), Counter()
    total = 0
    for line in sass.splitlines():
        m = _SASS_LINE.search(line)
        if not m:
            continue
        op = m.group(1)
        total += 1
        head = op.split(".")[0]
        if head in ("LDG", "LDGSTS"):
            ldg[_width(op)] += 1
        elif head in ("UTMALDG", "UBLKCP"):  # TMA moves whole boxes: counted as 128-bit
            ldg[128] += 1
        elif head == "STG":
            stg[_width(op)] += 1
        elif head in ("UTMASTG",):
            stg[128] += 1
        elif head in ("HMMA", "HGMMA", "IMMA", "IGMMA", "QGMMA", "WGMMA"):
            mma[op] += 1
    return ldg, stg, mma, total


def _spill_bytes(sass: str) -> int:
    """Bytes of local-memory stores (STL, STL.64, STL.128): ptxas's "spill stores" figure."""
    total = 0
    for line in sass.splitlines():
        m = _SASS_LINE.search(line)
        if m and m.group(1).split(".")[0] == "STL":
            total += _width(m.group(1)) // 8
    return total


def read_cubin(
    cubin: bytes, arch: int, dynamic_shared: int, num_warps: int, num_stages: int
) -> Figures:
    """The figures of a cubin: cuobjdump's resource usage and nvdisasm's SASS."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kernel.cubin"
        path.write_bytes(cubin)
        usage = subprocess.run(
            [_tool("cuobjdump"), "-res-usage", str(path)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        sass = subprocess.run(
            [_tool("nvdisasm"), "-c", str(path)], check=True, capture_output=True, text=True
        ).stdout
    m = _RES_USAGE.search(usage)
    if m is None:
        raise ValueError(f"cuobjdump printed no resource usage: {usage[:200]!r}")
    registers, stack, static_shared, _local = (int(v) for v in m.groups())
    shared = dynamic_shared + static_shared
    occ, blocks = occupancy(registers, shared, num_warps, arch)
    ldg, stg, mma, total = sass_counts(sass)
    return Figures(
        registers=registers,
        spill_bytes=_spill_bytes(sass),
        stack_bytes=stack,
        shared_bytes=shared,
        num_warps=num_warps,
        num_stages=num_stages,
        occupancy=occ,
        blocks_per_sm=blocks,
        ldg=dict(ldg),
        stg=dict(stg),
        mma=sum(mma.values()),
        sass_instructions=total,
        mma_kinds=" ".join(sorted(mma)),
        cubin_sha256=hashlib.sha256(cubin).hexdigest(),
    )
