"""One training run across processes: torchrun's environment (WORLD_SIZE / RANK / LOCAL_RANK),
the process group, and each rank's device. A plain process is a world of one."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from bench.provenance import resolve_device


@dataclass(frozen=True)
class Dist:
    world: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def dist_from_env() -> Dist:
    """torchrun sets WORLD_SIZE / RANK / LOCAL_RANK; a plain process has none of them."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    return Dist(world, int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")))


def init_process_group(ctx: Dist, device: torch.device) -> None:
    # NCCL moves CUDA tensors only; a CPU run (also on a GPU machine) needs gloo.
    if ctx.world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def training_device(requested: str, ctx: Dist) -> torch.device:
    """The training device; under torchrun each rank takes its LOCAL_RANK's GPU."""
    if resolve_device(requested) == "cpu":
        return torch.device("cpu")
    if ctx.world > 1:
        torch.cuda.set_device(ctx.local_rank)
        return torch.device("cuda", ctx.local_rank)
    return torch.device("cuda")


def finish_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0
