"""Autotuning shared by the kernels: configs pruned to the problem's size and, on a GPU, to what
compiles without spills and within the device's shared memory (kernels._compiled's figures)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import triton

from kernels import _runtime

# No tile is pruned below this width: tl.dot needs 16 on every side.
MIN_TILE = 16
Sizes = Callable[[dict], dict[str, int]]
# Every autotuner built in this process, as (kernel name, autotuner): what `sepbench gpu-check`
# reads the chosen configs from (Autotuner.cache: key -> best config).
BUILT: list[tuple[str, Any]] = []


@dataclass(frozen=True)
class Tunable:
    """One autotuned kernel: the JIT function, its candidate configs (a function of the input
    dtype, so nothing is built at import and float32 FMA dots can take other tiles than 16-bit
    tensor-core dots), and which launch argument bounds each tile (BLOCK_X -> size)."""

    kernel: Any
    configs: Callable[[Any], list[triton.Config]]
    sizes: Sizes
    key: tuple[str, ...]
    # kernel-specific pruning after the size fit (configs, named args) -> configs: dw-sep keeps
    # the configs that compute each depthwise output once
    keep: Callable[[list, dict], list] | None = None

    def fit(self, configs: list[triton.Config], named_args: dict) -> list[triton.Config]:
        """The pruning that needs no device: size fit, then ``keep``."""
        kept = fit_to_problem(configs, self.sizes(named_args))
        return self.keep(kept, named_args) if self.keep else kept

    def prune(self, configs: list[triton.Config], named_args: dict, **kwargs: Any) -> list:
        """The autotuner's early_config_prune: tiles no wider than the problem (and ``keep``);
        on a GPU, also no config that spills or asks for more shared memory than a block may
        have."""
        kept = self.fit(configs, named_args)
        if _runtime.INTERPRET or len(kept) == 1:
            return kept
        return drop_hopeless(self.kernel, kept, named_args, kwargs)

    def autotuned(self, dtype: Any = None) -> Any:
        """The autotuner over configs(dtype) (one per dtype family, built by the caller)."""
        tuner = triton.autotune(
            configs=self.configs(dtype),
            key=list(self.key),
            prune_configs_by={"early_config_prune": self.prune},
        )(self.kernel)
        BUILT.append((getattr(self.kernel, "__name__", str(self.kernel)), tuner))
        return tuner


def fit_to_problem(configs: list[triton.Config], sizes: dict[str, int]) -> list[triton.Config]:
    """Drop configs with a tile much wider than the problem: for each (BLOCK_X, size) in ``sizes``,
    BLOCK_X must not pass next_pow2(size) (at least MIN_TILE). A config without BLOCK_X is not
    judged on it. When nothing fits, the config with the smallest tile area is kept."""

    def fits(cfg: triton.Config) -> bool:
        return all(
            cfg.kwargs.get(block, 0) <= max(MIN_TILE, triton.next_power_of_2(size))
            for block, size in sizes.items()
        )

    kept = [cfg for cfg in configs if fits(cfg)]
    if kept:
        return kept
    return [
        min(
            configs,
            key=lambda cfg: math.prod(v for k, v in cfg.kwargs.items() if k.startswith("BLOCK_")),
        )
    ]


def launch_kwargs(cfg: triton.Config, kwargs: dict) -> dict:
    """The keyword arguments a launch with ``cfg`` passes: the call's, then the config's tiles
    and compile options (num_warps, num_stages, maxnreg, ...) as the autotuner adds them."""
    return {**kwargs, **cfg.all_kwargs()}


_WARNED: set[str] = set()


def _warn_once(reason: str) -> None:
    """One warning per process that the GPU pruning could not judge the configs (each later
    failure is silent: the autotuner then tries every size-fit config and reports its own)."""
    if _WARNED:
        return
    _WARNED.add(reason)
    warnings.warn(
        "kernels._autotune.drop_hopeless could not read the compiled figures, so configs that "
        f"spill or overflow shared memory are not dropped ({reason[:300]})",
        RuntimeWarning,
        stacklevel=3,
    )


def drop_hopeless(kernel: Any, configs: list, named_args: dict, kwargs: dict) -> list:
    """Configs that compile for this GPU without spilling and within its shared memory per block,
    judged from the compiled cubin (cached on disk, so a rerun costs nothing). When every config
    fails, the one with the fewest spill bytes is kept: the autotuner needs one."""
    import torch

    from kernels import _compiled

    major, minor = torch.cuda.get_device_capability()
    arch = 10 * major + minor
    if arch not in _compiled.ARCH_LIMITS:
        return configs  # no limits table for this GPU: keep what the size pruning kept
    limit = _compiled.ARCH_LIMITS[arch].shared_per_block
    args = tuple(named_args.values())
    scored = []
    for cfg in configs:
        try:
            figures, _ = _compiled.analyze(kernel, args, launch_kwargs(cfg, kwargs), arch)
        except Exception as err:  # a compile failure is the autotuner's to report
            _warn_once(f"{type(err).__name__}: {err}")
            return configs
        scored.append((figures.spill_bytes, figures.shared_bytes > limit, cfg))
    good = [cfg for spill, too_big, cfg in scored if spill == 0 and not too_big]
    return good or [min(scored, key=lambda s: (s[1], s[0]))[2]]
