"""Autotune helpers shared by the kernels: pruning configs to the problem's size."""

from __future__ import annotations

import math

import triton

# No tile is pruned below this width: tl.dot needs 16 on every side.
MIN_TILE = 16


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
    return [min(configs, key=lambda cfg: math.prod(v for k, v in cfg.kwargs.items()
                                                     if k.startswith("BLOCK_")))]  # fmt: skip
